//! What one plugin may reach, handed to the runtime by its owner: granted hosts,
//! granted secrets, configuration, its key-value space, and the clock; and the
//! key-value namespace each call works in.
//!
//! The runtime knows nothing of registries, users or databases: storage and
//! secrets come in through the small [`KvStore`] and [`SecretSource`] traits.

use super::http::HostPattern;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A boxed, sendable future (keeps the storage traits object-safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Largest key accepted by the key-value API (bytes).
pub const MAX_KV_KEY: usize = 256;
/// Largest value accepted by the key-value API (bytes).
pub const MAX_KV_VALUE: usize = 1024 * 1024;

/// A failure of a storage backend, shown to the plugin as `unavailable` or `invalid-input`.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// The request breaks a rule (key size, value size, quota).
    #[error("{0}")]
    Invalid(String),
    /// The backend failed.
    #[error("key-value store unavailable: {0}")]
    Unavailable(String),
}

/// Whose key-value data a call reads and writes, inside one plugin's space.
///
/// The host picks it for every call: a call made for a user gets that user's
/// namespace; a plugin granted shared KV gets the plugin-wide one. Calls made for
/// other parties (channel instances, schedule owners) add their own variants.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KvNamespace {
    /// The data of the user (by id) the call is made for.
    User(String),
    /// The plugin-wide space every caller shares (manifest `kv = "shared"`, granted).
    Shared,
    /// The local operator's space: CLI calls made without `--user`.
    Local,
    /// A channel instance's space (by instance id): webhook and delivery calls.
    Channel(String),
}

impl KvNamespace {
    /// The stored form: `user:ID`, `shared`, `local` or `channel:ID`.
    pub fn key(&self) -> String {
        match self {
            KvNamespace::User(id) => format!("user:{id}"),
            KvNamespace::Shared => "shared".to_string(),
            KvNamespace::Local => "local".to_string(),
            KvNamespace::Channel(id) => format!("channel:{id}"),
        }
    }
}

/// Key-value storage, one space per (plugin, namespace): a call only ever sees
/// the namespace the host chose for it.
pub trait KvStore: Send + Sync {
    /// Read a key.
    fn get<'a>(
        &'a self,
        plugin: &'a str,
        ns: &'a KvNamespace,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, KvError>>;
    /// Write a key.
    fn set<'a>(
        &'a self,
        plugin: &'a str,
        ns: &'a KvNamespace,
        key: &'a str,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), KvError>>;
    /// Delete a key; `true` when it existed.
    fn delete<'a>(
        &'a self,
        plugin: &'a str,
        ns: &'a KvNamespace,
        key: &'a str,
    ) -> BoxFuture<'a, Result<bool, KvError>>;
    /// Keys with `prefix`, sorted, at most `limit`.
    fn list<'a>(
        &'a self,
        plugin: &'a str,
        ns: &'a KvNamespace,
        prefix: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<String>, KvError>>;
}

/// Where secret values come from.
pub trait SecretSource: Send + Sync {
    /// The value of secret `name` of `plugin`, if set.
    fn secret<'a>(&'a self, plugin: &'a str, name: &'a str) -> BoxFuture<'a, Option<String>>;
}

/// Everything one plugin is allowed, fixed for the plugin's current grant.
#[derive(Clone)]
pub struct PluginEnv {
    /// The plugin's name (KV namespace, log tag).
    pub name: String,
    /// Granted outbound HTTP destinations.
    pub http: Arc<[HostPattern]>,
    /// Granted secret names.
    pub secrets: Vec<String>,
    /// Where granted secrets are read from.
    pub secret_source: Option<Arc<dyn SecretSource>>,
    /// Effective configuration (set values over manifest defaults).
    pub config: BTreeMap<String, String>,
    /// The KV backend, present only when `kv` was granted.
    pub kv: Option<Arc<dyn KvStore>>,
    /// Shared KV was granted: every call uses [`KvNamespace::Shared`], whoever makes it.
    pub kv_shared: bool,
    /// The clock behind `host.now` (ms since the Unix epoch).
    pub clock: fn() -> u64,
}

impl PluginEnv {
    /// An environment that grants nothing.
    pub fn deny_all(name: &str) -> Self {
        Self {
            name: name.to_string(),
            http: Arc::from(Vec::new()),
            secrets: Vec::new(),
            secret_source: None,
            config: BTreeMap::new(),
            kv: None,
            kv_shared: false,
            clock: system_clock,
        }
    }
}

/// Milliseconds since the Unix epoch from the system clock.
pub fn system_clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Per-call resource limits.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    /// Linear-memory cap in bytes (all memories of the instance together).
    pub memory_bytes: usize,
    /// Wall-clock deadline for instantiation plus the call.
    pub timeout: Duration,
    /// Fuel for the call, `None` for unlimited.
    pub fuel: Option<u64>,
    /// Largest result the host accepts (bytes of content).
    pub max_output_bytes: usize,
}

impl Default for CallLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            timeout: Duration::from_secs(10),
            fuel: None,
            max_output_bytes: 4 << 20,
        }
    }
}
