//! Where switchyard keeps its data and how the runtime is set up from it.

use crate::runtime::RuntimeOptions;
use std::path::{Path, PathBuf};

/// The default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "switchyard-data";

/// Process-wide settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Root of everything switchyard stores (plugins, KV, secrets, caches).
    pub data_dir: PathBuf,
}

impl Config {
    /// Settings rooted at `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Runtime options with the precompiled-artifact cache under `<data dir>/cache`.
    pub fn runtime_options(&self) -> RuntimeOptions {
        RuntimeOptions {
            cache_dir: Some(self.data_dir.join("cache")),
            ..RuntimeOptions::default()
        }
    }
}
