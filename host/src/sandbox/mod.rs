//! Sandboxes: containers where agent work runs, never on the host.
//!
//! [`Sandboxes`] owns their life: named per user, `starting → idle ⇄ busy →
//! stopped | failed` persisted in the store, a workspace volume that outlives
//! containers, the per-user quota, limits resolved system → user → sandbox
//! ([`limits`]), commands ([`exec`]), files ([`files`]), the warm pool, the idle
//! reaper and re-attaching after a host restart ([`pool`]). Containers come from
//! a [`Driver`]; [`docker::DockerDriver`] is the one on the Docker engine.

pub mod disk;
pub mod docker;
pub mod driver;
pub mod exec;
pub mod files;
pub mod image;
pub mod limits;
mod metrics;
pub mod pool;
mod probe;
mod standby;
pub mod storage;
pub mod terminal;
mod tree;

pub use driver::{Driver, DriverError};
pub use limits::{Limits, LimitsError, LimitsRequest, SandboxConfig, UserLimits};

use crate::store::{SandboxRow, SandboxState, Store, StoreError, new_id, now_ms};
use driver::{ContainerSpec, LABEL_INSTANCE, LABEL_MANAGED, LABEL_SANDBOX};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex as SyncMutex};
use tokio::sync::Mutex;

/// Why a sandbox operation failed (each maps to one HTTP status).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The container engine is down or the image is missing (503).
    #[error("{0}")]
    Unavailable(String),
    /// No such sandbox for this caller, or no such path in it (404).
    #[error("{0}")]
    NotFound(String),
    /// Malformed input: a bad name, path or limit (400).
    #[error("{0}")]
    Invalid(String),
    /// Limits above the caller's maxima (403).
    #[error("{0}")]
    Forbidden(String),
    /// The name is taken or the quota is used up (409).
    #[error("{0}")]
    Conflict(String),
    /// A file is larger than allowed (413).
    #[error("{0}")]
    TooLarge(String),
    /// The engine or the store failed (500).
    #[error("{0}")]
    Failed(String),
}

impl From<DriverError> for SandboxError {
    fn from(e: DriverError) -> Self {
        match e {
            DriverError::Unavailable(_) | DriverError::ImageMissing(_) => {
                Self::Unavailable(e.to_string())
            }
            DriverError::NotFound(m) | DriverError::NotRunning(m) => {
                Self::Failed(format!("the sandbox container is gone: {m}"))
            }
            DriverError::Failed(m) => Self::Failed(m),
        }
    }
}

impl From<StoreError> for SandboxError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound("no such sandbox".into()),
            StoreError::Conflict(what) => Self::Conflict(format!("{what} already exists")),
            other => Self::Failed(other.to_string()),
        }
    }
}

impl From<LimitsError> for SandboxError {
    fn from(e: LimitsError) -> Self {
        match e {
            LimitsError::Invalid(m) => Self::Invalid(m),
            LimitsError::AboveMaximum(m) => Self::Forbidden(m),
        }
    }
}

/// Who is asking.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user's id.
    pub user_id: String,
    /// Administrators see and manage every sandbox.
    pub admin: bool,
}

/// A sandbox as callers see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Sandbox {
    /// Stable id.
    pub id: String,
    /// Name, unique per owner.
    pub name: String,
    /// The owner's user id.
    pub owner_id: String,
    /// Lifecycle state.
    pub state: SandboxState,
    /// Why it stopped or failed.
    pub detail: Option<String>,
    /// Its limits.
    pub limits: Limits,
    /// Creation time (ms since the epoch).
    pub created_at: i64,
    /// Last activity (ms since the epoch).
    pub last_used_at: i64,
}

/// What `create` takes.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSandbox {
    /// Name (1-63 of `a-z 0-9 -`, starting with a letter or digit); generated when absent.
    #[schema(max_length = 63, pattern = "^[a-z0-9][a-z0-9-]{0,62}$")]
    pub name: Option<String>,
    /// Limits, each within your maxima (defaults when absent).
    #[serde(default)]
    pub limits: LimitsRequest,
}

/// The sandbox service.
pub struct Sandboxes {
    driver: Arc<dyn Driver>,
    store: Store,
    config: SandboxConfig,
    instance: String,
    /// Serializes quota checks per owner and transitions per sandbox.
    locks: SyncMutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Commands and terminals running per sandbox (busy while > 0).
    running: SyncMutex<HashMap<String, usize>>,
    pool: pool::Pool,
    ooms: pool::OomLog,
    standbys: standby::Standbys,
    /// Size-limited workspace disks (`None` when `disk_limits` is off).
    disks: Option<disk::Disks>,
    /// This host process's id, the start of every kill tag it makes.
    boot: String,
    /// Whether the engine and the worker image are there.
    probe: probe::Probe,
}

fn check_name(name: &str) -> Result<(), SandboxError> {
    let ok = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(SandboxError::Invalid(
            "a sandbox name is 1-63 characters of a-z, 0-9 and -, not starting with -".into(),
        ))
    }
}

impl Sandboxes {
    /// The service over `driver`; `instance` names this host's containers (one
    /// per data directory, so two hosts on one engine leave each other alone).
    pub fn new(
        driver: Arc<dyn Driver>,
        store: Store,
        config: SandboxConfig,
        instance: String,
    ) -> Arc<Self> {
        let disks = config.disk_limits.then(|| {
            disk::Disks::new(
                config
                    .workspace_dir
                    .clone()
                    .unwrap_or_else(|| "workspaces".into()),
            )
        });
        Arc::new(Self {
            driver,
            store,
            config,
            instance,
            locks: SyncMutex::default(),
            running: SyncMutex::default(),
            pool: pool::Pool::default(),
            ooms: pool::OomLog::default(),
            standbys: standby::Standbys::default(),
            disks,
            boot: uuid::Uuid::now_v7().simple().to_string()[24..].to_string(),
            probe: probe::Probe::default(),
        })
    }

    /// Whether sandboxes can start now (the engine answers and has the worker
    /// image); the sandbox tools are offered only then.
    pub async fn available(&self) -> bool {
        self.probe
            .available(&*self.driver, &self.config.image)
            .await
    }

    /// The settings.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// The driver.
    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.driver
    }

    /// The workspace disks (`None` when `disk_limits` is off).
    pub fn disks(&self) -> Option<&disk::Disks> {
        self.disks.as_ref()
    }

    /// The instance id labelling this host's containers and volumes.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    fn lock(&self, key: &str) -> Arc<Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(key.to_string()).or_default().clone()
    }

    /// The limits an administrator set for `user_id` (empty when none).
    pub async fn user_limits(&self, user_id: &str) -> Result<UserLimits, SandboxError> {
        Ok(match self.store.sandbox_user_limits(user_id).await? {
            Some(json) => serde_json::from_str(&json)
                .map_err(|e| SandboxError::Failed(format!("stored user limits: {e}")))?,
            None => UserLimits::default(),
        })
    }

    /// Set a user's limits; all fields empty restores the system's.
    pub async fn set_user_limits(
        &self,
        user_id: &str,
        limits: &UserLimits,
    ) -> Result<(), SandboxError> {
        limits::check_user(limits)?;
        let json = (*limits != UserLimits::default())
            .then(|| serde_json::to_string(limits).unwrap_or_default());
        Ok(self
            .store
            .set_sandbox_user_limits(user_id, json.as_deref())
            .await?)
    }

    fn view(&self, row: &SandboxRow) -> Sandbox {
        Sandbox {
            id: row.id.clone(),
            name: row.name.clone(),
            owner_id: row.owner_id.clone(),
            state: self.effective_state(row),
            detail: row.detail.clone(),
            limits: serde_json::from_str(&row.limits).unwrap_or(self.config.defaults),
            created_at: row.created_at,
            last_used_at: row.last_used_at,
        }
    }

    fn effective_state(&self, row: &SandboxRow) -> SandboxState {
        let busy = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&row.id)
            .is_some_and(|n| *n > 0);
        match row.state {
            SandboxState::Idle if busy => SandboxState::Busy,
            other => other,
        }
    }

    /// The caller's sandbox `id` (another user's is not found, unless the caller is an admin).
    pub async fn row(&self, caller: &Caller, id: &str) -> Result<SandboxRow, SandboxError> {
        match self.store.sandbox(id).await? {
            Some(row) if caller.admin || row.owner_id == caller.user_id => Ok(row),
            _ => Err(SandboxError::NotFound(format!("no sandbox `{id}`"))),
        }
    }

    /// One sandbox.
    pub async fn get(&self, caller: &Caller, id: &str) -> Result<Sandbox, SandboxError> {
        Ok(self.view(&self.row(caller, id).await?))
    }

    /// A page of the caller's sandboxes (every user's for an admin with `all`).
    pub async fn list(
        &self,
        caller: &Caller,
        all: bool,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Sandbox>, Option<String>), SandboxError> {
        let owner = (!(all && caller.admin)).then_some(caller.user_id.as_str());
        let page = self.store.sandboxes(owner, after, limit).await?;
        Ok((page.items.iter().map(|r| self.view(r)).collect(), page.next))
    }

    /// Create a sandbox and start its container (from the warm pool when one fits).
    pub async fn create(
        self: &Arc<Self>,
        caller: &Caller,
        req: CreateSandbox,
    ) -> Result<Sandbox, SandboxError> {
        let name = match req.name {
            Some(n) => {
                check_name(&n)?;
                n
            }
            None => format!(
                "sandbox-{}",
                &uuid::Uuid::now_v7().simple().to_string()[20..]
            ),
        };
        let user = self.user_limits(&caller.user_id).await?;
        let maxima = self.config.user_maxima(&user, caller.admin);
        let limits = self.config.resolve(&req.limits, &maxima)?;
        let guard = self.lock(&caller.user_id);
        let _held = guard.lock().await;
        self.check_quota(&caller.user_id, &user).await?;
        self.check_storage(&caller.user_id, &user, limits.disk_mb)
            .await?;
        let now = now_ms();
        // A pooled container (default limits only) makes the sandbox idle at once:
        // one row written, no engine call.
        let pooled = if limits == self.config.defaults {
            self.pool.take()
        } else {
            None
        };
        let mut row = SandboxRow {
            id: new_id(),
            owner_id: caller.user_id.clone(),
            name: name.clone(),
            state: SandboxState::Starting,
            detail: None,
            container_id: None,
            volume: format!("switchyard-ws-{}", uuid::Uuid::now_v7().simple()),
            limits: serde_json::to_string(&limits).unwrap_or_default(),
            created_at: now,
            updated_at: now,
            last_used_at: now,
        };
        if let Some(p) = &pooled {
            row.state = SandboxState::Idle;
            row.container_id = Some(p.container.clone());
            row.volume = p.volume.clone();
        }
        let inserted = self.store.insert_sandbox(&row).await;
        if let Some(p) = &pooled {
            self.pool.settled(&p.volume);
        }
        if let Err(e) = inserted {
            if let Some(p) = pooled {
                self.pool.give_back(p);
            }
            return Err(e.into());
        }
        if pooled.is_none() {
            match self.start_container(&row, &limits).await {
                Ok(container) => {
                    row.state = SandboxState::Idle;
                    self.prepare_standby(&container).await;
                    row.container_id = Some(container);
                }
                Err(e) => {
                    let _ = self.remove_workspace(&row.volume).await;
                    let _ = self.store.delete_sandbox(&row.id).await;
                    return Err(e);
                }
            }
        }
        metrics::created(if pooled.is_some() { "pool" } else { "cold" });
        self.refill_pool();
        Ok(self.view(&row))
    }

    async fn check_quota(&self, owner: &str, user: &UserLimits) -> Result<(), SandboxError> {
        let quota = self.config.quota(user);
        let live = self.store.live_sandbox_count(owner).await?;
        if live >= i64::from(quota) {
            return Err(SandboxError::Conflict(format!(
                "you have {live} live sandboxes and your quota is {quota}: stop or delete one \
                 (POST /api/v1/sandboxes/ID/stop or DELETE /api/v1/sandboxes/ID), or ask an administrator for more"
            )));
        }
        Ok(())
    }

    fn spec(&self, row: &SandboxRow, limits: &Limits) -> ContainerSpec {
        ContainerSpec {
            image: self.config.image.clone(),
            labels: HashMap::from([
                (LABEL_MANAGED.into(), "1".into()),
                (LABEL_INSTANCE.into(), self.instance.clone()),
                (LABEL_SANDBOX.into(), row.id.clone()),
            ]),
            volume: row.volume.clone(),
            limits: *limits,
        }
    }

    /// Make sure the sandbox has a running container, restarting a stopped one
    /// (quota permitting); its container id.
    pub async fn ensure_running(&self, row: &SandboxRow) -> Result<String, SandboxError> {
        if let (true, Some(id)) = (row.state.is_live(), &row.container_id) {
            return Ok(id.clone());
        }
        let guard = self.lock(&row.owner_id);
        let _held = guard.lock().await;
        let fresh = self
            .store
            .sandbox(&row.id)
            .await?
            .ok_or_else(|| SandboxError::NotFound("the sandbox was deleted".into()))?;
        if let (true, Some(id)) = (fresh.state.is_live(), &fresh.container_id) {
            return Ok(id.clone());
        }
        let user = self.user_limits(&row.owner_id).await?;
        self.check_quota(&row.owner_id, &user).await?;
        let limits: Limits = serde_json::from_str(&fresh.limits).unwrap_or(self.config.defaults);
        self.store
            .set_sandbox_state(&row.id, SandboxState::Starting, None, None)
            .await?;
        let started = self.start_container(&fresh, &limits).await;
        if let Err(e) = &started {
            self.store
                .set_sandbox_state(&row.id, SandboxState::Failed, Some(&e.to_string()), None)
                .await?;
        }
        started
    }

    /// Start a container for `row` on its workspace volume (made when
    /// missing) and record the sandbox idle with it.
    async fn start_container(
        &self,
        row: &SandboxRow,
        limits: &Limits,
    ) -> Result<String, SandboxError> {
        let spec = self.spec(row, limits);
        self.prepare_workspace(&row.volume, &spec.labels, limits.disk_mb)
            .await?;
        let container = self.driver.start(&spec).await?;
        self.store
            .set_sandbox_state(&row.id, SandboxState::Idle, None, Some(&container))
            .await?;
        Ok(container)
    }

    /// Start `spec` in the sandbox's container: starting one when it has none,
    /// and replacing one that died (out of memory, killed from outside).
    pub(crate) async fn start_exec(
        &self,
        row: &SandboxRow,
        spec: &driver::ExecSpec,
    ) -> Result<(String, driver::ExecSession), SandboxError> {
        let container = self.ensure_running(row).await?;
        match self.driver.exec(&container, spec).await {
            Err(DriverError::NotRunning(_) | DriverError::NotFound(_)) => {
                tracing::warn!(sandbox = %row.id, "the sandbox's container died; starting a new one");
                self.standbys.forget(&container);
                let _ = self.driver.remove(&container).await;
                let why = "its container stopped unexpectedly; a new one was started on the same workspace";
                self.store
                    .set_sandbox_state(&row.id, SandboxState::Stopped, Some(why), None)
                    .await?;
                let fresh = self
                    .store
                    .sandbox(&row.id)
                    .await?
                    .ok_or_else(|| SandboxError::NotFound("the sandbox was deleted".into()))?;
                let container = self.ensure_running(&fresh).await?;
                let session = self.driver.exec(&container, spec).await?;
                Ok((container, session))
            }
            other => Ok((container, other?)),
        }
    }

    /// Stop a sandbox: its container goes, its workspace stays.
    pub async fn stop(&self, caller: &Caller, id: &str) -> Result<Sandbox, SandboxError> {
        let row = self.row(caller, id).await?;
        self.stop_row(&row, "stopped by its owner").await?;
        self.get(caller, id).await
    }

    async fn stop_row(&self, row: &SandboxRow, why: &str) -> Result<(), SandboxError> {
        if let Some(container) = &row.container_id {
            self.standbys.forget(container);
            self.driver.remove(container).await?;
        }
        self.store
            .set_sandbox_state(&row.id, SandboxState::Stopped, Some(why), None)
            .await?;
        Ok(())
    }

    /// Delete a sandbox and its container; its workspace volume too when `volume`.
    pub async fn delete(
        &self,
        caller: &Caller,
        id: &str,
        volume: bool,
    ) -> Result<(), SandboxError> {
        let row = self.row(caller, id).await?;
        if let Some(container) = &row.container_id {
            self.standbys.forget(container);
            self.driver.remove(container).await?;
        }
        // Any other container left on this sandbox (a start raced by a stop)
        // would hold the volume.
        for c in self
            .driver
            .list(&format!("{LABEL_SANDBOX}={}", row.id))
            .await?
        {
            self.driver.remove(&c.id).await?;
        }
        if volume {
            self.remove_workspace(&row.volume).await?;
        } else {
            self.keep_workspace(&row.volume, &row.id).await?;
        }
        self.store.delete_sandbox(&row.id).await?;
        Ok(())
    }

    /// Resource use of a running sandbox.
    pub async fn stats(&self, caller: &Caller, id: &str) -> Result<driver::Stats, SandboxError> {
        let row = self.row(caller, id).await?;
        match (&row.container_id, row.state.is_live()) {
            (Some(c), true) => match self.driver.stats(c).await {
                Ok(stats) => Ok(stats),
                Err(DriverError::NotFound(_)) => Err(SandboxError::Conflict(format!(
                    "sandbox `{}` has no running container to measure",
                    row.name
                ))),
                Err(e) => Err(e.into()),
            },
            _ => Err(SandboxError::Conflict(format!(
                "sandbox `{}` is {}: it has no container to measure",
                row.name,
                row.state.as_str()
            ))),
        }
    }

    /// Count a command or terminal in (busy): memory only, nothing delays its start.
    fn busy_count(&self) -> i64 {
        self.running.lock().unwrap_or_else(|e| e.into_inner()).len() as i64
    }

    fn busy(&self, id: &str) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        *running.entry(id.to_string()).or_default() += 1;
    }

    /// Count a command or terminal out (idle once none is left) and note the activity.
    async fn done(&self, id: &str) {
        {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = running.get_mut(id) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    running.remove(id);
                }
            }
        }
        if let Err(e) = self.store.touch_sandbox(id).await {
            tracing::warn!(error = %e, sandbox = id, "cannot record sandbox activity");
        }
    }
}
