//! Plugins: packages and manifests, verification before acceptance, the
//! installed-plugin registry (package files on disk, state in the store), grants,
//! configuration and secrets, loading an installed plugin into the runtime with
//! exactly what it was granted, and the live set a server calls into.

mod admin;
pub mod build;
mod capabilities;
pub mod installs;
pub mod live;
pub mod manifest;
pub mod package;
pub mod registry;
pub mod scaffold;

use crate::runtime::{
    CallLimits, HostPattern, LoadError, LoadedComponent, PluginEnv, PluginError, Runtime, channel,
    system_clock,
};
use crate::skills::{self, Skill};
use crate::store::{PluginRow, SecretCipher, SqlKv, SqlSecrets, Store, StoreError};
use crate::tools::{self, ToolEntry};
use manifest::{Capabilities, Kind, KvAccess, Manifest};
use package::{Package, PackageError};
use registry::{Registry, RegistryError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    #[error("plugin `{0}` is disabled (an administrator can enable it again)")]
    Disabled(String),
    /// No plugin by that name (or not one the caller may see).
    #[error("no plugin named `{0}` is installed")]
    NotInstalled(String),
    /// The plugin's owner differs from the installing user.
    #[error("the plugin name `{0}` is not available; choose another name")]
    Owned(String),
    /// The store failed.
    #[error("plugin state: {0}")]
    Store(#[from] StoreError),
    /// A configuration value or grant request is malformed.
    #[error("{0}")]
    Config(String),
    /// The plugin declares no such config key or secret.
    #[error("{0}")]
    UnknownKey(String),
    /// A grant asks for a capability the plugin does not request.
    #[error("{0}")]
    NotRequested(String),
    /// The plugin cannot run yet (a required config value is missing).
    #[error("{0}")]
    NotReady(String),
    /// The package holds skill folders only: there is nothing to call.
    #[error("plugin `{0}` has no component: it holds only skills")]
    NoComponent(String),
}

/// Mutable, per-installation facts about a plugin, kept in the store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginState {
    /// Whether calls are allowed.
    pub enabled: bool,
    /// What an administrator granted (a subset of what the manifest requests).
    pub granted: Capabilities,
    /// Configuration values.
    pub config: BTreeMap<String, String>,
    /// When the current version was installed (ms since the epoch).
    pub installed_at: u64,
    /// The installing user; `None` for plugins shared with everyone.
    pub owner_id: Option<String>,
    /// Increases with every change (hot reload compares it).
    pub revision: i64,
}

impl PluginState {
    fn from_row(row: &PluginRow) -> Result<Self, StoreError> {
        let corrupt =
            |e: serde_json::Error| StoreError::Corrupt(format!("plugin {}: {e}", row.name));
        Ok(Self {
            enabled: row.enabled,
            granted: serde_json::from_str(&row.granted).map_err(corrupt)?,
            config: serde_json::from_str(&row.config).map_err(corrupt)?,
            installed_at: row.installed_at as u64,
            owner_id: row.owner_id.clone(),
            revision: row.revision,
        })
    }

    fn to_row(&self, manifest: &Manifest) -> PluginRow {
        PluginRow {
            name: manifest.name.clone(),
            version: manifest.version.to_string(),
            owner_id: self.owner_id.clone(),
            enabled: self.enabled,
            granted: serde_json::to_string(&self.granted).unwrap_or_else(|_| "{}".into()),
            config: serde_json::to_string(&self.config).unwrap_or_else(|_| "{}".into()),
            installed_at: self.installed_at as i64,
            updated_at: 0,
            revision: self.revision,
        }
    }
}

/// One installed plugin: its manifest, state and package directory.
#[derive(Debug, Clone)]
pub struct Installed {
    /// Its manifest.
    pub manifest: Manifest,
    /// Its state.
    pub state: PluginState,
    /// Its package directory.
    pub dir: PathBuf,
}

impl Installed {
    /// What the manifest requests that is not granted.
    pub fn pending(&self) -> Capabilities {
        self.manifest.capabilities.beyond(&self.state.granted)
    }

    /// Whether a user may see and call it: shared plugins are everyone's;
    /// user-installed ones only their owner's (and administrators').
    pub fn visible_to(&self, user_id: &str, admin: bool) -> bool {
        admin || self.state.owner_id.as_deref().is_none_or(|o| o == user_id)
    }
}

/// How to install.
#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    /// Grant everything the manifest requests (administrators only).
    pub grant_all: bool,
    /// The installing user, for plugins private to them; `None` installs a shared plugin.
    pub owner_id: Option<String>,
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
    /// Prompts (kind `prompt`).
    pub prompts: Vec<crate::prompts::PromptEntry>,
    /// Fixed resources (kind `resource`).
    pub resources: Vec<crate::resources::ResourceEntry>,
    /// Resource URI templates (kind `resource`).
    pub templates: Vec<crate::resources::TemplateEntry>,
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

/// Installed plugins: package files under one data directory, state in a store.
pub struct PluginManager {
    runtime: Arc<Runtime>,
    registry: Registry,
    store: Store,
    kv: Arc<SqlKv>,
    secrets: Arc<SqlSecrets>,
    scratch: PathBuf,
}

impl PluginManager {
    /// Plugins installed under `data_dir` with state in `store`, run by `runtime`;
    /// secrets are sealed with `cipher`.
    pub fn new(data_dir: &Path, runtime: Arc<Runtime>, store: Store, cipher: SecretCipher) -> Self {
        Self {
            runtime,
            registry: Registry::new(data_dir),
            kv: Arc::new(SqlKv::new(store.clone())),
            secrets: Arc::new(SqlSecrets::new(store.clone(), cipher)),
            store,
            scratch: data_dir.join("tmp"),
        }
    }

    /// The store holding plugin state.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Every installed plugin, by name. Damaged ones are logged and skipped.
    pub async fn list(&self) -> Result<Vec<Installed>, PluginsError> {
        let mut out = Vec::new();
        for row in self.store.plugins().await? {
            match self.installed(&row) {
                Ok(p) => out.push(p),
                Err(e) => tracing::warn!(plugin = %row.name, error = %e, "skipping plugin"),
            }
        }
        Ok(out)
    }

    /// One installed plugin.
    pub async fn get(&self, name: &str) -> Result<Installed, PluginsError> {
        match self.store.plugin(name).await {
            Ok(row) => self.installed(&row),
            Err(StoreError::NotFound) => Err(PluginsError::NotInstalled(name.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    fn installed(&self, row: &PluginRow) -> Result<Installed, PluginsError> {
        let (manifest, dir) = self.registry.manifest(&row.name)?;
        Ok(Installed {
            manifest,
            state: PluginState::from_row(row)?,
            dir,
        })
    }

    /// Where plugin and channel secrets are sealed and read.
    pub fn secrets(&self) -> &Arc<SqlSecrets> {
        &self.secrets
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
    /// still requests are kept and the rest stays pending until an administrator
    /// grants it. A failure leaves the previous installation untouched.
    pub async fn install(
        &self,
        path: &Path,
        options: &InstallOptions,
    ) -> Result<InstallReport, PluginsError> {
        let package = Package::open(path, &self.scratch)?;
        let contents = self.verify(&package).await?;
        let manifest = &package.manifest;
        let previous = match self.get(&manifest.name).await {
            Ok(p) => Some(p),
            Err(PluginsError::NotInstalled(_) | PluginsError::Registry(_)) => None,
            Err(e) => return Err(e),
        };
        if let (Some(owner), Some(prev)) = (&options.owner_id, &previous)
            && prev.state.owner_id.as_ref() != Some(owner)
        {
            return Err(PluginsError::Owned(manifest.name.clone()));
        }
        let granted = if options.grant_all {
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
            owner_id: previous
                .as_ref()
                .map_or(options.owner_id.clone(), |p| p.state.owner_id.clone()),
            revision: 0,
        };
        let staged = self.registry.stage(manifest, &package.dir)?;
        let old_row = self.store.plugin(&manifest.name).await.ok();
        let row = self.store.put_plugin(&state.to_row(manifest)).await?;
        let dir = match staged.commit() {
            Ok(dir) => dir,
            Err(e) => {
                let restored = match &old_row {
                    Some(old) => self.store.put_plugin(old).await.map(|_| ()),
                    None => self.store.delete_plugin(&manifest.name).await,
                };
                if let Err(undo) = restored {
                    tracing::error!(plugin = %manifest.name, error = %undo, "cannot undo a failed install");
                }
                return Err(e.into());
            }
        };
        self.registry.announce_change();
        if let Err(e) = self.prune_cache().await {
            tracing::warn!(error = %e, "cannot prune the precompiled artifacts");
        }
        let installed = Installed {
            manifest: manifest.clone(),
            state: PluginState::from_row(&row)?,
            dir,
        };
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
        let Some(bytes) = &package.component else {
            return skills_only(manifest, &package.dir);
        };
        let component = self.runtime.compile(bytes)?;
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
        add_folder_skills(&mut contents, manifest, dir)?;
        if manifest.has(Kind::Channel) {
            contents.channel = Some(self.runtime.describe_channel(loaded).await?);
        }
        if manifest.has(Kind::Prompt) {
            let specs = self.runtime.list_prompts(loaded).await?;
            contents.prompts = crate::prompts::check_specs(&manifest.name, specs)
                .map_err(PluginsError::Invalid)?;
        }
        if manifest.has(Kind::Resource) {
            let (fixed, templates) = self.runtime.list_resources(loaded).await?;
            (contents.resources, contents.templates) =
                crate::resources::check_specs(&manifest.name, fixed, templates)
                    .map_err(PluginsError::Invalid)?;
        }
        Ok(contents)
    }

    /// Load an installed, enabled plugin with its grants and configuration.
    pub async fn load(&self, name: &str) -> Result<Loaded, PluginsError> {
        self.load_installed(self.get(name).await?)
    }

    /// Load `installed` if it is enabled.
    pub fn load_installed(&self, installed: Installed) -> Result<Loaded, PluginsError> {
        let name = installed.manifest.name.clone();
        if !installed.state.enabled {
            return Err(PluginsError::Disabled(name));
        }
        let manifest = &installed.manifest;
        let Some(path) = &manifest.component else {
            return Err(PluginsError::NoComponent(name));
        };
        let bytes = package::read_inside(&installed.dir, path, package::MAX_COMPONENT_BYTES)
            .map_err(|e| RegistryError::Damaged {
                name: name.clone(),
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
        let mut config = BTreeMap::new();
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
                    return Err(PluginsError::NotReady(format!(
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
            secret_source: Some(self.secrets.clone() as Arc<dyn crate::runtime::SecretSource>),
            config,
            kv: (granted.kv.any()).then(|| self.kv.clone() as Arc<dyn crate::runtime::KvStore>),
            kv_shared: granted.kv == KvAccess::Shared,
            clock: system_clock,
        })
    }
}

/// What a package without a component offers: its skill folders, at least one.
pub fn skills_only(manifest: &Manifest, dir: &Path) -> Result<Contents, PluginsError> {
    let mut contents = Contents::default();
    add_folder_skills(&mut contents, manifest, dir)?;
    if contents.skills.is_empty() {
        return Err(PluginsError::Invalid(
            "plugin.toml names no `component` and the package holds no skills/NAME/SKILL.md folder: add a component, or at least one skill folder".into(),
        ));
    }
    Ok(contents)
}

fn add_folder_skills(
    contents: &mut Contents,
    manifest: &Manifest,
    dir: &Path,
) -> Result<(), PluginsError> {
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
    Ok(())
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
