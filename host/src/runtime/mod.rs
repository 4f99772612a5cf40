//! The WebAssembly runtime: one wasmtime engine for the process, a linker with the
//! host's imports, and calls into plugins with a fresh store and instance each.
//!
//! The engine uses the pooling allocator (copy-on-write memory images), epoch
//! interruption with async yields (a ticker thread bumps the epoch) and fuel. Each
//! call gets its own memory cap, wall-clock deadline and optional fuel budget;
//! traps, timeouts and limit breaches come back as [`PluginError`]s and the
//! instance is thrown away. This module knows nothing of HTTP, users or SQL.

mod bindings;
mod cache;
mod env;
mod error;
mod http;
mod ops;
mod outbound;
mod state;

pub use bindings::{channel, prompt, resource, skill, tool, types};
pub use env::{
    BoxFuture, CallLimits, KvError, KvNamespace, KvStore, MAX_KV_KEY, MAX_KV_VALUE, PluginEnv,
    SecretSource, system_clock,
};
pub use error::{ErrorKind, LoadError, PluginError};
pub use http::HostPattern;
pub use state::HostState;

use cache::ArtifactCache;
pub use cache::Pruned;
use ops::{Op, Reply, export_name, indices, mismatch};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline,
};

/// Extra time the host waits past a deadline for a plugin blocked in a host call.
const DEADLINE_GRACE: Duration = Duration::from_millis(5);

/// Bytes of a pool slot's memory (and of its tables) reset in place for the
/// next instance instead of being handed back to the kernel. With Linux's
/// `PAGEMAP_SCAN` (6.7+) only the pages the last call dirtied are reset, so a
/// fresh instance per call costs neither `madvise` (with its TLB shoot-down
/// on every core) nor page faults on first touch; pages beyond this are
/// released as before.
const KEEP_RESIDENT: usize = 512 << 10;

/// How the engine is set up.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Where precompiled artifacts are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Most plugin instances alive at once (pool size).
    pub max_instances: u32,
    /// Largest linear memory any instance may have (bytes).
    pub max_memory_bytes: usize,
    /// How often the epoch advances (the granularity of deadlines and yields).
    pub epoch_tick: Duration,
    /// Resolves the names plugins send HTTP requests to.
    pub resolver: crate::net::Resolver,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            cache_dir: None,
            max_instances: 200,
            max_memory_bytes: 4 << 30,
            epoch_tick: Duration::from_millis(2),
            resolver: crate::net::Resolver::default(),
        }
    }
}

/// The process-wide engine and linker.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    cache: Option<ArtifactCache>,
    resolver: crate::net::Resolver,
    _ticker: EpochTicker,
}

/// A compiled, linked component ready to be instantiated for calls.
#[derive(Clone)]
pub struct LoadedComponent {
    pre: InstancePre<HostState>,
    tool: Option<tool::GuestIndices>,
    channel: Option<channel::GuestIndices>,
    skill: Option<skill::GuestIndices>,
    prompt: Option<prompt::GuestIndices>,
    resource: Option<resource::GuestIndices>,
    env: Arc<PluginEnv>,
    limits: CallLimits,
}

/// Where a call's log lines and progress reports go, besides the host's log
/// (e.g. to the MCP client that made the call).
pub trait CallObserver: Send + Sync {
    /// The plugin wrote a log line.
    fn log(&self, level: types::LogLevel, message: &str);
    /// The plugin reported progress.
    fn progress(&self, progress: f64, total: Option<f64>, message: Option<String>);
}

/// Extras for one call: who observes it, what cancels it, whose data it uses.
#[derive(Clone, Default)]
pub struct CallHooks {
    /// The key-value namespace of whom the call is made for; `None`: no KV
    /// (unless the plugin holds shared KV).
    pub kv: Option<KvNamespace>,
    /// Receives the call's log lines and progress reports.
    pub observer: Option<Arc<dyn CallObserver>>,
    /// Stops the call (the instance is dropped) when cancelled.
    pub cancel: Option<CancellationToken>,
}

impl LoadedComponent {
    /// The same component with another environment (a channel instance's
    /// configuration and secrets over the plugin's); cheap: the compiled
    /// component is shared.
    pub fn with_env(&self, env: PluginEnv) -> Self {
        Self {
            env: Arc::new(env),
            ..self.clone()
        }
    }

    /// The per-call limits from the manifest.
    pub fn limits(&self) -> CallLimits {
        self.limits
    }

    /// The plugin's grants.
    pub fn env(&self) -> &PluginEnv {
        &self.env
    }
    /// The component's exported interface names.
    pub fn exports(&self, engine: &Engine) -> Vec<String> {
        self.pre
            .component()
            .component_type()
            .exports(engine)
            .map(|(n, _)| n.to_string())
            .collect()
    }
}

impl Runtime {
    /// Build the engine, the linker and the epoch ticker.
    pub fn new(options: RuntimeOptions) -> Result<Self, LoadError> {
        let setup = |e: wasmtime::Error| LoadError::Setup(e.to_string());
        let mut pool = PoolingAllocationConfig::default();
        let n = options.max_instances.max(1);
        pool.total_component_instances(n)
            .total_core_instances(n * 8)
            .max_core_instances_per_component(16)
            .total_memories(n * 2)
            .max_memories_per_component(4)
            .total_tables(n * 8)
            .max_tables_per_component(16)
            .total_stacks(n)
            .max_memory_size(options.max_memory_bytes)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT)
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .consume_fuel(true)
            .memory_init_cow(true)
            .wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Disable)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        if std::env::var_os("SWITCHYARD_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config).map_err(setup)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(setup)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(setup)?;
        bindings::host::add_to_linker::<_, wasmtime::component::HasSelf<HostState>>(
            &mut linker,
            |s| s,
        )
        .map_err(setup)?;
        let cache = options
            .cache_dir
            .as_deref()
            .map(|dir| ArtifactCache::new(dir, &engine));
        let ticker = EpochTicker::start(engine.clone(), options.epoch_tick);
        Ok(Self {
            engine,
            linker,
            cache,
            resolver: options.resolver,
            _ticker: ticker,
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Drop precompiled artifacts of components whose bytes are not among `keep`
    /// (see [`ArtifactCache::prune`]); nothing without a cache.
    pub fn prune_cache(&self, keep: &[Vec<u8>]) -> Pruned {
        let keep = keep.iter().map(|b| ArtifactCache::key(b)).collect();
        self.cache
            .as_ref()
            .map(|c| c.prune(&keep))
            .unwrap_or_default()
    }

    /// Compile component bytes (through the artifact cache when configured).
    pub fn compile(&self, bytes: &[u8]) -> Result<Component, LoadError> {
        match bytes.get(..8) {
            Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => {
                return Err(LoadError::NotAComponent(
                    "this is a core WebAssembly module; build for `wasm32-wasip2` (or wrap it with `wasm-tools component new`)"
                        .into(),
                ));
            }
            Some([0, b'a', b's', b'm', _, _, 1, 0]) => {}
            _ => {
                return Err(LoadError::NotAComponent(
                    "the file does not start with the WebAssembly magic bytes".into(),
                ));
            }
        }
        let compiled = match &self.cache {
            Some(cache) => cache.load_or_compile(&self.engine, bytes),
            None => Component::new(&self.engine, bytes),
        };
        compiled.map_err(|e| LoadError::NotAComponent(format!("{e:#}")))
    }

    /// Link `component` against the host and find its exports; `env` and `limits`
    /// apply to every call of the result.
    pub fn load(
        &self,
        component: &Component,
        env: Arc<PluginEnv>,
        limits: CallLimits,
    ) -> Result<LoadedComponent, LoadError> {
        let pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|e| LoadError::UnsupportedImport(format!("{e:#}")))?;
        Ok(LoadedComponent {
            tool: indices(&pre, export_name::TOOL, tool::GuestIndices::new)?,
            channel: indices(&pre, export_name::CHANNEL, channel::GuestIndices::new)?,
            skill: indices(&pre, export_name::SKILL, skill::GuestIndices::new)?,
            prompt: indices(&pre, export_name::PROMPT, prompt::GuestIndices::new)?,
            resource: indices(&pre, export_name::RESOURCE, resource::GuestIndices::new)?,
            pre,
            env,
            limits,
        })
    }

    /// Ask a tool plugin for its tools.
    pub async fn list_tools(
        &self,
        c: &LoadedComponent,
    ) -> Result<Vec<tool::ToolSpec>, PluginError> {
        match self.invoke(c, Op::ListTools).await? {
            Reply::Tools(t) => Ok(t),
            _ => Err(mismatch()),
        }
    }

    /// Call tool `name` with JSON `arguments`.
    pub async fn call_tool(
        &self,
        c: &LoadedComponent,
        name: &str,
        arguments: &str,
        context: tool::CallContext,
    ) -> Result<tool::ToolOutput, PluginError> {
        match self
            .invoke(c, Op::CallTool(name.into(), arguments.into(), context))
            .await?
        {
            Reply::Output(o) => Ok(o),
            _ => Err(mismatch()),
        }
    }

    /// Call a tool with `hooks` and also return every capability the plugin was
    /// denied during the call (reported even when the call itself succeeds).
    pub async fn call_tool_traced(
        &self,
        c: &LoadedComponent,
        name: &str,
        arguments: &str,
        context: tool::CallContext,
        hooks: CallHooks,
    ) -> (Result<tool::ToolOutput, PluginError>, Vec<String>) {
        let (reply, denied) = self
            .invoke_traced(
                c,
                Op::CallTool(name.into(), arguments.into(), context),
                hooks,
            )
            .await;
        let output = reply.and_then(|r| match r {
            Reply::Output(o) => Ok(o),
            _ => Err(mismatch()),
        });
        (output, denied)
    }

    /// Describe a channel plugin.
    pub async fn describe_channel(
        &self,
        c: &LoadedComponent,
    ) -> Result<channel::ChannelInfo, PluginError> {
        match self.invoke(c, Op::Describe).await? {
            Reply::Channel(i) => Ok(i),
            _ => Err(mismatch()),
        }
    }

    /// Hand a webhook call to a channel plugin.
    pub async fn handle_webhook(
        &self,
        c: &LoadedComponent,
        request: types::HttpRequest,
        hooks: CallHooks,
    ) -> Result<channel::WebhookOutcome, PluginError> {
        match self.invoke_traced(c, Op::Webhook(request), hooks).await.0? {
            Reply::Webhook(o) => Ok(o),
            _ => Err(mismatch()),
        }
    }

    /// Send a reply out through a channel plugin.
    pub async fn deliver(
        &self,
        c: &LoadedComponent,
        message: channel::OutboundMessage,
        hooks: CallHooks,
    ) -> Result<(), PluginError> {
        match self.invoke_traced(c, Op::Deliver(message), hooks).await.0? {
            Reply::Unit => Ok(()),
            _ => Err(mismatch()),
        }
    }

    /// Ask a skill plugin for its catalog.
    pub async fn list_skills(
        &self,
        c: &LoadedComponent,
    ) -> Result<Vec<skill::SkillInfo>, PluginError> {
        match self.invoke(c, Op::ListSkills).await? {
            Reply::Skills(s) => Ok(s),
            _ => Err(mismatch()),
        }
    }

    /// Load one skill from a skill plugin.
    pub async fn load_skill(
        &self,
        c: &LoadedComponent,
        name: &str,
    ) -> Result<skill::SkillContent, PluginError> {
        match self.invoke(c, Op::LoadSkill(name.into())).await? {
            Reply::Skill(s) => Ok(s),
            _ => Err(mismatch()),
        }
    }

    /// Ask a prompt plugin for its prompts.
    pub async fn list_prompts(
        &self,
        c: &LoadedComponent,
    ) -> Result<Vec<prompt::PromptSpec>, PluginError> {
        match self.invoke(c, Op::ListPrompts).await? {
            Reply::Prompts(p) => Ok(p),
            _ => Err(mismatch()),
        }
    }

    /// Fill in prompt `name` of a prompt plugin.
    pub async fn get_prompt(
        &self,
        c: &LoadedComponent,
        name: &str,
        arguments: Vec<(String, String)>,
    ) -> Result<prompt::PromptResult, PluginError> {
        match self
            .invoke(c, Op::GetPrompt(name.into(), arguments))
            .await?
        {
            Reply::Prompt(p) => Ok(p),
            _ => Err(mismatch()),
        }
    }

    /// Ask a resource plugin for its fixed resources and URI templates.
    pub async fn list_resources(
        &self,
        c: &LoadedComponent,
    ) -> Result<(Vec<resource::ResourceSpec>, Vec<resource::ResourceTemplate>), PluginError> {
        match self.invoke(c, Op::ListResources).await? {
            Reply::Resources(r, t) => Ok((r, t)),
            _ => Err(mismatch()),
        }
    }

    /// Read one resource from a resource plugin.
    pub async fn read_resource(
        &self,
        c: &LoadedComponent,
        uri: &str,
    ) -> Result<Vec<types::EmbeddedResource>, PluginError> {
        match self.invoke(c, Op::ReadResource(uri.into())).await? {
            Reply::Contents(c) => Ok(c),
            _ => Err(mismatch()),
        }
    }

    async fn invoke(&self, c: &LoadedComponent, op: Op) -> Result<Reply, PluginError> {
        self.invoke_traced(c, op, CallHooks::default()).await.0
    }

    async fn invoke_traced(
        &self,
        c: &LoadedComponent,
        op: Op,
        hooks: CallHooks,
    ) -> (Result<Reply, PluginError>, Vec<String>) {
        if !op.supported_by(c) {
            let e = PluginError::new(
                ErrorKind::NotFound,
                format!(
                    "plugin `{}` does not export the `{}` interface",
                    c.env.name,
                    op.interface()
                ),
            );
            return (Err(e), Vec::new());
        }
        let limits = c.limits;
        let mut state = HostState::new(c.env.clone(), limits.memory_bytes, self.resolver.clone());
        state.observer = hooks.observer;
        state.kv_namespace = hooks.kv;
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        if let Err(e) = store.set_fuel(limits.fuel.unwrap_or(u64::MAX)) {
            return (
                Err(PluginError::new(ErrorKind::Failed, e.to_string())),
                Vec::new(),
            );
        }
        let deadline = Instant::now() + limits.timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut cx| {
            if Instant::now() >= deadline {
                cx.data_mut().timed_out = true;
                Err(wasmtime::Error::msg("deadline reached"))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        let run = ops::run(&mut store, c, op);
        let timed = tokio::time::timeout(limits.timeout + DEADLINE_GRACE, run);
        let cancelled = async {
            match &hooks.cancel {
                Some(token) => token.cancelled().await,
                None => std::future::pending().await,
            }
        };
        let outcome = tokio::select! {
            biased;
            () = cancelled => None,
            result = timed => Some(result),
        };
        let result = match outcome {
            None => {
                let e = PluginError::new(
                    ErrorKind::Cancelled,
                    format!(
                        "the call to plugin `{}` was cancelled by the caller",
                        c.env.name
                    ),
                );
                return (Err(e), store.data().denied());
            }
            Some(Ok(result)) => result,
            Some(Err(_)) => {
                store.data_mut().timed_out = true;
                Err(wasmtime::Error::msg("deadline reached"))
            }
        };
        let state = store.data();
        let denied = state.denied();
        let with_denials = |mut e: PluginError| {
            e.denied = denied.clone();
            e
        };
        let reply = match result {
            Ok(Ok(reply)) if reply.size() > limits.max_output_bytes => {
                Err(with_denials(PluginError::new(
                    ErrorKind::InvalidOutput,
                    format!(
                        "plugin `{}` returned {} bytes, more than the {} bytes allowed",
                        c.env.name,
                        reply.size(),
                        limits.max_output_bytes
                    ),
                )))
            }
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(guest)) => Err(with_denials(guest.into())),
            Err(e) => Err(with_denials(classify(&e, state, &c.env.name, &limits))),
        };
        (reply, denied)
    }
}

fn classify(
    e: &wasmtime::Error,
    state: &HostState,
    plugin: &str,
    limits: &CallLimits,
) -> PluginError {
    if state.timed_out {
        return PluginError::new(
            ErrorKind::Timeout,
            format!(
                "plugin `{plugin}` did not finish within its {} ms deadline and was stopped (its author can raise `[limits] timeout_ms` in plugin.toml)",
                limits.timeout.as_millis()
            ),
        );
    }
    if state.limiter.hit {
        return PluginError::new(
            ErrorKind::MemoryLimit,
            format!(
                "plugin `{plugin}` tried to use more than its {} MiB memory limit and was stopped (its author can raise `[limits] memory_mb` in plugin.toml)",
                limits.memory_bytes >> 20
            ),
        );
    }
    if e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::OutOfFuel) {
        return PluginError::new(
            ErrorKind::FuelExhausted,
            format!(
                "plugin `{plugin}` used up its fuel ({}) and was stopped (its author can raise `[limits] fuel` in plugin.toml)",
                limits.fuel.unwrap_or(0)
            ),
        );
    }
    if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        return PluginError::new(
            ErrorKind::Busy,
            "all plugin instance slots are in use; retry shortly",
        );
    }
    let reason = match e.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{e}")
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
    };
    let detail = match state.panic_message() {
        Some(panic) => format!("{reason}: {panic}"),
        None => reason,
    };
    PluginError::new(
        ErrorKind::Trap,
        format!("plugin `{plugin}` crashed: {detail}"),
    )
}

/// Advances the engine's epoch on a background thread until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine, tick: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("switchyard-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .ok();
        Self { stop, thread }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
