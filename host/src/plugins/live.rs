//! The live plugin set of a running server, with hot reload.
//!
//! [`PluginHost`] keeps one [`Live`] entry per installed plugin: the linked
//! component (its `InstancePre`), the tools, skills and channel it offers, or why
//! it cannot run. A change (through the API, or through the CLI against the same
//! data dir, seen by watching `plugins/`) rebuilds only the entries whose stored
//! revision moved, then swaps the whole map at once. Calls clone an `Arc<Live>`
//! first, so a reload never disturbs a call in flight.

use super::registry::CHANGES_FILE;
use super::{Contents, Installed, PluginManager, PluginsError};
use crate::runtime::LoadedComponent;
use notify::Watcher;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// One installed plugin as the server sees it now.
pub struct Live {
    /// Manifest, state and directory.
    pub installed: Installed,
    /// The linked component; `None` when disabled or not runnable.
    pub component: Option<LoadedComponent>,
    /// What it offers (empty when it cannot run).
    pub contents: Contents,
    /// Why it cannot run (disabled, missing configuration, broken package).
    pub problem: Option<String>,
}

impl Live {
    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.installed.manifest.name
    }
}

/// What a sync changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Plugins (re)loaded.
    pub loaded: Vec<String>,
    /// Plugins dropped.
    pub removed: Vec<String>,
}

type LiveMap = Arc<BTreeMap<String, Arc<Live>>>;

/// The live plugin set.
pub struct PluginHost {
    manager: PluginManager,
    live: RwLock<LiveMap>,
    sync_lock: tokio::sync::Mutex<()>,
    changes: tokio::sync::watch::Sender<u64>,
    installs: super::installs::Installs,
}

impl PluginHost {
    /// Load every installed plugin.
    pub async fn start(manager: PluginManager) -> Result<Arc<Self>, PluginsError> {
        let host = Arc::new(Self {
            manager,
            live: RwLock::new(Arc::default()),
            sync_lock: tokio::sync::Mutex::new(()),
            changes: tokio::sync::watch::Sender::new(0),
            installs: super::installs::Installs::default(),
        });
        host.sync().await?;
        Ok(host)
    }

    /// The manager behind the live set.
    pub fn manager(&self) -> &PluginManager {
        &self.manager
    }

    /// Installs compiling or recently failed.
    pub fn installs(&self) -> &super::installs::Installs {
        &self.installs
    }

    /// Every live plugin, by name.
    pub fn snapshot(&self) -> LiveMap {
        self.live.read().map(|m| m.clone()).unwrap_or_default()
    }

    /// A receiver that sees a new generation number after every sync that
    /// loaded or dropped a plugin.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// One live plugin.
    pub fn get(&self, name: &str) -> Option<Arc<Live>> {
        self.live.read().ok()?.get(name).cloned()
    }

    /// Bring the live set in line with the store: rebuild entries whose revision
    /// changed, drop removed plugins.
    pub async fn sync(&self) -> Result<SyncReport, PluginsError> {
        let _one_at_a_time = self.sync_lock.lock().await;
        let current = self.snapshot();
        let rows = self.manager.store().plugins().await?;
        let mut next = BTreeMap::new();
        let mut report = SyncReport::default();
        for row in rows {
            let unchanged = current.get(&row.name).filter(|l| {
                l.installed.state.revision == row.revision
                    && l.installed.manifest.version.to_string() == row.version
            });
            if let Some(live) = unchanged {
                next.insert(row.name.clone(), live.clone());
                continue;
            }
            let live = match self.manager.installed(&row) {
                Ok(installed) => self.build(installed).await,
                Err(e) => {
                    tracing::warn!(plugin = %row.name, error = %e, "plugin cannot be loaded");
                    continue;
                }
            };
            report.loaded.push(row.name.clone());
            next.insert(row.name.clone(), Arc::new(live));
        }
        report.removed = current
            .keys()
            .filter(|k| !next.contains_key(*k))
            .cloned()
            .collect();
        if !report.loaded.is_empty() || !report.removed.is_empty() {
            tracing::info!(loaded = ?report.loaded, removed = ?report.removed, "plugins reloaded");
        }
        if let Ok(mut live) = self.live.write() {
            *live = Arc::new(next);
        }
        if !report.loaded.is_empty() || !report.removed.is_empty() {
            self.changes.send_modify(|generation| *generation += 1);
        }
        Ok(report)
    }

    async fn build(&self, installed: Installed) -> Live {
        if !installed.state.enabled {
            return Live {
                problem: Some(PluginsError::Disabled(installed.manifest.name.clone()).to_string()),
                installed,
                component: None,
                contents: Contents::default(),
            };
        }
        if installed.manifest.component.is_none() {
            let found = super::skills_only(&installed.manifest, &installed.dir);
            let problem = found.as_ref().err().map(ToString::to_string);
            return Live {
                contents: found.unwrap_or_default(),
                installed,
                component: None,
                problem,
            };
        }
        let loaded = match self.manager.load_installed(installed.clone()) {
            Ok(loaded) => loaded,
            Err(e) => {
                return Live {
                    installed,
                    component: None,
                    contents: Contents::default(),
                    problem: Some(e.to_string()),
                };
            }
        };
        match self.manager.contents_of(&loaded).await {
            Ok(contents) => Live {
                installed,
                component: Some(loaded.component),
                contents,
                problem: None,
            },
            Err(e) => Live {
                installed,
                component: None,
                contents: Contents::default(),
                problem: Some(e.to_string()),
            },
        }
    }

    /// Watch the plugins directory and resync on changes (debounced), and every
    /// `period` as a backstop. The returned task runs until aborted.
    pub fn watch(self: &Arc<Self>, period: Duration) -> tokio::task::JoinHandle<()> {
        let root = self.manager.registry().root().to_path_buf();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let watcher = start_watcher(&root, tx);
        let host = Arc::downgrade(self);
        tokio::spawn(async move {
            let _watcher = watcher;
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            loop {
                tokio::select! {
                    event = rx.recv() => {
                        if event.is_none() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        while rx.try_recv().is_ok() {}
                    }
                    _ = tick.tick() => {}
                }
                let Some(host) = host.upgrade() else { break };
                if let Err(e) = host.sync().await {
                    tracing::warn!(error = %e, "plugin resync failed");
                }
            }
        })
    }
}

fn start_watcher(
    root: &Path,
    tx: tokio::sync::mpsc::UnboundedSender<()>,
) -> Option<notify::RecommendedWatcher> {
    if let Err(e) = std::fs::create_dir_all(root) {
        tracing::warn!(dir = %root.display(), error = %e, "cannot create the plugins directory");
    }
    let relevant = |path: &PathBuf| {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        name == CHANGES_FILE || !name.starts_with('.')
    };
    let handler = move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !event.kind.is_access()
            && event.paths.iter().any(relevant)
        {
            let _ = tx.send(());
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the plugins directory; changes made outside the server apply within the resync period");
            return None;
        }
    };
    if let Err(e) = watcher.watch(root, notify::RecursiveMode::NonRecursive) {
        tracing::warn!(dir = %root.display(), error = %e, "cannot watch the plugins directory");
        return None;
    }
    Some(watcher)
}
