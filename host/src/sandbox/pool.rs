//! The sandbox service's background work: the warm pool of pre-started
//! containers, re-attaching to labelled containers after a host restart and
//! reaping orphans, the idle reaper, and the out-of-memory event log.

use super::driver::{ContainerSpec, LABEL_INSTANCE, LABEL_MANAGED, LABEL_POOL, LABEL_SANDBOX};
use super::{SandboxError, Sandboxes};
use crate::store::{SandboxState, now_ms};
use futures_util::StreamExt;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// A started container with a fresh workspace, waiting for a sandbox.
#[derive(Debug, Clone)]
pub struct Pooled {
    /// Engine id.
    pub container: String,
    /// Its workspace volume.
    pub volume: String,
}

/// Warm containers.
#[derive(Debug, Default)]
pub struct Pool {
    ready: Mutex<VecDeque<Pooled>>,
    filling: AtomicBool,
    /// Volumes of containers being warmed (reaping spares them).
    warming: Mutex<HashSet<String>>,
    /// Re-attaching (and reaping) finished once: the pool may fill.
    attached: AtomicBool,
}

impl Pool {
    /// Take a warm container, if any; its volume stays spared by reaping
    /// until [`Self::settled`] (its sandbox row is stored).
    pub fn take(&self) -> Option<Pooled> {
        let mut ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
        let p = ready.pop_front()?;
        self.warming(&p.volume, true);
        Some(p)
    }

    /// A taken container's sandbox was stored (or the container given back).
    pub fn settled(&self, volume: &str) {
        self.warming(volume, false);
    }

    /// Return a container taken for a sandbox that could not be stored.
    pub fn give_back(&self, p: Pooled) {
        let volume = p.volume.clone();
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_front(p);
        self.settled(&volume);
    }

    /// The volumes of the pool's containers, ready or being warmed.
    fn volumes(&self) -> HashSet<String> {
        let mut out = self
            .warming
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
        out.extend(ready.iter().map(|p| p.volume.clone()));
        out
    }

    fn warming(&self, volume: &str, on: bool) {
        let mut warming = self.warming.lock().unwrap_or_else(|e| e.into_inner());
        if on {
            warming.insert(volume.to_string());
        } else {
            warming.remove(volume);
        }
    }

    fn len(&self) -> usize {
        self.ready.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn push(&self, p: Pooled) {
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(p);
    }
}

/// When the kernel last killed a process for memory, per container.
#[derive(Debug)]
pub struct OomLog {
    seen: Mutex<HashMap<String, i64>>,
    notify: Notify,
    watching: AtomicBool,
    since_epoch: i64,
}

impl Default for OomLog {
    fn default() -> Self {
        Self {
            seen: Mutex::default(),
            notify: Notify::new(),
            watching: AtomicBool::new(false),
            since_epoch: now_ms() / 1000 - 1,
        }
    }
}

impl OomLog {
    fn record(&self, container: String, at_ms: i64) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() > 10_000 {
            seen.clear();
        }
        let last = seen.entry(container).or_default();
        *last = (*last).max(at_ms);
        drop(seen);
        self.notify.notify_waiters();
    }

    fn since(&self, container: &str, since_ms: i64) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(container)
            .is_some_and(|at| *at >= since_ms)
    }

    /// Whether `container` had an out-of-memory kill since `since_ms` (ms
    /// since the epoch), waiting briefly for the engine's event to arrive.
    pub async fn wait_for(&self, container: &str, since: i64) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        loop {
            let notified = self.notify.notified();
            if self.since(container, since) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.since(container, since);
            }
        }
    }
}

impl Sandboxes {
    /// Start the background work: re-attach (once the engine answers), fill
    /// the pool, follow out-of-memory events, stop idle sandboxes.
    pub fn start_background(self: &Arc<Self>) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut wait = Duration::from_secs(1);
            loop {
                match this.reattach().await {
                    Ok(()) => {
                        this.pool.attached.store(true, Ordering::Release);
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "sandboxes: the container engine is not ready; retrying");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(30));
                    }
                }
            }
            this.refill_pool();
        });
        self.watch_ooms();
        let this = self.clone();
        tokio::spawn(async move {
            let every = Duration::from_secs((this.config.idle_ttl_secs / 4).clamp(1, 60));
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = this.reap_idle().await {
                    tracing::debug!(error = %e, "sandboxes: idle reaper");
                }
            }
        });
    }

    /// Match labelled containers with stored sandboxes after a restart: live
    /// sandboxes whose container is gone become `stopped`; containers no
    /// sandbox claims (and old pool containers) are removed, then workspaces
    /// no sandbox names; commands lost with the old host are killed.
    pub async fn reattach(&self) -> Result<(), SandboxError> {
        self.driver.ping().await?;
        let label = format!("{LABEL_INSTANCE}={}", self.instance);
        let containers = self.driver.list(&label).await?;
        let running: HashMap<&str, bool> = containers
            .iter()
            .map(|c| (c.id.as_str(), c.running))
            .collect();
        let pooled: HashSet<String> = self
            .pool
            .ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|p| p.container.clone())
            .collect();
        let mut claimed = HashSet::new();
        for row in self.store.all_sandboxes().await? {
            let Some(container) = row.container_id.clone() else {
                continue;
            };
            if running.get(container.as_str()).copied().unwrap_or(false) {
                if row.state == SandboxState::Busy {
                    self.store
                        .set_sandbox_state(&row.id, SandboxState::Idle, None, Some(&container))
                        .await?;
                }
                // Commands of the old host process have no one to report to and no deadline.
                self.kill_lost(&container).await;
                claimed.insert(container);
            } else if row.state.is_live() {
                self.store
                    .set_sandbox_state(
                        &row.id,
                        SandboxState::Stopped,
                        Some("its container was gone after a host restart; the workspace is kept"),
                        None,
                    )
                    .await?;
            }
        }
        for c in containers {
            if claimed.contains(&c.id) || pooled.contains(&c.id) {
                continue;
            }
            tracing::info!(container = %c.id, "sandboxes: removing an unclaimed container");
            self.driver.remove(&c.id).await?;
            if c.labels.contains_key(LABEL_POOL)
                && let Some(volume) = c.labels.get("io.switchyard.volume")
            {
                self.remove_workspace(volume).await?;
            }
        }
        self.reap_workspaces().await
    }

    /// Remove this host's labelled workspace volumes and images that no
    /// sandbox and no pool container names (a warm-pool volume of a host
    /// killed before its container started, a failed create), sparing
    /// workspaces kept on purpose (`keep_volume`).
    async fn reap_workspaces(&self) -> Result<(), SandboxError> {
        let label = format!("{LABEL_INSTANCE}={}", self.instance);
        let volumes = self.driver.list_volumes(&label).await?;
        let images = self.disks.as_ref().map(|d| d.volumes()).unwrap_or_default();
        // Names are read after the listings: anything made since is named.
        let mut named = self.pool.volumes();
        named.extend(
            self.store
                .all_sandboxes()
                .await?
                .into_iter()
                .map(|r| r.volume),
        );
        let kept = |v: &str| self.disks.as_ref().is_some_and(|d| d.is_kept(v));
        for (volume, labels) in volumes {
            if named.contains(&volume) || kept(&volume) {
                continue;
            }
            // A plain volume kept with its sandbox's label before disks existed.
            let legacy = labels.contains_key(LABEL_SANDBOX)
                && self
                    .disks
                    .as_ref()
                    .is_none_or(|d| !d.image(&volume).exists());
            if legacy {
                continue;
            }
            tracing::info!(volume, "sandboxes: removing an orphaned workspace volume");
            self.remove_workspace(&volume).await?;
        }
        if let Some(disks) = &self.disks {
            disks.reap_stale().await?;
            for volume in images {
                if !named.contains(&volume) && !kept(&volume) {
                    tracing::info!(volume, "sandboxes: removing an orphaned workspace image");
                    self.remove_workspace(&volume).await?;
                }
            }
        }
        Ok(())
    }

    /// Top the warm pool up to its size in the background.
    pub fn refill_pool(self: &Arc<Self>) {
        let want = self.config.warm_pool as usize;
        if want == 0
            || !self.pool.attached.load(Ordering::Acquire)
            || self.pool.len() >= want
            || self.pool.filling.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            while this.pool.len() < want {
                match this.warm_one().await {
                    Ok(p) => {
                        let volume = p.volume.clone();
                        this.pool.push(p);
                        this.pool.warming(&volume, false);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "sandboxes: cannot fill the warm pool");
                        break;
                    }
                }
            }
            this.pool.filling.store(false, Ordering::Release);
        });
    }

    async fn warm_one(&self) -> Result<Pooled, SandboxError> {
        let volume = format!("switchyard-ws-{}", uuid::Uuid::now_v7().simple());
        let spec = ContainerSpec {
            image: self.config.image.clone(),
            labels: HashMap::from([
                (LABEL_MANAGED.into(), "1".into()),
                (LABEL_INSTANCE.into(), self.instance.clone()),
                (LABEL_POOL.into(), "1".into()),
                ("io.switchyard.volume".into(), volume.clone()),
            ]),
            volume: volume.clone(),
            limits: self.config.defaults,
        };
        self.pool.warming(&volume, true);
        let warmed = self.warm(&spec).await;
        if warmed.is_err() {
            let _ = self.remove_workspace(&volume).await;
            self.pool.warming(&volume, false);
        }
        Ok(Pooled {
            container: warmed?,
            volume,
        })
    }

    async fn warm(&self, spec: &ContainerSpec) -> Result<String, SandboxError> {
        self.prepare_workspace(&spec.volume, &spec.labels, spec.limits.disk_mb)
            .await?;
        let container = self.driver.start(spec).await?;
        self.prepare_standby(&container).await;
        Ok(container)
    }

    /// How many warm containers wait.
    pub fn pool_size(&self) -> usize {
        self.pool.len()
    }

    /// Remove the warm pool's containers and volumes (at shutdown).
    pub async fn drain_pool(&self) {
        while let Some(p) = self.pool.take() {
            self.standbys.forget(&p.container);
            let _ = self.driver.remove(&p.container).await;
            let _ = self.remove_workspace(&p.volume).await;
            self.pool.settled(&p.volume);
        }
    }

    /// Stop sandboxes idle for longer than the TTL (their workspaces stay).
    pub async fn reap_idle(&self) -> Result<(), SandboxError> {
        if self.config.idle_ttl_secs == 0 {
            return Ok(());
        }
        let cutoff = now_ms() - (self.config.idle_ttl_secs as i64) * 1000;
        for row in self.store.all_sandboxes().await? {
            let busy = self
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(&row.id);
            if row.state == SandboxState::Idle && !busy && row.last_used_at < cutoff {
                tracing::info!(sandbox = %row.id, "sandboxes: stopping an idle sandbox");
                let why = format!("stopped after {} s idle", self.config.idle_ttl_secs);
                self.stop_row(&row, &why).await?;
            }
        }
        Ok(())
    }

    /// Follow the engine's out-of-memory events (once per service), from the
    /// service's start so a kill before the subscription is not missed.
    pub fn watch_ooms(self: &Arc<Self>) {
        if self.ooms.watching.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move { this.follow_ooms().await });
    }

    async fn follow_ooms(&self) {
        let label = format!("{LABEL_MANAGED}=1");
        let since = self.ooms.since_epoch;
        loop {
            match self.driver.oom_events(&label, since).await {
                Ok(mut events) => {
                    while let Some(event) = events.next().await {
                        match event {
                            Ok((container, at)) => self.ooms.record(container, at),
                            Err(_) => break,
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "sandboxes: no engine events"),
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}
