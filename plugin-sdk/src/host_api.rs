//! What the host offers every plugin: logging, configuration, secrets, key-value
//! storage, progress reports and the clock.

use crate::bindings::switchyard::plugin::host;
pub use crate::bindings::switchyard::plugin::types::LogLevel;
use crate::error::Result;

/// Logging into the host's structured log, tagged with the plugin's name.
pub mod log {
    use super::{LogLevel, host};

    /// Log `message` at `level`.
    pub fn log(level: LogLevel, message: &str) {
        host::log(level, message);
    }
    /// Log at debug level.
    pub fn debug(message: &str) {
        log(LogLevel::Debug, message);
    }
    /// Log at info level.
    pub fn info(message: &str) {
        log(LogLevel::Info, message);
    }
    /// Log at warn level.
    pub fn warn(message: &str) {
        log(LogLevel::Warn, message);
    }
    /// Log at error level.
    pub fn error(message: &str) {
        log(LogLevel::Error, message);
    }
}

/// Configuration values and granted secrets.
pub mod config {
    use super::{Result, host};

    /// A configuration value (set by an admin, or the manifest default).
    pub fn get(key: &str) -> Option<String> {
        host::get_config(key)
    }

    /// A granted secret; `denied` when not granted, `not-found` when unset.
    pub fn secret(name: &str) -> Result<String> {
        host::get_secret(name)
    }
}

/// The plugin's own key-value space (needs `capabilities.kv = true`).
pub mod kv {
    use super::{Result, host};
    use serde::{Serialize, de::DeserializeOwned};

    /// Read raw bytes.
    pub fn get(key: &str) -> Result<Option<Vec<u8>>> {
        host::kv_get(key)
    }
    /// Write raw bytes.
    pub fn set(key: &str, value: &[u8]) -> Result<()> {
        host::kv_set(key, value)
    }
    /// Delete a key; `true` when it existed.
    pub fn delete(key: &str) -> Result<bool> {
        host::kv_delete(key)
    }
    /// Keys starting with `prefix`, sorted.
    pub fn list(prefix: &str) -> Result<Vec<String>> {
        host::kv_list(prefix)
    }
    /// Read a JSON value.
    pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>> {
        get(key)?
            .map(|bytes| serde_json::from_slice(&bytes).map_err(Into::into))
            .transpose()
    }
    /// Write a JSON value.
    pub fn set_json<T: Serialize>(key: &str, value: &T) -> Result<()> {
        set(key, &serde_json::to_vec(value)?)
    }
}

/// Report how far the current call has got (e.g. `progress(3.0, Some(10.0), "step 3")`).
/// MCP clients that asked for progress receive it; otherwise it costs next to nothing.
pub fn progress(progress: f64, total: Option<f64>, message: &str) {
    let message = (!message.is_empty()).then_some(message);
    host::report_progress(progress, total, message);
}

/// The host's clock in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    host::now()
}
