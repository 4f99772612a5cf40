//! Changing an installed plugin: grants, enabled flag, configuration, secrets,
//! removal. Every change lands in the store and is announced to running servers.

use super::manifest::Capabilities;
use super::{Installed, PluginManager, PluginState, PluginsError};
use crate::runtime::HostPattern;
use crate::store::StoreError;

impl PluginManager {
    /// Grant requested capabilities: all of them, or the listed parts (any host
    /// pattern when the plugin requests `*`).
    pub async fn grant(
        &self,
        name: &str,
        what: Option<&Capabilities>,
    ) -> Result<Installed, PluginsError> {
        let mut installed = self.get(name).await?;
        let requested = &installed.manifest.capabilities;
        let add = what.unwrap_or(requested);
        let mut unrequested = add.beyond(requested);
        if requested.http.iter().any(|h| h == "*") {
            unrequested.http.clear();
        }
        if !unrequested.is_empty() {
            return Err(PluginsError::NotRequested(format!(
                "plugin `{name}` does not request {unrequested}; it requests {requested}"
            )));
        }
        if let Some(bad) = add.http.iter().find(|h| HostPattern::parse(h).is_err()) {
            return Err(PluginsError::Config(format!(
                "`{bad}` is not a valid host pattern"
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
        g.kv = g.kv.max(add.kv);
        self.save_state(installed).await
    }

    /// Revoke every grant.
    pub async fn revoke(&self, name: &str) -> Result<Installed, PluginsError> {
        let mut installed = self.get(name).await?;
        installed.state.granted = Capabilities::default();
        self.save_state(installed).await
    }

    /// Enable or disable calls.
    pub async fn set_enabled(&self, name: &str, enabled: bool) -> Result<Installed, PluginsError> {
        let mut installed = self.get(name).await?;
        installed.state.enabled = enabled;
        self.save_state(installed).await
    }

    /// Set (or with `None`, unset) a configuration value, checked against the manifest.
    pub async fn set_config(
        &self,
        name: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<Installed, PluginsError> {
        let mut installed = self.get(name).await?;
        let spec = installed.manifest.config.get(key).ok_or_else(|| {
            let known: Vec<_> = installed.manifest.config.keys().cloned().collect();
            PluginsError::UnknownKey(format!(
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
        self.save_state(installed).await
    }

    /// Set (or with `None`, delete) a secret the manifest declares.
    pub async fn set_secret(
        &self,
        name: &str,
        secret: &str,
        value: Option<&str>,
    ) -> Result<(), PluginsError> {
        let installed = self.get(name).await?;
        if !installed
            .manifest
            .capabilities
            .secrets
            .iter()
            .any(|s| s == secret)
        {
            return Err(PluginsError::UnknownKey(format!(
                "plugin `{name}` does not declare secret `{secret}` under capabilities.secrets"
            )));
        }
        self.secrets.set(name, secret, value).await?;
        self.registry.announce_change();
        Ok(())
    }

    /// The names of the secrets that have values.
    pub async fn secret_names(&self, name: &str) -> Result<Vec<String>, PluginsError> {
        Ok(self.store.plugin_secret_names(name).await?)
    }

    /// Remove a plugin with its key-value data and secrets.
    pub async fn remove(&self, name: &str) -> Result<(), PluginsError> {
        match self.store.delete_plugin(name).await {
            Err(StoreError::NotFound) => return Err(PluginsError::NotInstalled(name.into())),
            other => other?,
        }
        self.registry.remove(name)?;
        self.registry.announce_change();
        if let Err(e) = self.prune_cache().await {
            tracing::warn!(error = %e, "cannot prune the precompiled artifacts");
        }
        Ok(())
    }

    /// Drop precompiled artifacts no installed plugin's component uses (older
    /// builds of upgraded plugins, removed plugins, other engines).
    pub async fn prune_cache(&self) -> Result<crate::runtime::Pruned, PluginsError> {
        let mut keep = Vec::new();
        for installed in self.list().await? {
            if let Some(path) = &installed.manifest.component
                && let Ok(bytes) = super::package::read_inside(
                    &installed.dir,
                    path,
                    super::package::MAX_COMPONENT_BYTES,
                )
            {
                keep.push(bytes);
            }
        }
        let runtime = self.runtime.clone();
        let pruned = tokio::task::spawn_blocking(move || runtime.prune_cache(&keep))
            .await
            .unwrap_or_default();
        if pruned.files > 0 {
            tracing::info!(
                files = pruned.files,
                bytes = pruned.bytes,
                "pruned precompiled plugin artifacts"
            );
        }
        Ok(pruned)
    }

    async fn save_state(&self, installed: Installed) -> Result<Installed, PluginsError> {
        let row = self
            .store
            .put_plugin(&installed.state.to_row(&installed.manifest))
            .await?;
        self.registry.announce_change();
        Ok(Installed {
            state: PluginState::from_row(&row)?,
            ..installed
        })
    }
}
