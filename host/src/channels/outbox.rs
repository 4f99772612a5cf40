//! The delivery outbox: every channel task's reply, sent through the plugin's
//! `deliver` once the task has ended.
//!
//! An attempt is claimed under a lease and committed as `sending` (with one
//! more attempt counted) before the plugin is called, and each attempt shows
//! on the task as `delivery` events. A failure the plugin calls `unavailable`
//! (or a broken call) is retried with exponential backoff up to
//! `[channels] delivery_attempts`; a refusal (`invalid-input`, `denied`,
//! `not-found`) fails at once. When a host dies mid-send, the expired lease is
//! found later, the attempt is reported as `unknown` and the reply is sent
//! again with the **same idempotency key**, which first-party plugins use to
//! drop a repeat (GitHub looks for its marker, the generic webhook sends an
//! `Idempotency-Key` header).

use super::Channels;
use crate::runtime::{CallHooks, ErrorKind, KvNamespace, channel};
use crate::store::{DeliveryRow, TaskStatus, now_ms};
use std::sync::Arc;
use std::time::Duration;

/// How often the outbox looks for due replies when nothing woke it.
const POLL: Duration = Duration::from_millis(500);
/// Replies sent at once by one host.
const PARALLEL: usize = 8;
/// How often old dedupe records are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// The longest wait between two attempts.
const MAX_BACKOFF_SECS: u64 = 3600;

impl Channels {
    /// Start the outbox (and the dedupe-record pruner).
    pub fn start(self: &Arc<Self>) {
        let this = self.clone();
        tokio::spawn(async move { this.outbox_loop().await });
        let this = self.clone();
        tokio::spawn(async move { this.prune_loop().await });
    }

    /// Wake the outbox: a channel task may have ended.
    pub fn poke(&self) {
        self.wake.notify_one();
    }

    async fn outbox_loop(self: Arc<Self>) {
        let slots = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
        let reclaim_every = Duration::from_secs(self.config.delivery_lease_secs.max(1));
        let mut last_reclaim: Option<tokio::time::Instant> = None;
        let mut finished = self.tasks.finished();
        loop {
            if last_reclaim.is_none_or(|t| t.elapsed() >= reclaim_every) {
                self.reclaim().await;
                last_reclaim = Some(tokio::time::Instant::now());
            }
            loop {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                let lease = now_ms() + (self.config.delivery_lease_secs.max(1) * 1000) as i64;
                match self.store.claim_delivery(&self.holder, lease).await {
                    Ok(Some(d)) => {
                        let this = self.clone();
                        tokio::spawn(async move {
                            this.attempt(d).await;
                            drop(permit);
                        });
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "the outbox cannot claim replies");
                        break;
                    }
                }
            }
            tokio::select! {
                () = self.wake.notified() => {}
                _ = finished.changed() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    async fn prune_loop(self: Arc<Self>) {
        loop {
            let keep_ms = (self.config.dedupe_days * 86_400_000) as i64;
            match self.store.prune_receipts(now_ms() - keep_ms).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(pruned = n, "old webhook dedupe records pruned"),
                Err(e) => tracing::warn!(error = %e, "cannot prune webhook dedupe records"),
            }
            tokio::time::sleep(PRUNE_EVERY).await;
        }
    }

    /// Report attempts whose host died mid-send as `unknown`; they are sent again.
    async fn reclaim(&self) {
        let rows = match self.store.reclaim_deliveries().await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for interrupted replies");
                return;
            }
        };
        for d in rows {
            tracing::warn!(delivery = %d.id, task = %d.task_id, "a reply was cut off mid-send: its outcome is unknown; sending it again with the same idempotency key");
            self.record(
                &d,
                "unknown",
                Some("the host stopped while sending; the reply is sent again with the same idempotency key"),
            )
            .await;
        }
    }

    async fn record(&self, d: &DeliveryRow, state: &str, error: Option<&str>) {
        let mut data = serde_json::json!({
            "delivery_id": d.id,
            "state": state,
            "attempt": d.attempts,
            "idempotency_key": d.idempotency_key,
        });
        if let Some(e) = error {
            data["error"] = serde_json::Value::String(e.to_string());
        }
        if let Err(e) = self.tasks.emit(&d.task_id, &[("delivery", data)]).await {
            tracing::warn!(task = %d.task_id, error = %e, "cannot record a delivery event");
        }
    }

    /// The text of a finished task's reply.
    fn reply_text(task: &crate::store::TaskRow) -> String {
        let result: Option<serde_json::Value> = task
            .result
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok());
        match task.status {
            TaskStatus::Completed => result
                .as_ref()
                .and_then(|r| r.get("text").and_then(|t| t.as_str()).map(str::to_string))
                .or_else(|| result.as_ref().map(|r| r.to_string()))
                .unwrap_or_default(),
            TaskStatus::Canceled => "The task was canceled.".into(),
            _ => format!(
                "The task failed ({}): {}",
                task.error_code.as_deref().unwrap_or("failed"),
                task.error_message
                    .as_deref()
                    .unwrap_or("no reason was given")
            ),
        }
    }

    async fn attempt(&self, d: DeliveryRow) {
        self.record(&d, "sending", None).await;
        let result = self.send(&d).await;
        let (state, next, error) = match result {
            Ok(()) => ("delivered", now_ms(), None),
            Err((retryable, message)) => {
                let attempts = u32::try_from(d.attempts).unwrap_or(u32::MAX);
                if retryable && attempts < self.config.delivery_attempts {
                    let exp = attempts.saturating_sub(1).min(20);
                    let secs = self
                        .config
                        .delivery_backoff_secs
                        .max(1)
                        .saturating_mul(1 << exp)
                        .min(MAX_BACKOFF_SECS);
                    ("retry", now_ms() + (secs * 1000) as i64, Some(message))
                } else {
                    ("failed", now_ms(), Some(message))
                }
            }
        };
        match self
            .store
            .settle_delivery(&d.id, &self.holder, state, next, error.as_deref())
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(delivery = %d.id, "a reply's lease ran out while it was sent; another host reports it");
                return;
            }
            Err(e) => {
                tracing::warn!(delivery = %d.id, error = %e, "cannot record how a reply went; it is retried after its lease");
                return;
            }
        }
        metrics::counter!("switchyard_channel_deliveries_total", "state" => state).increment(1);
        self.record(&d, state, error.as_deref()).await;
    }

    /// Call the plugin; on failure whether to retry, and why.
    async fn send(&self, d: &DeliveryRow) -> Result<(), (bool, String)> {
        let unavailable = |m: String| (true, m);
        let task = self
            .store
            .task(&d.task_id)
            .await
            .map_err(|e| unavailable(e.to_string()))?
            .ok_or_else(|| (false, "the task is gone".to_string()))?;
        let row = self
            .store
            .channel(&d.instance_id)
            .await
            .map_err(|e| unavailable(e.to_string()))?
            .ok_or_else(|| (false, "the channel instance is gone".to_string()))?;
        let component = self
            .component_for(&row)
            .map_err(|e| unavailable(e.to_string()))?;
        let mut metadata: Vec<(String, String)> =
            serde_json::from_str(&d.metadata).unwrap_or_default();
        metadata.retain(|(k, _)| {
            !matches!(
                k.as_str(),
                "idempotency-key" | "task-id" | "task-status" | "attempt"
            )
        });
        metadata.extend([
            ("idempotency-key".to_string(), d.idempotency_key.clone()),
            ("task-id".to_string(), task.id.clone()),
            ("task-status".to_string(), task.status.as_str().to_string()),
            ("attempt".to_string(), d.attempts.to_string()),
        ]);
        let message = channel::OutboundMessage {
            conversation_key: d.conversation_key.clone(),
            reply_target: d.reply_target.clone(),
            text: Self::reply_text(&task),
            metadata,
        };
        let hooks = CallHooks {
            kv: Some(KvNamespace::Channel(row.id.clone())),
            ..CallHooks::default()
        };
        let runtime = self.plugins.manager().runtime();
        runtime
            .deliver(&component, message, hooks)
            .await
            .map_err(|e| {
                let retryable = !matches!(
                    e.kind,
                    ErrorKind::InvalidInput | ErrorKind::Denied | ErrorKind::NotFound
                );
                (retryable, e.to_string())
            })
    }
}
