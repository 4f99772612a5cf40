//! The skills service: every skill a caller may use — installed by users
//! (kept in the store, private or shared with everyone), shipped by plugins,
//! or in the skills directory — with install, visibility, removal and loading.
//!
//! The catalog of installed skills is cached in memory for the synchronous
//! MCP listing; every change on this host reloads it, and asynchronous readers
//! reload it when it is older than [`FRESH`], so another host's install shows
//! within that time. Files are always read from the store.

use super::archive::{self, Bundle};
use super::{LOCAL, Skill, Source, read_dir};
use crate::plugins::live::PluginHost;
use crate::runtime::skill::{SkillContent, SkillFile};
use crate::store::{SkillRow, Store, StoreError, now_ms};
use crate::tools::Caller;
use serde_json::json;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How old the cached catalog may be before an asynchronous reader reloads it.
pub const FRESH: Duration = Duration::from_secs(2);

/// Why a skill operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SkillError {
    /// The archive or a field is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// No such skill for this caller.
    #[error("{0}")]
    NotFound(String),
    /// The caller may see the skill but not change it.
    #[error("{0}")]
    Denied(String),
    /// The owner already has a skill of that name.
    #[error("{0}")]
    Conflict(String),
    /// The skill's plugin failed.
    #[error(transparent)]
    Plugin(#[from] crate::runtime::PluginError),
    /// The store failed.
    #[error("the store failed: {0}")]
    Store(StoreError),
}

impl From<StoreError> for SkillError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => Self::Conflict(m),
            StoreError::NotFound => Self::NotFound("no such skill".into()),
            other => Self::Store(other),
        }
    }
}

/// Who may see an installed skill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Only its owner (and administrators).
    Private,
    /// Every user.
    Shared,
}

impl Visibility {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Shared => "shared",
        }
    }
}

struct Cache {
    rows: Arc<Vec<SkillRow>>,
    loaded: Instant,
}

/// Every skill source behind one service.
pub struct Skills {
    store: Store,
    /// The live plugins (`None` in CLI commands, which see installed and folder skills).
    plugins: Option<Arc<PluginHost>>,
    dir: PathBuf,
    cache: RwLock<Cache>,
    /// Bumped whenever the installed catalog changes (MCP sessions follow it).
    changes: tokio::sync::watch::Sender<u64>,
}

/// The `@USER` source name of skills USER installed.
pub fn owner_source(username: &str) -> String {
    format!("@{username}")
}

fn entry(row: &SkillRow) -> Skill {
    let front: serde_json::Value = serde_json::from_str(&row.front).unwrap_or_default();
    Skill {
        plugin: owner_source(&row.owner),
        name: row.name.clone(),
        description: row.description.clone(),
        license: front["license"].as_str().map(str::to_string),
        metadata: serde_json::from_value(front["metadata"].clone()).unwrap_or_default(),
        source: Source::Installed(row.id.clone()),
        owner: Some(row.owner.clone()),
        visibility: Some(row.visibility.clone()),
    }
}

impl Skills {
    /// The service over `store`, the live plugins and the skills directory `dir`.
    pub async fn open(
        store: Store,
        plugins: Option<Arc<PluginHost>>,
        dir: PathBuf,
    ) -> Result<Arc<Self>, StoreError> {
        let rows = store.skills().await?;
        Ok(Arc::new(Self {
            store,
            plugins,
            dir,
            cache: RwLock::new(Cache {
                rows: Arc::new(rows),
                loaded: Instant::now(),
            }),
            changes: tokio::sync::watch::Sender::new(0),
        }))
    }

    /// Changes of the installed catalog, on this host or seen from the store.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn rows(&self) -> Arc<Vec<SkillRow>> {
        self.cache
            .read()
            .map(|c| c.rows.clone())
            .unwrap_or_default()
    }

    /// Reload the installed catalog from the store.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let rows = self.store.skills().await?;
        let moved = match self.cache.write() {
            Ok(mut cache) => {
                let moved = *cache.rows != rows;
                *cache = Cache {
                    rows: Arc::new(rows),
                    loaded: Instant::now(),
                };
                moved
            }
            Err(_) => false,
        };
        if moved {
            self.changes.send_modify(|v| *v += 1);
        }
        Ok(())
    }

    /// Reload the installed catalog when it is older than [`FRESH`] (a store
    /// failure keeps the cached one and is logged).
    pub async fn refresh(&self) {
        let stale = self
            .cache
            .read()
            .map_or(true, |c| c.loaded.elapsed() > FRESH);
        if stale && let Err(e) = self.reload().await {
            tracing::warn!(error = %e, "cannot reload the installed skills");
        }
    }

    /// Every skill `caller` may use, in the order a name is resolved: their
    /// own installed skills, the plugins', the skills directory's, then the
    /// skills other users share (administrators see every installed skill).
    pub fn visible(&self, caller: &Caller) -> Vec<Skill> {
        let rows = self.rows();
        let mut items: Vec<Skill> = rows
            .iter()
            .filter(|r| r.owner_id == caller.user_id)
            .map(entry)
            .collect();
        if let Some(plugins) = &self.plugins {
            items.extend(
                plugins
                    .snapshot()
                    .values()
                    .filter(|l| l.installed.visible_to(&caller.user_id, caller.admin))
                    .flat_map(|l| l.contents.skills.iter().cloned()),
            );
        }
        match read_dir(&self.dir, LOCAL) {
            Ok(local) => items.extend(local),
            Err(e) => tracing::warn!(error = %e, "the skills directory has an invalid skill"),
        }
        items.extend(
            rows.iter()
                .filter(|r| {
                    r.owner_id != caller.user_id && (caller.admin || r.visibility == "shared")
                })
                .map(entry),
        );
        items
    }

    /// [`Self::visible`] after a [`Self::refresh`].
    pub async fn current(&self, caller: &Caller) -> Vec<Skill> {
        self.refresh().await;
        self.visible(caller)
    }

    /// The skills named in `names` (`NAME`, the first of that name in
    /// [`Self::visible`]'s order, or `SOURCE/NAME`) that `caller` may use.
    pub async fn enabled(&self, caller: &Caller, names: &[String]) -> Vec<Skill> {
        let visible = self.current(caller).await;
        let mut out: Vec<Skill> = Vec::new();
        for wanted in names {
            let found = visible.iter().find(|s| match wanted.rsplit_once('/') {
                Some((source, name)) => s.plugin == source && s.name == name,
                None => s.name == *wanted,
            });
            if let Some(skill) = found
                && !out.iter().any(|s| s.name == skill.name)
            {
                out.push(skill.clone());
            }
        }
        out
    }

    /// The skill `source/name` as `caller` sees it.
    pub async fn find(
        &self,
        caller: &Caller,
        source: &str,
        name: &str,
    ) -> Result<Skill, SkillError> {
        self.current(caller)
            .await
            .into_iter()
            .find(|s| s.plugin == source && s.name == name)
            .ok_or_else(|| SkillError::NotFound(format!("no skill `{name}` in `{source}`")))
    }

    /// Install the skill archive `bytes` as `caller`'s, replacing their skill
    /// of the same name when `replace`; without a `visibility` a new skill is
    /// private and a replaced one keeps its own. Answers the skill and whether
    /// it replaced one.
    pub async fn install(
        &self,
        caller: &Caller,
        bytes: &[u8],
        visibility: Option<Visibility>,
        replace: bool,
    ) -> Result<(Skill, bool), SkillError> {
        let bundle = archive::open(bytes).map_err(SkillError::Invalid)?;
        let row = self.row_for(caller, &bundle, visibility.unwrap_or(Visibility::Private));
        let (stored, replaced) = self
            .store
            .put_skill(&row, &bundle.files, replace, visibility.is_none())
            .await
            .map_err(|e| match e {
                StoreError::Conflict(m) => SkillError::Conflict(format!(
                    "{m}; remove it first or install again with replace"
                )),
                other => other.into(),
            })?;
        self.reload().await?;
        Ok((entry(&stored), replaced))
    }

    fn row_for(&self, caller: &Caller, bundle: &Bundle, visibility: Visibility) -> SkillRow {
        let now = now_ms();
        let f = &bundle.front;
        SkillRow {
            id: uuid::Uuid::now_v7().to_string(),
            owner_id: caller.user_id.clone(),
            owner: caller.username.clone(),
            name: f.name.clone(),
            description: f.description.clone(),
            front: json!({
                "license": f.license,
                "compatibility": f.compatibility,
                "metadata": f.metadata,
                "allowed-tools": f.allowed_tools,
            })
            .to_string(),
            visibility: visibility.as_str().to_string(),
            file_count: bundle.files.len() as i64,
            size: bundle.size() as i64,
            sha256: bundle.sha256.clone(),
            created_at: now,
            updated_at: now,
        }
    }

    /// The installed skill `source/name`, checked to be one `caller` may change.
    async fn owned(&self, caller: &Caller, source: &str, name: &str) -> Result<String, SkillError> {
        let skill = self.find(caller, source, name).await?;
        let Source::Installed(id) = &skill.source else {
            return Err(SkillError::Denied(format!(
                "`{source}/{name}` comes with a plugin or the skills directory; change it there"
            )));
        };
        if !caller.admin && skill.owner.as_deref() != Some(caller.username.as_str()) {
            return Err(SkillError::Denied(format!(
                "only {source} or an administrator may change `{source}/{name}`"
            )));
        }
        Ok(id.clone())
    }

    /// Share an installed skill with everyone, or make it private again.
    pub async fn set_visibility(
        &self,
        caller: &Caller,
        source: &str,
        name: &str,
        visibility: Visibility,
    ) -> Result<Skill, SkillError> {
        let id = self.owned(caller, source, name).await?;
        self.store
            .set_skill_visibility(&id, visibility.as_str())
            .await?;
        self.reload().await?;
        self.find(caller, source, name).await
    }

    /// Remove an installed skill with its files.
    pub async fn remove(
        &self,
        caller: &Caller,
        source: &str,
        name: &str,
    ) -> Result<(), SkillError> {
        let id = self.owned(caller, source, name).await?;
        self.store.delete_skill(&id).await?;
        self.reload().await?;
        Ok(())
    }

    /// A skill's instructions and its files other than SKILL.md.
    pub async fn load(&self, skill: &Skill) -> Result<SkillContent, SkillError> {
        let gone = || SkillError::NotFound(format!("skill `{}` is not available", skill.name));
        match &skill.source {
            Source::Folder(dir) => super::load_folder(dir)
                .map_err(|e| SkillError::Invalid(format!("reading skill `{}`: {e}", skill.name))),
            Source::Export => {
                let plugins = self.plugins.as_ref().ok_or_else(gone)?;
                let live = plugins.get(&skill.plugin).ok_or_else(gone)?;
                let component = live.component.as_ref().ok_or_else(gone)?;
                Ok(plugins
                    .manager()
                    .runtime()
                    .load_skill(component, &skill.name)
                    .await?)
            }
            Source::Installed(id) => {
                let mut files = self.store.skill_files(id).await?;
                let at = files
                    .iter()
                    .position(|(p, _)| p == "SKILL.md")
                    .ok_or_else(gone)?;
                let (_, md) = files.remove(at);
                let text = String::from_utf8(md).map_err(|_| gone())?;
                let (_, body) = super::parse(&text).map_err(SkillError::Invalid)?;
                Ok(SkillContent {
                    instructions: body.to_string(),
                    files: files
                        .into_iter()
                        .map(|(path, content)| SkillFile { path, content })
                        .collect(),
                })
            }
        }
    }

    /// Every file of the skill's folder as it goes into a sandbox, SKILL.md
    /// first (rebuilt from the catalog entry for a plugin's exported skill).
    pub async fn folder(&self, skill: &Skill) -> Result<Vec<(String, Vec<u8>)>, SkillError> {
        let skill_md = match &skill.source {
            Source::Installed(id) => {
                return Ok(self.store.skill_files(id).await?);
            }
            Source::Folder(dir) => {
                crate::plugins::package::read_inside(dir, "SKILL.md", super::MAX_SKILL_MD)
                    .map_err(SkillError::Invalid)?
            }
            Source::Export => Vec::new(),
        };
        let content = self.load(skill).await?;
        let skill_md = if skill_md.is_empty() {
            let description = serde_json::to_string(&skill.description).unwrap_or_default();
            format!(
                "---\nname: {}\ndescription: {description}\n---\n{}",
                skill.name, content.instructions
            )
            .into_bytes()
        } else {
            skill_md
        };
        let mut files = vec![("SKILL.md".to_string(), skill_md)];
        files.extend(content.files.into_iter().map(|f| (f.path, f.content)));
        Ok(files)
    }
}
