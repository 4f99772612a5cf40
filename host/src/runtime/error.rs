//! Typed failures of plugin calls and plugin loading.

use std::fmt;

/// The kind of a plugin call failure; the first five are reported by the plugin
/// itself (WIT `error`), the rest by the host when it had to stop the plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// Bad arguments.
    InvalidInput,
    /// Unknown tool, skill or record.
    NotFound,
    /// Capability or permission missing.
    Denied,
    /// A dependency is down.
    Unavailable,
    /// The plugin tried and failed.
    Failed,
    /// The call ran past its wall-clock deadline.
    Timeout,
    /// The plugin tried to grow memory past its cap.
    MemoryLimit,
    /// The call used up its fuel.
    FuelExhausted,
    /// The plugin trapped (panic, unreachable, bad memory access).
    Trap,
    /// The result was too large or malformed.
    InvalidOutput,
    /// The host has no free instance slot right now; retry later.
    Busy,
    /// The caller cancelled the call; the instance was stopped.
    Cancelled,
}

impl ErrorKind {
    /// The kebab-case name used in messages and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid-input",
            ErrorKind::NotFound => "not-found",
            ErrorKind::Denied => "denied",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Failed => "failed",
            ErrorKind::Timeout => "timeout",
            ErrorKind::MemoryLimit => "memory-limit",
            ErrorKind::FuelExhausted => "fuel-exhausted",
            ErrorKind::Trap => "trap",
            ErrorKind::InvalidOutput => "invalid-output",
            ErrorKind::Busy => "busy",
            ErrorKind::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed plugin call. The host keeps serving: the instance that failed is discarded.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct PluginError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// A sentence a person can act on.
    pub message: String,
    /// Capabilities the plugin tried to use without a grant during the call.
    pub denied: Vec<String>,
}

impl PluginError {
    /// A new error with no denials recorded.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            denied: Vec::new(),
        }
    }
}

impl From<super::bindings::types::Error> for PluginError {
    fn from(e: super::bindings::types::Error) -> Self {
        use super::bindings::types::Error as E;
        let (kind, message) = match e {
            E::InvalidInput(m) => (ErrorKind::InvalidInput, m),
            E::NotFound(m) => (ErrorKind::NotFound, m),
            E::Denied(m) => (ErrorKind::Denied, m),
            E::Unavailable(m) => (ErrorKind::Unavailable, m),
            E::Failed(m) => (ErrorKind::Failed, m),
        };
        Self::new(kind, message)
    }
}

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not a WebAssembly component (a core module, or garbage).
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    /// The component imports something the host does not provide.
    #[error("the component imports something the host does not provide: {0}")]
    UnsupportedImport(String),
    /// The component's exports do not match its declared kinds.
    #[error("{0}")]
    Exports(String),
    /// The host could not set up (engine, cache directory).
    #[error("runtime setup failed: {0}")]
    Setup(String),
}
