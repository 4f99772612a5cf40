//! Plugins: packages and manifests, verification before acceptance, the
//! installed-plugin registry, grants, configuration and secrets, and loading an
//! installed plugin into the runtime with exactly what it was granted.

pub mod build;
pub mod manifest;
pub mod package;
pub mod registry;
pub mod scaffold;
pub mod storage;

use crate::runtime::{
    CallLimits, HostPattern, LoadError, LoadedComponent, PluginEnv, PluginError, Runtime, channel,
    system_clock,
};
use crate::skills::{self, Skill};
use crate::tools::{self, ToolEntry};
use manifest::{Capabilities, Kind, Manifest};
use package::{Package, PackageError};
use registry::{Installed, PluginState, Registry, RegistryError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use storage::{FileKv, FileSecrets};

/// Why a plugin operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginsError {
    /// The package could not be read or its manifest is invalid.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// The component could not be compiled or linked.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The component contradicts its manifest or the contract.
    #[error("{0}")]
    Invalid(String),
    /// The plugin failed while being inspected.
    #[error("the plugin failed while listing what it offers: {0}")]
    Plugin(#[from] PluginError),
    /// The plugin is disabled.
    #[error("plugin `{0}` is disabled (enable it with `switchyard plugin enable {0}`)")]
    Disabled(String),
    /// A configuration or grant request is wrong.
    #[error("{0}")]
    Config(String),
}

/// What a plugin offers, as found by asking it.
#[derive(Debug, Clone, Default)]
pub struct Contents {
    /// Tools (kind `tool`).
    pub tools: Vec<ToolEntry>,
    /// Skills: from the `skill` export and from `skills/` folders in the package.
    pub skills: Vec<Skill>,
    /// Channel description (kind `channel`).
    pub channel: Option<channel::ChannelInfo>,
}

/// The result of an install or upgrade.
#[derive(Debug)]
pub struct InstallReport {
    /// The installed plugin.
    pub installed: Installed,
    /// The version replaced, for upgrades.
    pub replaced: Option<semver::Version>,
    /// Requested capabilities not (yet) granted.
    pub pending: Capabilities,
    /// What the plugin offers.
    pub contents: Contents,
}

/// A plugin loaded for calls.
pub struct Loaded {
    /// The registry entry.
    pub installed: Installed,
    /// The linked component.
    pub component: LoadedComponent,
}

/// Installed plugins over one data directory and runtime.
pub struct PluginManager {
    runtime: Arc<Runtime>,
    registry: Registry,
    kv: Arc<FileKv>,
    secrets: Arc<FileSecrets>,
    scratch: PathBuf,
}

impl PluginManager {
    /// Plugins installed under `data_dir`, run by `runtime`.
    pub fn new(data_dir: &Path, runtime: Arc<Runtime>) -> Self {
        Self {
            runtime,
            registry: Registry::new(data_dir),
            kv: Arc::new(FileKv::new(data_dir)),
            secrets: Arc::new(FileSecrets::new(data_dir)),
            scratch: data_dir.join("tmp"),
        }
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Verify and install (or upgrade) the package at `path`. With `grant_all`, every
    /// requested capability is granted; otherwise earlier grants that the new version
    /// still requests are kept and the rest stays pending.
    pub async fn install(
        &self,
        path: &Path,
        grant_all: bool,
    ) -> Result<InstallReport, PluginsError> {
        let package = Package::open(path, &self.scratch)?;
        let contents = self.verify(&package).await?;
        let manifest = &package.manifest;
        let previous = self.registry.get(&manifest.name).ok();
        let granted = if grant_all {
            manifest.capabilities.clone()
        } else {
            previous
                .as_ref()
                .map(|p| p.state.granted.within(&manifest.capabilities))
                .unwrap_or_default()
        };
        let config = (previous.as_ref())
            .map(|p| p.state.config.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| manifest.config.contains_key(k))
            .collect();
        let state = PluginState {
            enabled: previous.as_ref().is_none_or(|p| p.state.enabled),
            granted,
            config,
            installed_at: system_clock(),
        };
        let installed = self.registry.put(manifest, &package.dir, &state)?;
        tracing::info!(plugin = %manifest.name, version = %manifest.version, "plugin installed");
        Ok(InstallReport {
            pending: installed.pending(),
            replaced: previous.map(|p| p.manifest.version),
            installed,
            contents,
        })
    }

    /// Check a package without installing it: the component compiles, links
    /// against the host, exports exactly its declared kinds, and what it offers is valid.
    pub async fn verify(&self, package: &Package) -> Result<Contents, PluginsError> {
        let manifest = &package.manifest;
        let component = self.runtime.compile(&package.component)?;
        let exports: Vec<String> = component
            .component_type()
            .exports(self.runtime.engine())
            .map(|(n, _)| n.to_string())
            .collect();
        let env = Arc::new(PluginEnv::deny_all(&manifest.name));
        let loaded = self.runtime.load(&component, env, limits(manifest))?;
        check_exports(manifest, &exports)?;
        self.contents(manifest, &loaded, &package.dir).await
    }

    async fn contents(
        &self,
        manifest: &Manifest,
        loaded: &LoadedComponent,
        dir: &Path,
    ) -> Result<Contents, PluginsError> {
        let mut contents = Contents::default();
        if manifest.has(Kind::Tool) {
            let specs = self.runtime.list_tools(loaded).await?;
            contents.tools =
                tools::check_specs(&manifest.name, specs).map_err(PluginsError::Invalid)?;
        }
        if manifest.has(Kind::Skill) {
            for info in self.runtime.list_skills(loaded).await? {
                skills::check_name(&info.name)
                    .map_err(|e| PluginsError::Invalid(format!("skill export: {e}")))?;
                contents.skills.push(Skill::exported(&manifest.name, info));
            }
        }
        let folders =
            skills::read_dir(&dir.join("skills"), &manifest.name).map_err(PluginsError::Invalid)?;
        for skill in folders {
            if contents.skills.iter().any(|s| s.name == skill.name) {
                return Err(PluginsError::Invalid(format!(
                    "skill `{}` is defined twice",
                    skill.name
                )));
            }
            contents.skills.push(skill);
        }
        if manifest.has(Kind::Channel) {
            contents.channel = Some(self.runtime.describe_channel(loaded).await?);
        }
        Ok(contents)
    }

    /// Load an installed, enabled plugin with its grants and configuration.
    pub fn load(&self, name: &str) -> Result<Loaded, PluginsError> {
        let installed = self.registry.get(name)?;
        if !installed.state.enabled {
            return Err(PluginsError::Disabled(name.to_string()));
        }
        let manifest = &installed.manifest;
        let bytes = package::read_inside(
            &installed.dir,
            &manifest.component,
            package::MAX_COMPONENT_BYTES,
        )
        .map_err(|e| RegistryError::Damaged {
            name: name.to_string(),
            reason: e,
        })?;
        let component = self.runtime.compile(&bytes)?;
        let env = Arc::new(self.env_for(&installed)?);
        let component = self.runtime.load(&component, env, limits(manifest))?;
        Ok(Loaded {
            installed,
            component,
        })
    }

    /// What an installed plugin offers (asks the plugin).
    pub async fn contents_of(&self, loaded: &Loaded) -> Result<Contents, PluginsError> {
        self.contents(
            &loaded.installed.manifest,
            &loaded.component,
            &loaded.installed.dir,
        )
        .await
    }

    /// The tools of a loaded plugin (asks the plugin).
    pub async fn tools_of(&self, loaded: &Loaded) -> Result<Vec<ToolEntry>, PluginsError> {
        let specs = self.runtime.list_tools(&loaded.component).await?;
        tools::check_specs(&loaded.installed.manifest.name, specs).map_err(PluginsError::Invalid)
    }

    fn env_for(&self, installed: &Installed) -> Result<PluginEnv, PluginsError> {
        let manifest = &installed.manifest;
        let granted = installed.state.granted.within(&manifest.capabilities);
        let mut config = std::collections::BTreeMap::new();
        for (key, spec) in &manifest.config {
            let value = installed.state.config.get(key).cloned().or_else(|| {
                spec.default.as_ref().map(|d| match d {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            });
            match value {
                Some(v) => {
                    config.insert(key.clone(), v);
                }
                None if spec.required => {
                    return Err(PluginsError::Config(format!(
                        "plugin `{}` needs config `{key}` before it can run: switchyard plugin config {} {key} VALUE",
                        manifest.name, manifest.name
                    )));
                }
                None => {}
            }
        }
        let http: Vec<HostPattern> = granted
            .http
            .iter()
            .filter_map(|h| HostPattern::parse(h).ok())
            .collect();
        Ok(PluginEnv {
            name: manifest.name.clone(),
            http: http.into(),
            secrets: granted.secrets.clone(),
            secret_source: Some(self.secrets.clone()),
            config,
            kv: granted
                .kv
                .then(|| self.kv.clone() as Arc<dyn crate::runtime::KvStore>),
            clock: system_clock,
        })
    }

    /// Grant requested capabilities: all of them, or the listed parts (any host
    /// pattern when the plugin requests `*`).
    pub fn grant(
        &self,
        name: &str,
        what: Option<&Capabilities>,
    ) -> Result<Installed, PluginsError> {
        let mut installed = self.registry.get(name)?;
        let requested = &installed.manifest.capabilities;
        let add = what.unwrap_or(requested);
        let mut unrequested = add.beyond(requested);
        if requested.http.iter().any(|h| h == "*") {
            unrequested.http.clear();
        }
        if let Some(bad) = add.http.iter().find(|h| HostPattern::parse(h).is_err()) {
            return Err(PluginsError::Config(format!(
                "`{bad}` is not a valid host pattern"
            )));
        }
        if !unrequested.is_empty() {
            return Err(PluginsError::Config(format!(
                "plugin `{name}` does not request {unrequested}; it requests {requested}"
            )));
        }
        let g = &mut installed.state.granted;
        g.http.extend(
            add.http
                .iter()
                .filter(|h| !g.http.contains(h))
                .cloned()
                .collect::<Vec<_>>(),
        );
        g.secrets.extend(
            add.secrets
                .iter()
                .filter(|s| !g.secrets.contains(s))
                .cloned()
                .collect::<Vec<_>>(),
        );
        g.kv |= add.kv;
        self.registry.save_state(name, &installed.state)?;
        Ok(installed)
    }

    /// Revoke every grant.
    pub fn revoke(&self, name: &str) -> Result<Installed, PluginsError> {
        let mut installed = self.registry.get(name)?;
        installed.state.granted = Capabilities::default();
        self.registry.save_state(name, &installed.state)?;
        Ok(installed)
    }

    /// Enable or disable calls.
    pub fn set_enabled(&self, name: &str, enabled: bool) -> Result<Installed, PluginsError> {
        let mut installed = self.registry.get(name)?;
        installed.state.enabled = enabled;
        self.registry.save_state(name, &installed.state)?;
        Ok(installed)
    }

    /// Set (or with `None`, unset) a configuration value, checked against the manifest.
    pub fn set_config(
        &self,
        name: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<Installed, PluginsError> {
        let mut installed = self.registry.get(name)?;
        let spec = installed.manifest.config.get(key).ok_or_else(|| {
            let known: Vec<_> = installed.manifest.config.keys().cloned().collect();
            PluginsError::Config(format!(
                "plugin `{name}` has no config key `{key}` (its keys: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })?;
        match value {
            Some(v) => {
                let v = spec
                    .kind
                    .check(v)
                    .map_err(|e| PluginsError::Config(format!("config `{key}`: {e}")))?;
                installed.state.config.insert(key.to_string(), v);
            }
            None => {
                installed.state.config.remove(key);
            }
        }
        self.registry.save_state(name, &installed.state)?;
        Ok(installed)
    }

    /// Set (or with `None`, delete) a secret the manifest declares.
    pub fn set_secret(
        &self,
        name: &str,
        secret: &str,
        value: Option<&str>,
    ) -> Result<(), PluginsError> {
        let installed = self.registry.get(name)?;
        if !installed
            .manifest
            .capabilities
            .secrets
            .iter()
            .any(|s| s == secret)
        {
            return Err(PluginsError::Config(format!(
                "plugin `{name}` does not declare secret `{secret}` under capabilities.secrets"
            )));
        }
        self.secrets
            .set(name, secret, value)
            .map_err(|e| PluginsError::Config(e.to_string()))
    }

    /// The names of the secrets that have values.
    pub fn secret_names(&self, name: &str) -> Vec<String> {
        self.secrets.names(name)
    }

    /// Remove a plugin with its key-value data and secrets.
    pub fn remove(&self, name: &str) -> Result<(), PluginsError> {
        self.registry.remove(name)?;
        let cleanup = self.kv.clear(name).and_then(|()| self.secrets.clear(name));
        cleanup.map_err(|e| {
            PluginsError::Config(format!("removed, but its data could not be deleted: {e}"))
        })
    }
}

/// Per-call limits from a manifest.
pub fn limits(manifest: &Manifest) -> CallLimits {
    CallLimits {
        memory_bytes: (manifest.limits.memory_mb as usize) << 20,
        timeout: std::time::Duration::from_millis(manifest.limits.timeout_ms),
        fuel: manifest.limits.fuel,
        ..CallLimits::default()
    }
}

fn check_exports(manifest: &Manifest, exports: &[String]) -> Result<(), PluginsError> {
    let mut problems = Vec::new();
    for kind in Kind::ALL {
        match (
            manifest.has(kind),
            exports.iter().any(|e| e == kind.interface()),
        ) {
            (true, false) => problems.push(format!(
                "kinds lists \"{kind}\" but the component does not export `{}`",
                kind.interface()
            )),
            (false, true) => problems.push(format!(
                "the component exports `{}` but kinds does not list \"{kind}\"",
                kind.interface()
            )),
            _ => {}
        }
    }
    for e in exports {
        if e.starts_with("switchyard:plugin/") && !Kind::ALL.iter().any(|k| k.interface() == e) {
            problems.push(format!(
                "the component exports `{e}`, but this host speaks switchyard:plugin@0.1.0"
            ));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    if !exports.iter().any(|e| e.starts_with("switchyard:plugin/")) {
        problems.push(format!(
            "the component targets another world (it exports: {})",
            if exports.is_empty() {
                "nothing".to_string()
            } else {
                exports.join(", ")
            }
        ));
    }
    Err(PluginsError::Invalid(problems.join("; ")))
}
