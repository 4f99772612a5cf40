//! The per-call store data (`Store<HostState>`) and the `host` interface a plugin imports.

use super::CallObserver;
use super::bindings::{host, types};
use super::env::{KvError, KvNamespace, MAX_KV_KEY, MAX_KV_VALUE, PluginEnv};
use super::http::HttpPolicy;
use std::sync::{Arc, Mutex};
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// How much of a plugin's stderr (panic messages) is kept per call.
const STDERR_CAPTURE: usize = 16 * 1024;
/// Most progress reports of one call passed on to its observer.
const MAX_PROGRESS_REPORTS: u32 = 100;
/// Most characters of a log line or progress message.
const MAX_MESSAGE_CHARS: usize = 4096;
/// Most keys one `kv-list` returns.
const KV_LIST_LIMIT: usize = 1000;

/// Store data for one call: the WASI context (empty: no files, env or sockets),
/// the HTTP policy, the plugin's grants and the limit bookkeeping.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    policy: HttpPolicy,
    env: Arc<PluginEnv>,
    stderr: MemoryOutputPipe,
    pub(super) limiter: MemoryLimiter,
    pub(super) timed_out: bool,
    pub(super) denied: Arc<Mutex<Vec<String>>>,
    pub(super) observer: Option<Arc<dyn CallObserver>>,
    pub(super) kv_namespace: Option<KvNamespace>,
    progress_reports: u32,
}

impl HostState {
    /// Fresh state for one call of the plugin described by `env`; `resolver`
    /// turns the names it sends HTTP requests to into addresses.
    pub fn new(env: Arc<PluginEnv>, memory_bytes: usize, resolver: crate::net::Resolver) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
        let wasi = WasiCtx::builder().stderr(stderr.clone()).build();
        let denied = Arc::new(Mutex::new(Vec::new()));
        Self {
            wasi,
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            policy: HttpPolicy::new(env.http.clone(), resolver, denied.clone()),
            env,
            stderr,
            limiter: MemoryLimiter {
                max: memory_bytes,
                used: 0,
                hit: false,
            },
            timed_out: false,
            denied,
            observer: None,
            kv_namespace: None,
            progress_reports: 0,
        }
    }

    /// What the plugin wrote to stderr when it panicked: the `panicked at` line and
    /// the message after it, else the last line written.
    pub fn panic_message(&self) -> Option<String> {
        let bytes = self.stderr.contents();
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let found = match lines.iter().position(|l| l.contains("panicked at")) {
            Some(i) => lines[i..]
                .iter()
                .take(2)
                .copied()
                .collect::<Vec<_>>()
                .join(" "),
            None => lines.last()?.to_string(),
        };
        Some(found.chars().take(500).collect())
    }

    /// The capabilities the plugin tried to use without a grant during this call.
    pub fn denied(&self) -> Vec<String> {
        self.denied.lock().map(|d| d.clone()).unwrap_or_default()
    }

    fn deny(&self, what: String) -> types::Error {
        tracing::warn!(plugin = %self.env.name, capability = %what, "denied capability");
        if let Ok(mut d) = self.denied.lock() {
            d.push(what.clone());
        }
        types::Error::Denied(format!(
            "{what} is not granted to plugin `{}`",
            self.env.name
        ))
    }

    /// The backend and the namespace of this call: the shared one when shared KV
    /// is granted, else the caller's; no caller (e.g. a load-time listing) means no KV.
    fn kv(&self) -> Result<(Arc<dyn super::env::KvStore>, KvNamespace), types::Error> {
        let store = (self.env.kv.clone()).ok_or_else(|| self.deny("key-value storage".into()))?;
        let ns = if self.env.kv_shared {
            KvNamespace::Shared
        } else {
            self.kv_namespace.clone().ok_or_else(|| {
                types::Error::Unavailable(
                    "key-value storage needs a caller: this call is made for nobody".into(),
                )
            })?
        };
        Ok((store, ns))
    }
}

fn kv_error(e: KvError) -> types::Error {
    match e {
        KvError::Invalid(m) => types::Error::InvalidInput(m),
        KvError::Unavailable(_) => types::Error::Unavailable(e.to_string()),
    }
}

fn check_key(key: &str) -> Result<(), types::Error> {
    if key.is_empty() || key.len() > MAX_KV_KEY {
        return Err(types::Error::InvalidInput(format!(
            "keys must be 1-{MAX_KV_KEY} bytes, got {}",
            key.len()
        )));
    }
    Ok(())
}

/// Caps linear memory and remembers whether the cap was hit.
pub(super) struct MemoryLimiter {
    max: usize,
    used: usize,
    pub(super) hit: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let after = self.used - current.min(self.used) + desired;
        if after > self.max {
            self.hit = true;
            return Err(wasmtime::Error::msg(format!(
                "memory limit of {} MiB reached",
                self.max >> 20
            )));
        }
        self.used = after;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.policy,
        }
    }
}

impl types::Host for HostState {}

impl host::Host for HostState {
    async fn log(&mut self, level: types::LogLevel, message: String) {
        let plugin = self.env.name.as_str();
        let message: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
        if let Some(observer) = &self.observer {
            observer.log(level, &message);
        }
        match level {
            types::LogLevel::Trace => tracing::trace!(plugin, "{message}"),
            types::LogLevel::Debug => tracing::debug!(plugin, "{message}"),
            types::LogLevel::Info => tracing::info!(plugin, "{message}"),
            types::LogLevel::Warn => tracing::warn!(plugin, "{message}"),
            types::LogLevel::Error => tracing::error!(plugin, "{message}"),
        }
    }

    async fn get_config(&mut self, key: String) -> Option<String> {
        self.env.config.get(&key).cloned()
    }

    async fn get_secret(&mut self, name: String) -> Result<String, types::Error> {
        if !self.env.secrets.contains(&name) {
            return Err(self.deny(format!("secret `{name}`")));
        }
        let source = self.env.secret_source.clone();
        let value = match source {
            Some(source) => source.secret(&self.env.name, &name).await,
            None => None,
        };
        value.ok_or_else(|| {
            types::Error::NotFound(format!("secret `{name}` is granted but has no value yet"))
        })
    }

    async fn kv_get(&mut self, key: String) -> Result<Option<Vec<u8>>, types::Error> {
        check_key(&key)?;
        let (kv, ns) = self.kv()?;
        kv.get(&self.env.name, &ns, &key).await.map_err(kv_error)
    }

    async fn kv_set(&mut self, key: String, value: Vec<u8>) -> Result<(), types::Error> {
        check_key(&key)?;
        if value.len() > MAX_KV_VALUE {
            return Err(types::Error::InvalidInput(format!(
                "values must be at most {MAX_KV_VALUE} bytes, got {}",
                value.len()
            )));
        }
        let (kv, ns) = self.kv()?;
        kv.set(&self.env.name, &ns, &key, value)
            .await
            .map_err(kv_error)
    }

    async fn kv_delete(&mut self, key: String) -> Result<bool, types::Error> {
        check_key(&key)?;
        let (kv, ns) = self.kv()?;
        kv.delete(&self.env.name, &ns, &key).await.map_err(kv_error)
    }

    async fn kv_list(&mut self, prefix: String) -> Result<Vec<String>, types::Error> {
        if prefix.len() > MAX_KV_KEY {
            return Err(types::Error::InvalidInput(format!(
                "prefixes must be at most {MAX_KV_KEY} bytes"
            )));
        }
        let (kv, ns) = self.kv()?;
        kv.list(&self.env.name, &ns, &prefix, KV_LIST_LIMIT)
            .await
            .map_err(kv_error)
    }

    async fn report_progress(
        &mut self,
        progress: f64,
        total: Option<f64>,
        message: Option<String>,
    ) {
        let Some(observer) = &self.observer else {
            return;
        };
        if self.progress_reports >= MAX_PROGRESS_REPORTS
            || !progress.is_finite()
            || total.is_some_and(|t| !t.is_finite())
        {
            return;
        }
        self.progress_reports += 1;
        let message = message.map(|m| m.chars().take(MAX_MESSAGE_CHARS).collect());
        observer.progress(progress, total, message);
    }

    async fn now(&mut self) -> u64 {
        (self.env.clock)()
    }
}
