//! The installed-plugin registry in the data directory.
//!
//! Layout: `plugins/<name>/` holds the package as installed (`plugin.toml`, the
//! component, `skills/`) plus `state.json` (enabled flag, granted capabilities,
//! configuration). Installs and upgrades are staged next to the target and swapped
//! in with renames, so a failed install leaves nothing behind.

use super::manifest::{Capabilities, Manifest, check_plugin_name};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Mutable, per-installation facts about a plugin.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PluginState {
    /// Whether calls are allowed.
    pub enabled: bool,
    /// What an administrator granted (a subset of what the manifest requests).
    pub granted: Capabilities,
    /// Configuration values set by an administrator.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// When the current version was installed (ms since the epoch).
    pub installed_at: u64,
}

/// One installed plugin.
#[derive(Debug, Clone)]
pub struct Installed {
    /// Its manifest.
    pub manifest: Manifest,
    /// Its state.
    pub state: PluginState,
    /// Its directory.
    pub dir: PathBuf,
}

impl Installed {
    /// What the manifest requests that is not granted.
    pub fn pending(&self) -> Capabilities {
        self.manifest.capabilities.beyond(&self.state.granted)
    }
}

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No plugin by that name.
    #[error("no plugin named `{0}` is installed (see `switchyard plugin list`)")]
    NotInstalled(String),
    /// The registry on disk is damaged.
    #[error("plugin `{name}` is damaged on disk: {reason}")]
    Damaged {
        /// The plugin.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A file operation failed.
    #[error("{0}")]
    Io(String),
}

/// The registry rooted at `<data dir>/plugins`.
#[derive(Debug, Clone)]
pub struct Registry {
    root: PathBuf,
}

impl Registry {
    /// The registry under `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            root: data_dir.join("plugins"),
        }
    }

    /// The directory plugins live in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// All installed plugins, sorted by name. Damaged entries are logged and skipped.
    pub fn list(&self) -> Vec<Installed> {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| check_plugin_name(n).is_ok())
            .collect();
        names.sort();
        names
            .into_iter()
            .filter_map(|name| match self.get(&name) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::warn!(plugin = %name, error = %e, "skipping plugin");
                    None
                }
            })
            .collect()
    }

    /// One installed plugin.
    pub fn get(&self, name: &str) -> Result<Installed, RegistryError> {
        if check_plugin_name(name).is_err() {
            return Err(RegistryError::NotInstalled(name.to_string()));
        }
        let dir = self.root.join(name);
        if !dir.join("plugin.toml").is_file() {
            return Err(RegistryError::NotInstalled(name.to_string()));
        }
        let damaged = |reason: String| RegistryError::Damaged {
            name: name.to_string(),
            reason,
        };
        let text =
            fs::read_to_string(dir.join("plugin.toml")).map_err(|e| damaged(e.to_string()))?;
        let manifest = Manifest::parse(&text).map_err(|e| damaged(e.to_string()))?;
        let state = fs::read(dir.join("state.json"))
            .map_err(|e| damaged(format!("state.json: {e}")))
            .and_then(|b| {
                serde_json::from_slice(&b).map_err(|e| damaged(format!("state.json: {e}")))
            })?;
        Ok(Installed {
            manifest,
            state,
            dir,
        })
    }

    /// Install the package files in `source` (copied) under the manifest's name,
    /// with `state`. Replaces an existing installation atomically.
    pub fn put(
        &self,
        manifest: &Manifest,
        source: &Path,
        state: &PluginState,
    ) -> Result<Installed, RegistryError> {
        let io = |e: std::io::Error| RegistryError::Io(e.to_string());
        fs::create_dir_all(&self.root).map_err(io)?;
        let staging = tempfile::Builder::new()
            .prefix(&format!(".staging-{}-", manifest.name))
            .tempdir_in(&self.root)
            .map_err(io)?;
        let component = super::package::read_inside(
            source,
            &manifest.component,
            super::package::MAX_COMPONENT_BYTES,
        )
        .map_err(RegistryError::Io)?;
        let target = staging.path().join(&manifest.component);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(io)?;
        }
        fs::write(&target, component).map_err(io)?;
        let manifest_text =
            toml::to_string_pretty(manifest).map_err(|e| RegistryError::Io(e.to_string()))?;
        fs::write(staging.path().join("plugin.toml"), manifest_text).map_err(io)?;
        let skills = source.join("skills");
        if skills.is_dir() {
            copy_tree(&skills, &staging.path().join("skills")).map_err(io)?;
        }
        write_json(&staging.path().join("state.json"), state)?;
        let dir = self.root.join(&manifest.name);
        let old = self
            .root
            .join(format!(".old-{}-{}", manifest.name, std::process::id()));
        if dir.exists() {
            fs::rename(&dir, &old).map_err(io)?;
        }
        let staged = staging.keep();
        if let Err(e) = fs::rename(&staged, &dir) {
            let _ = fs::rename(&old, &dir);
            let _ = fs::remove_dir_all(&staged);
            return Err(io(e));
        }
        let _ = fs::remove_dir_all(&old);
        self.get(&manifest.name)
    }

    /// Replace a plugin's state.
    pub fn save_state(&self, name: &str, state: &PluginState) -> Result<(), RegistryError> {
        let installed = self.get(name)?;
        write_json(&installed.dir.join("state.json"), state)
    }

    /// Remove a plugin's files.
    pub fn remove(&self, name: &str) -> Result<(), RegistryError> {
        let installed = self.get(name)?;
        fs::remove_dir_all(&installed.dir).map_err(|e| RegistryError::Io(e.to_string()))
    }
}

/// Write JSON atomically (temp file + rename).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), RegistryError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| RegistryError::Io(e.to_string()))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, bytes)
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| RegistryError::Io(format!("{}: {e}", path.display())))
}

/// Copy a directory tree (regular files and directories only; links are skipped).
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let dest = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &dest)?;
        } else if kind.is_file() {
            fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}
