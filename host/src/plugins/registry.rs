//! The installed-plugin registry in the data directory.
//!
//! Layout: `plugins/<name>/` holds the package as installed (`plugin.toml`, the
//! component, `skills/`). The plugin's state (enabled flag, grants, configuration)
//! lives in the store. Installs and upgrades are staged next to the target and
//! swapped in with renames, so a failed install leaves nothing behind.

use super::manifest::{Manifest, check_plugin_name};
use std::fs;
use std::path::{Path, PathBuf};

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

/// The file a change announcement touches.
pub const CHANGES_FILE: &str = ".changes";

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

    /// Read the manifest of the installed package `name`.
    pub fn manifest(&self, name: &str) -> Result<(Manifest, PathBuf), RegistryError> {
        if check_plugin_name(name).is_err() {
            return Err(RegistryError::NotInstalled(name.to_string()));
        }
        let dir = self.root.join(name);
        if !dir.join("plugin.toml").is_file() {
            return Err(RegistryError::Damaged {
                name: name.to_string(),
                reason: format!("{} is missing; reinstall the plugin", dir.display()),
            });
        }
        let damaged = |reason: String| RegistryError::Damaged {
            name: name.to_string(),
            reason,
        };
        let text =
            fs::read_to_string(dir.join("plugin.toml")).map_err(|e| damaged(e.to_string()))?;
        let manifest = Manifest::parse(&text).map_err(|e| damaged(e.to_string()))?;
        Ok((manifest, dir))
    }

    /// Copy the package files in `source` next to the registry, ready to be
    /// swapped in by [`Staged::commit`]; dropping the result removes them.
    pub fn stage(&self, manifest: &Manifest, source: &Path) -> Result<Staged, RegistryError> {
        let io = |e: std::io::Error| RegistryError::Io(e.to_string());
        fs::create_dir_all(&self.root).map_err(io)?;
        let staging = tempfile::Builder::new()
            .prefix(&format!(".staging-{}-", manifest.name))
            .tempdir_in(&self.root)
            .map_err(io)?;
        if let Some(path) = &manifest.component {
            let component =
                super::package::read_inside(source, path, super::package::MAX_COMPONENT_BYTES)
                    .map_err(RegistryError::Io)?;
            let target = staging.path().join(path);
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(io)?;
            }
            fs::write(&target, component).map_err(io)?;
        }
        let manifest_text =
            toml::to_string_pretty(manifest).map_err(|e| RegistryError::Io(e.to_string()))?;
        fs::write(staging.path().join("plugin.toml"), manifest_text).map_err(io)?;
        let skills = source.join("skills");
        if skills.is_dir() {
            copy_tree(&skills, &staging.path().join("skills")).map_err(io)?;
        }
        Ok(Staged {
            staging,
            target: self.root.join(&manifest.name),
        })
    }

    /// Tell a running server watching this directory that plugin state changed
    /// (the CLI calls this after changing state in the store).
    pub fn announce_change(&self) {
        let _ = fs::create_dir_all(&self.root);
        let stamp = crate::runtime::system_clock().to_string();
        if let Err(e) = fs::write(self.root.join(CHANGES_FILE), stamp) {
            tracing::warn!(error = %e, "cannot announce the plugin change to a running server");
        }
    }

    /// Remove a plugin's files.
    pub fn remove(&self, name: &str) -> Result<(), RegistryError> {
        if check_plugin_name(name).is_err() {
            return Err(RegistryError::NotInstalled(name.to_string()));
        }
        match fs::remove_dir_all(self.root.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(RegistryError::Io(e.to_string()))
            }
            _ => Ok(()),
        }
    }
}

/// Package files staged for installation.
#[derive(Debug)]
pub struct Staged {
    staging: tempfile::TempDir,
    target: PathBuf,
}

impl Staged {
    /// Swap the staged files in place of the installed ones.
    pub fn commit(self) -> Result<PathBuf, RegistryError> {
        let io = |e: std::io::Error| RegistryError::Io(e.to_string());
        let root = self
            .target
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let name = self
            .target
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        let old = root.join(format!(".old-{name}-{}", std::process::id()));
        if self.target.exists() {
            fs::rename(&self.target, &old).map_err(io)?;
        }
        let staged = self.staging.keep();
        if let Err(e) = fs::rename(&staged, &self.target) {
            let _ = fs::rename(&old, &self.target);
            let _ = fs::remove_dir_all(&staged);
            return Err(io(e));
        }
        let _ = fs::remove_dir_all(&old);
        Ok(self.target)
    }
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
