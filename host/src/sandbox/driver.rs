//! The container driver contract: everything the sandbox service asks of a
//! container engine. [`super::docker::DockerDriver`] implements it on the
//! Docker engine API; a cluster driver (Kubernetes pods with a volume claim,
//! exec and attach through the API server) implements the same calls.

use bytes::Bytes;
use futures_util::stream::BoxStream;
use std::collections::HashMap;
use std::pin::Pin;
use tokio::io::AsyncWrite;

/// Label on every container and volume switchyard manages.
pub const LABEL_MANAGED: &str = "io.switchyard.managed";
/// Label naming the host instance (data dir) that owns a container.
pub const LABEL_INSTANCE: &str = "io.switchyard.instance";
/// Label holding the sandbox id (absent on warm-pool containers).
pub const LABEL_SANDBOX: &str = "io.switchyard.sandbox";
/// Label marking a warm-pool container.
pub const LABEL_POOL: &str = "io.switchyard.pool";

/// Why a driver call failed.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The engine cannot be reached.
    #[error("the container engine is unavailable: {0}")]
    Unavailable(String),
    /// The container, exec, volume or path does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The container exists but does not run (it died or was stopped).
    #[error("the container is not running: {0}")]
    NotRunning(String),
    /// The worker image is not present.
    #[error("the sandbox image `{0}` is missing: build it with `switchyard image build`")]
    ImageMissing(String),
    /// The engine refused or failed the call.
    #[error("container engine: {0}")]
    Failed(String),
}

/// A container to create.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// Image reference.
    pub image: String,
    /// Labels (always including [`LABEL_MANAGED`]).
    pub labels: HashMap<String, String>,
    /// The workspace volume, mounted at `/workspace`.
    pub volume: String,
    /// Resource limits and network.
    pub limits: super::Limits,
}

/// What the engine says about a container.
#[derive(Debug, Clone)]
pub struct ContainerInfo {
    /// Engine id.
    pub id: String,
    /// Whether it runs.
    pub running: bool,
    /// Its labels.
    pub labels: HashMap<String, String>,
}

/// A command to run in a container.
#[derive(Debug, Clone, Default)]
pub struct ExecSpec {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Extra environment (`NAME=value`).
    pub env: Vec<String>,
    /// Working directory.
    pub workdir: String,
    /// Allocate a terminal (stdout and stderr merge).
    pub tty: bool,
    /// Attach standard input.
    pub stdin: bool,
}

/// One piece of a running command's output.
#[derive(Debug, Clone, PartialEq)]
pub enum Chunk {
    /// Standard output (or the terminal).
    Stdout(Bytes),
    /// Standard error.
    Stderr(Bytes),
}

/// A started command: its output until it ends, and its input when attached.
pub struct ExecSession {
    /// Engine exec id (for [`Driver::exec_exit`] and [`Driver::resize`]).
    pub id: String,
    /// Output in arrival order; ends when the command does.
    pub output: BoxStream<'static, Result<Chunk, DriverError>>,
    /// Standard input, when asked for.
    pub input: Option<Pin<Box<dyn AsyncWrite + Send>>>,
}

/// Resource use of a running container.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, utoipa::ToSchema)]
pub struct Stats {
    /// Memory in use (bytes).
    pub memory_bytes: u64,
    /// Highest memory use seen (bytes), when the engine reports it.
    pub memory_max_bytes: u64,
    /// The memory limit (bytes).
    pub memory_limit_bytes: u64,
    /// CPU time used since start (nanoseconds).
    pub cpu_total_ns: u64,
    /// Processes and threads now.
    pub pids: u64,
}

/// A container engine.
#[async_trait::async_trait]
pub trait Driver: Send + Sync + 'static {
    /// Whether the engine answers.
    async fn ping(&self) -> Result<(), DriverError>;
    /// Whether `image` is present.
    async fn image_present(&self, image: &str) -> Result<bool, DriverError>;
    /// Create the workspace volume if it does not exist; with `device`, a
    /// volume mounting that block device ([`super::disk::FS_TYPE`], with
    /// [`super::disk::MOUNT_OPTIONS`]), re-pointed when it names another.
    async fn ensure_volume(
        &self,
        name: &str,
        labels: &HashMap<String, String>,
        device: Option<&str>,
    ) -> Result<(), DriverError>;
    /// Every volume carrying `label` (`name=value`): its name and labels.
    async fn list_volumes(
        &self,
        label: &str,
    ) -> Result<Vec<(String, HashMap<String, String>)>, DriverError>;
    /// Remove a volume (absent is fine).
    async fn remove_volume(&self, name: &str) -> Result<(), DriverError>;
    /// Create and start a container; its id.
    async fn start(&self, spec: &ContainerSpec) -> Result<String, DriverError>;
    /// Stop and remove a container (absent is fine).
    async fn remove(&self, id: &str) -> Result<(), DriverError>;
    /// A container's state.
    async fn inspect(&self, id: &str) -> Result<ContainerInfo, DriverError>;
    /// Every container carrying `label` (any value), running or not.
    async fn list(&self, label: &str) -> Result<Vec<ContainerInfo>, DriverError>;
    /// Start a command.
    async fn exec(&self, id: &str, spec: &ExecSpec) -> Result<ExecSession, DriverError>;
    /// A finished command's exit code (`None` while it runs).
    async fn exec_exit(&self, exec_id: &str) -> Result<Option<i64>, DriverError>;
    /// Resize a command's terminal.
    async fn resize(&self, exec_id: &str, rows: u16, cols: u16) -> Result<(), DriverError>;
    /// Extract a tar archive into directory `dir` of the container.
    async fn put_archive(&self, id: &str, dir: &str, tar: Bytes) -> Result<(), DriverError>;
    /// A tar archive of `path` in the container.
    async fn get_archive(
        &self,
        id: &str,
        path: &str,
    ) -> Result<BoxStream<'static, Result<Bytes, DriverError>>, DriverError>;
    /// Resource use now.
    async fn stats(&self, id: &str) -> Result<Stats, DriverError>;
    /// Containers (carrying `label`) where the kernel killed a process for
    /// running out of memory since `since` (Unix seconds), then as it happens:
    /// the container id and the time (ms since the epoch). Ends when the engine goes.
    async fn oom_events(
        &self,
        label: &str,
        since: i64,
    ) -> Result<BoxStream<'static, Result<(String, i64), DriverError>>, DriverError>;
}
