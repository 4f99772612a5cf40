//! The dispatcher: claims queued tasks under leases and runs them.
//!
//! One loop per process claims while there is room (global `max_running`,
//! `max_running_per_user` and one task per session are checked in the claim
//! itself), woken by new work and finished runs and by a poll. A second loop
//! renews this process's leases and stops the tasks whose cancel was asked
//! for from elsewhere, recovers tasks whose holder stopped renewing (a host
//! that died: exec tasks fail with `host_restarted`, since a command must
//! never run twice; agent tasks go back to the queue and resume from their
//! last completed step), and prunes old events.

use super::{Outcome, Tasks};
use crate::store::{ClaimLimits, TaskKind, TaskRow, TaskStatus, now_ms};
use futures_util::FutureExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often the queue is looked at without being woken.
const POLL: Duration = Duration::from_millis(500);
/// How often old events are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

impl Tasks {
    /// Start the dispatcher and the lease keeper (inside a Tokio runtime).
    pub fn start(self: &Arc<Self>) {
        let this = self.clone();
        tokio::spawn(async move { this.dispatch_loop().await });
        let this = self.clone();
        tokio::spawn(async move { this.keeper_loop().await });
    }

    fn running_count(&self) -> usize {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    async fn dispatch_loop(self: Arc<Self>) {
        loop {
            let mut races = 0;
            while self.running_count() < self.config.max_running {
                let limits = ClaimLimits {
                    per_user: i64::from(self.config.max_running_per_user.max(1)),
                    lease_ms: self.lease().as_millis() as i64,
                };
                let claimed = self
                    .store
                    .claim_task(&self.holder, limits, |t| {
                        (
                            "status",
                            serde_json::json!({ "status": "running", "attempt": t.attempt })
                                .to_string(),
                        )
                    })
                    .await;
                match claimed {
                    Ok(Some((task, rows))) => {
                        self.hub.publish(&rows);
                        let wait = (now_ms() - task.queued_at).max(0) as f64 / 1000.0;
                        metrics::histogram!("switchyard_task_queue_wait_seconds", "kind" => task.kind.as_str())
                            .record(wait);
                        self.spawn_run(task);
                    }
                    Ok(None) => break,
                    // Another claim took the session meanwhile (the unique
                    // index on a session's active task): look again.
                    Err(crate::store::StoreError::Conflict(_)) if races < 3 => races += 1,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot claim a task");
                        break;
                    }
                }
            }
            let _ = tokio::time::timeout(POLL, self.wake.notified()).await;
        }
    }

    fn spawn_run(self: &Arc<Self>, task: TaskRow) {
        let token = CancellationToken::new();
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(task.id.clone(), token.clone());
        if task.cancel_requested {
            token.cancel();
        }
        let this = self.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let run = async {
                match task.kind {
                    TaskKind::Exec => this.run_exec(&task, &token).await,
                    TaskKind::Agent => this.run_agent(&task, &token).await,
                }
            };
            // A bug in a runner fails its task; it never leaves it running
            // under a lease this host keeps renewing.
            let outcome = match std::panic::AssertUnwindSafe(run).catch_unwind().await {
                Ok(outcome) => outcome,
                Err(_) => {
                    tracing::error!(task = %task.id, "the task's runner panicked");
                    Outcome::Failed {
                        code: "internal".into(),
                        message: "the host failed while running this task (see its log)".into(),
                        result: None,
                    }
                }
            };
            metrics::histogram!("switchyard_task_run_seconds", "kind" => task.kind.as_str())
                .record(started.elapsed().as_secs_f64());
            this.settle(&task, outcome).await;
            this.running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&task.id);
            this.wake.notify_one();
        });
    }

    /// Record how a run this process held ended.
    pub(super) async fn settle(&self, task: &TaskRow, outcome: Outcome) {
        let result = match outcome {
            Outcome::InputRequired(waiting_for) => self.wait_for_input(task, waiting_for).await,
            Outcome::Retry { code, message }
                if task.attempt < i64::from(self.config.max_attempts) =>
            {
                let backoff = Duration::from_millis(500 << task.attempt.clamp(0, 6));
                let events = super::encode(&[(
                    "status",
                    serde_json::json!({
                        "status": "pending",
                        "reason": code,
                        "message": message,
                        "retry_in_ms": backoff.as_millis() as u64,
                    }),
                )]);
                tracing::info!(task = %task.id, %code, %message, attempt = task.attempt, "retrying the task");
                self.store
                    .move_task(
                        &task.id,
                        TaskStatus::Running,
                        TaskStatus::Pending,
                        Some(now_ms() + backoff.as_millis() as i64),
                        &events,
                    )
                    .await
                    .map(|rows| {
                        if let Some(rows) = rows {
                            self.hub.publish(&rows);
                        }
                    })
            }
            other => self
                .finish(&task.id, Some(TaskStatus::Running), other)
                .await
                .map(|_| ()),
        };
        if let Err(e) = result {
            // The lease runs out and recovery settles the task.
            tracing::error!(task = %task.id, error = %e, "cannot record how the task ended");
        }
    }

    async fn wait_for_input(
        &self,
        task: &TaskRow,
        waiting_for: serde_json::Value,
    ) -> Result<(), crate::store::StoreError> {
        let current = self.store.task(&task.id).await?;
        let mut state: serde_json::Value = current
            .as_ref()
            .and_then(|t| serde_json::from_str(&t.state).ok())
            .unwrap_or_else(|| serde_json::json!({}));
        state["waiting_for"] = waiting_for.clone();
        if let Some(map) = state.as_object_mut() {
            map.remove("answer");
        }
        let (input, output) = current
            .as_ref()
            .map_or((0, 0), |t| (t.input_tokens, t.output_tokens));
        self.store
            .save_task_state(&task.id, &state.to_string(), input, output)
            .await?;
        let events = super::encode(&[(
            "status",
            serde_json::json!({ "status": "input_required", "waiting_for": waiting_for }),
        )]);
        if let Some(rows) = self
            .store
            .move_task(
                &task.id,
                TaskStatus::Running,
                TaskStatus::InputRequired,
                None,
                &events,
            )
            .await?
        {
            self.hub.publish(&rows);
        }
        Ok(())
    }

    async fn keeper_loop(self: Arc<Self>) {
        let beat = self.lease() / 3;
        let mut last_prune: Option<Instant> = None;
        loop {
            match self
                .store
                .renew_leases(&self.holder, self.lease().as_millis() as i64)
                .await
            {
                Ok(canceled) => {
                    let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
                    for id in canceled {
                        if let Some(token) = running.get(&id) {
                            token.cancel();
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot renew task leases"),
            }
            if let Err(e) = self.recover().await {
                tracing::warn!(error = %e, "cannot recover expired tasks");
            }
            if self.config.event_retention_days > 0
                && last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY)
            {
                last_prune = Some(Instant::now());
                let before = now_ms() - (self.config.event_retention_days * 86_400_000) as i64;
                match self.store.prune_events(before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(events = n, "pruned old task events"),
                    Err(e) => tracing::warn!(error = %e, "cannot prune task events"),
                }
            }
            self.observe().await;
            tokio::time::sleep(beat).await;
        }
    }

    /// Settle every running task whose lease ran out (its host died).
    pub async fn recover(&self) -> Result<usize, crate::store::StoreError> {
        let expired = self.store.expired_tasks().await?;
        let mut recovered = 0;
        for task in expired {
            if !self
                .store
                .take_expired(&task.id, &self.holder, self.lease().as_millis() as i64)
                .await?
            {
                continue;
            }
            recovered += 1;
            let resumable = task.kind == TaskKind::Agent
                && !task.cancel_requested
                && task.attempt < i64::from(self.config.max_attempts);
            tracing::warn!(task = %task.id, kind = task.kind.as_str(), resumable, "recovering a task whose host stopped");
            metrics::counter!("switchyard_tasks_recovered_total", "kind" => task.kind.as_str())
                .increment(1);
            if resumable {
                let events = super::encode(&[(
                    "status",
                    serde_json::json!({
                        "status": "pending",
                        "reason": "host_restarted",
                        "message": "the host stopped while this task ran; it resumes from its last completed step",
                    }),
                )]);
                if let Some(rows) = self
                    .store
                    .move_task(
                        &task.id,
                        TaskStatus::Running,
                        TaskStatus::Pending,
                        None,
                        &events,
                    )
                    .await?
                {
                    self.hub.publish(&rows);
                }
                self.wake.notify_one();
                continue;
            }
            let outcome = if task.cancel_requested {
                Outcome::Canceled("canceled by its owner".into())
            } else {
                Outcome::Failed {
                    code: "host_restarted".into(),
                    message: match task.kind {
                        TaskKind::Exec => "the host stopped while the command ran; it was not run again (a command never runs twice): submit it again if it is safe to".into(),
                        TaskKind::Agent => "the host stopped while this task ran, too many times".into(),
                    },
                    result: None,
                }
            };
            self.finish(&task.id, Some(TaskStatus::Running), outcome)
                .await?;
        }
        Ok(recovered)
    }

    /// Publish task gauges (tasks by kind and status, queue depth).
    async fn observe(&self) {
        let Ok(counts) = self.store.task_status_counts().await else {
            return;
        };
        let mut depth = 0;
        for kind in [TaskKind::Agent, TaskKind::Exec] {
            for status in TaskStatus::ALL {
                let n = counts
                    .iter()
                    .find(|(k, s, _)| *k == kind && *s == status)
                    .map_or(0, |c| c.2);
                if status == TaskStatus::Pending {
                    depth += n;
                }
                metrics::gauge!("switchyard_tasks", "kind" => kind.as_str(), "status" => status.as_str())
                    .set(n as f64);
            }
        }
        metrics::gauge!("switchyard_task_queue_depth").set(depth as f64);
        metrics::gauge!("switchyard_tasks_running_here").set(self.running_count() as f64);
    }
}
