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
mod state;

pub use bindings::{channel, skill, tool, types};
pub use env::{
    BoxFuture, CallLimits, KvError, KvStore, MAX_KV_KEY, MAX_KV_VALUE, PluginEnv, SecretSource,
    system_clock,
};
pub use error::{ErrorKind, LoadError, PluginError};
pub use http::HostPattern;
pub use state::HostState;

use cache::ArtifactCache;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline,
};

/// Extra time the host waits past a deadline for a plugin blocked in a host call.
const DEADLINE_GRACE: Duration = Duration::from_millis(5);

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
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            cache_dir: None,
            max_instances: 200,
            max_memory_bytes: 4 << 30,
            epoch_tick: Duration::from_millis(2),
        }
    }
}

/// The process-wide engine and linker.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    cache: Option<ArtifactCache>,
    _ticker: EpochTicker,
}

/// A compiled, linked component ready to be instantiated for calls.
#[derive(Clone)]
pub struct LoadedComponent {
    pre: InstancePre<HostState>,
    tool: Option<tool::GuestIndices>,
    channel: Option<channel::GuestIndices>,
    skill: Option<skill::GuestIndices>,
    env: Arc<PluginEnv>,
    limits: CallLimits,
}

impl LoadedComponent {
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
            .max_memory_size(options.max_memory_bytes);
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
            _ticker: ticker,
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
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
        let tool = indices(&pre, manifest_kind::TOOL, tool::GuestIndices::new)?;
        let channel = indices(&pre, manifest_kind::CHANNEL, channel::GuestIndices::new)?;
        let skill = indices(&pre, manifest_kind::SKILL, skill::GuestIndices::new)?;
        Ok(LoadedComponent {
            pre,
            tool,
            channel,
            skill,
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

    /// Call a tool and also return every capability the plugin was denied during
    /// the call (reported even when the call itself succeeds).
    pub async fn call_tool_traced(
        &self,
        c: &LoadedComponent,
        name: &str,
        arguments: &str,
        context: tool::CallContext,
    ) -> (Result<tool::ToolOutput, PluginError>, Vec<String>) {
        let (reply, denied) = self
            .invoke_traced(c, Op::CallTool(name.into(), arguments.into(), context))
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
    ) -> Result<channel::WebhookOutcome, PluginError> {
        match self.invoke(c, Op::Webhook(request)).await? {
            Reply::Webhook(o) => Ok(o),
            _ => Err(mismatch()),
        }
    }

    /// Send a reply out through a channel plugin.
    pub async fn deliver(
        &self,
        c: &LoadedComponent,
        message: channel::OutboundMessage,
    ) -> Result<(), PluginError> {
        match self.invoke(c, Op::Deliver(message)).await? {
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

    async fn invoke(&self, c: &LoadedComponent, op: Op) -> Result<Reply, PluginError> {
        self.invoke_traced(c, op).await.0
    }

    async fn invoke_traced(
        &self,
        c: &LoadedComponent,
        op: Op,
    ) -> (Result<Reply, PluginError>, Vec<String>) {
        let missing = match &op {
            Op::ListTools | Op::CallTool(..) => c.tool.is_none().then_some("tool"),
            Op::Describe | Op::Webhook(_) | Op::Deliver(_) => {
                c.channel.is_none().then_some("channel")
            }
            Op::ListSkills | Op::LoadSkill(_) => c.skill.is_none().then_some("skill"),
        };
        if let Some(kind) = missing {
            let e = PluginError::new(
                ErrorKind::NotFound,
                format!(
                    "plugin `{}` does not export the `{kind}` interface",
                    c.env.name
                ),
            );
            return (Err(e), Vec::new());
        }
        let limits = c.limits;
        let mut store = Store::new(
            &self.engine,
            HostState::new(c.env.clone(), limits.memory_bytes),
        );
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
        let run = run(&mut store, c, op);
        let result = match tokio::time::timeout(limits.timeout + DEADLINE_GRACE, run).await {
            Ok(result) => result,
            Err(_) => {
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

mod manifest_kind {
    pub const TOOL: &str = "switchyard:plugin/tool@0.1.0";
    pub const CHANNEL: &str = "switchyard:plugin/channel@0.1.0";
    pub const SKILL: &str = "switchyard:plugin/skill@0.1.0";
}

/// The typed accessors of export `name`, `None` when the component does not export it.
fn indices<T>(
    pre: &InstancePre<HostState>,
    name: &str,
    new: fn(&InstancePre<HostState>) -> wasmtime::Result<T>,
) -> Result<Option<T>, LoadError> {
    if pre.component().get_export_index(None, name).is_none() {
        return Ok(None);
    }
    new(pre).map(Some).map_err(|e| {
        LoadError::Exports(format!(
            "the export `{name}` does not match switchyard:plugin@0.1.0: {e:#}"
        ))
    })
}

fn mismatch() -> PluginError {
    PluginError::new(ErrorKind::Failed, "internal error: unexpected reply kind")
}

enum Op {
    ListTools,
    CallTool(String, String, tool::CallContext),
    Describe,
    Webhook(types::HttpRequest),
    Deliver(channel::OutboundMessage),
    ListSkills,
    LoadSkill(String),
}

enum Reply {
    Tools(Vec<tool::ToolSpec>),
    Output(tool::ToolOutput),
    Channel(channel::ChannelInfo),
    Webhook(channel::WebhookOutcome),
    Unit,
    Skills(Vec<skill::SkillInfo>),
    Skill(skill::SkillContent),
}

impl Reply {
    fn size(&self) -> usize {
        let content = |c: &types::Content| match c {
            types::Content::Text(t) | types::Content::Json(t) => t.len(),
            types::Content::Image(b) | types::Content::Bytes(b) => b.data.len() + b.mime_type.len(),
        };
        match self {
            Reply::Tools(t) => t
                .iter()
                .map(|t| t.input_schema.len() + t.description.len())
                .sum(),
            Reply::Output(o) => {
                o.content.iter().map(content).sum::<usize>()
                    + o.structured.as_ref().map_or(0, String::len)
            }
            Reply::Channel(i) => i.description.len(),
            Reply::Webhook(w) => {
                w.response.body.len() + w.messages.iter().map(|m| m.text.len()).sum::<usize>()
            }
            Reply::Unit => 0,
            Reply::Skills(s) => s.iter().map(|s| s.description.len()).sum(),
            Reply::Skill(s) => {
                s.instructions.len() + s.files.iter().map(|f| f.content.len()).sum::<usize>()
            }
        }
    }
}

async fn run(
    store: &mut Store<HostState>,
    c: &LoadedComponent,
    op: Op,
) -> wasmtime::Result<Result<Reply, types::Error>> {
    let instance = c.pre.instantiate_async(&mut *store).await?;
    let missing = || wasmtime::Error::msg("export vanished");
    Ok(match op {
        Op::ListTools => {
            let g = c
                .tool
                .as_ref()
                .ok_or_else(missing)?
                .load(&mut *store, &instance)?;
            Ok(Reply::Tools(g.call_list_tools(&mut *store).await?))
        }
        Op::CallTool(name, args, cx) => {
            let g = c
                .tool
                .as_ref()
                .ok_or_else(missing)?
                .load(&mut *store, &instance)?;
            g.call_call_tool(&mut *store, &name, &args, &cx)
                .await?
                .map(Reply::Output)
        }
        Op::Describe => {
            let g = c
                .channel
                .as_ref()
                .ok_or_else(missing)?
                .load(&mut *store, &instance)?;
            Ok(Reply::Channel(g.call_describe(&mut *store).await?))
        }
        Op::Webhook(req) => {
            let g = c
                .channel
                .as_ref()
                .ok_or_else(missing)?
                .load(&mut *store, &instance)?;
            g.call_handle_webhook(&mut *store, &req)
                .await?
                .map(Reply::Webhook)
        }
        Op::Deliver(msg) => {
            let g = c
                .channel
                .as_ref()
                .ok_or_else(missing)?
                .load(&mut *store, &instance)?;
            g.call_deliver(&mut *store, &msg)
                .await?
                .map(|()| Reply::Unit)
        }
        Op::ListSkills => {
            let g = c
                .skill
                .as_ref()
                .ok_or_else(missing)?
                .load(&mut *store, &instance)?;
            Ok(Reply::Skills(g.call_list_skills(&mut *store).await?))
        }
        Op::LoadSkill(name) => {
            let g = c
                .skill
                .as_ref()
                .ok_or_else(missing)?
                .load(&mut *store, &instance)?;
            g.call_load_skill(&mut *store, &name)
                .await?
                .map(Reply::Skill)
        }
    })
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
                "plugin `{plugin}` did not finish within its {} ms deadline and was stopped",
                limits.timeout.as_millis()
            ),
        );
    }
    if state.limiter.hit {
        return PluginError::new(
            ErrorKind::MemoryLimit,
            format!(
                "plugin `{plugin}` tried to use more than its {} MiB memory limit and was stopped",
                limits.memory_bytes >> 20
            ),
        );
    }
    if e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::OutOfFuel) {
        return PluginError::new(
            ErrorKind::FuelExhausted,
            format!(
                "plugin `{plugin}` used up its fuel ({}) and was stopped",
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
