//! The sandbox service's background work: the warm pool of pre-started
//! containers, re-attaching to labelled containers after a host restart and
//! reaping orphans, the idle reaper, and the out-of-memory event log.

use super::driver::{ContainerSpec, LABEL_INSTANCE, LABEL_MANAGED, LABEL_POOL};
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
}

impl Pool {
    /// Take a warm container, if any.
    pub fn take(&self) -> Option<Pooled> {
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }

    /// Return a container taken for a sandbox that could not be stored.
    pub fn give_back(&self, p: Pooled) {
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_front(p);
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
                    Ok(()) => break,
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
    /// sandbox claims (and old pool containers) are removed.
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
                self.driver.remove_volume(volume).await?;
            }
        }
        Ok(())
    }

    /// Top the warm pool up to its size in the background.
    pub fn refill_pool(self: &Arc<Self>) {
        let want = self.config.warm_pool as usize;
        if want == 0 || self.pool.len() >= want || self.pool.filling.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            while this.pool.len() < want {
                match this.warm_one().await {
                    Ok(p) => this.pool.push(p),
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
        self.driver.ensure_volume(&volume, &spec.labels).await?;
        let container = self.driver.start(&spec).await?;
        self.prepare_standby(&container).await;
        Ok(Pooled { container, volume })
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
            let _ = self.driver.remove_volume(&p.volume).await;
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
