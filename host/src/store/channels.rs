//! Channels as stored: configured instances of channel plugins, their sealed
//! secrets, the conversation → session map, the dedupe records of received
//! deliveries (kept for the retention the channels module sets), and the
//! delivery outbox.
//!
//! A webhook message becomes a task in one transaction with its dedupe record
//! and its outbox row (see the `intake` module): either all three exist or
//! none, so a redelivery is refused exactly when a task was queued.

use super::batch::{AnyQuery, RowsInsert};
use super::sessions::SessionRow;
use super::{Backend, Store, StoreError, now_ms};
use sqlx::Row;
use sqlx::any::AnyRow;

/// One configured instance of a channel plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelRow {
    /// Stable id.
    pub id: String,
    /// The channel plugin.
    pub plugin: String,
    /// The instance name, unique per plugin (`default` for `/channels/{plugin}/webhook`).
    pub name: String,
    /// Who owns the sessions and tasks the channel creates.
    pub owner_id: String,
    /// The agent profile new sessions start from (the owner's default when `None`).
    pub agent_id: Option<String>,
    /// Configuration over the plugin's (JSON object of strings).
    pub config: String,
    /// Whether webhooks are accepted.
    pub enabled: bool,
    /// Webhook calls allowed per minute.
    pub rate_per_minute: i64,
    /// Created (ms).
    pub created_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
}

const CHANNEL_COLUMNS: &str = "id, plugin, name, owner_id, agent_id, config, enabled, rate_per_minute, created_at, updated_at";

fn channel_row(row: &AnyRow) -> Result<ChannelRow, StoreError> {
    Ok(ChannelRow {
        id: row.try_get("id")?,
        plugin: row.try_get("plugin")?,
        name: row.try_get("name")?,
        owner_id: row.try_get("owner_id")?,
        agent_id: row.try_get("agent_id")?,
        config: row.try_get("config")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        rate_per_minute: row.try_get("rate_per_minute")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// One reply in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRow {
    /// Stable id.
    pub id: String,
    /// The task whose result it carries.
    pub task_id: String,
    /// The channel instance it goes out through.
    pub instance_id: String,
    /// The conversation it answers.
    pub conversation_key: String,
    /// Where the reply goes (the inbound message's `reply-target`).
    pub reply_target: String,
    /// The inbound message's metadata (JSON list of pairs).
    pub metadata: String,
    /// Sent with every attempt, so the receiver can drop a repeat.
    pub idempotency_key: String,
    /// `waiting` (for the task), `retry`, `sending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts started so far.
    pub attempts: i64,
    /// Not before (ms).
    pub next_attempt_at: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Who is sending it now.
    pub lease_owner: Option<String>,
    /// Until when (ms).
    pub lease_until: Option<i64>,
    /// Created (ms).
    pub created_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
}

const DELIVERY_COLUMNS: &str = "id, task_id, instance_id, conversation_key, reply_target, metadata, \
     idempotency_key, state, attempts, next_attempt_at, last_error, lease_owner, lease_until, created_at, updated_at";

fn delivery_row(row: &AnyRow) -> Result<DeliveryRow, StoreError> {
    Ok(DeliveryRow {
        id: row.try_get("id")?,
        task_id: row.try_get("task_id")?,
        instance_id: row.try_get("instance_id")?,
        conversation_key: row.try_get("conversation_key")?,
        reply_target: row.try_get("reply_target")?,
        metadata: row.try_get("metadata")?,
        idempotency_key: row.try_get("idempotency_key")?,
        state: row.try_get("state")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_error: row.try_get("last_error")?,
        lease_owner: row.try_get("lease_owner")?,
        lease_until: row.try_get("lease_until")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Add a channel instance.
    pub async fn insert_channel(&self, row: &ChannelRow) -> Result<(), StoreError> {
        sqlx::query(sql!(
            "INSERT INTO channel_instances ({CHANNEL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&row.id)
        .bind(&row.plugin)
        .bind(&row.name)
        .bind(&row.owner_id)
        .bind(&row.agent_id)
        .bind(&row.config)
        .bind(i64::from(row.enabled))
        .bind(row.rate_per_minute)
        .bind(row.created_at)
        .bind(row.updated_at)
        .execute(self.pool())
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!(
                "plugin `{}` already has a channel instance named `{}`",
                row.plugin, row.name
            )),
            other => other,
        })?;
        Ok(())
    }

    /// Replace an instance's editable fields.
    pub async fn update_channel(&self, row: &ChannelRow) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE channel_instances SET owner_id = $2, agent_id = $3, config = $4, enabled = $5, \
             rate_per_minute = $6, updated_at = $7 WHERE id = $1",
        )
        .bind(&row.id)
        .bind(&row.owner_id)
        .bind(&row.agent_id)
        .bind(&row.config)
        .bind(i64::from(row.enabled))
        .bind(row.rate_per_minute)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Delete an instance with its secrets, conversations, receipts and outbox.
    pub async fn delete_channel(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for table in [
            "channel_secrets",
            "channel_conversations",
            "channel_receipts",
            "deliveries",
        ] {
            sqlx::query(sql!("DELETE FROM {table} WHERE instance_id = $1"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let result = sqlx::query("DELETE FROM channel_instances WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// One instance by id.
    pub async fn channel(&self, id: &str) -> Result<Option<ChannelRow>, StoreError> {
        sqlx::query(sql!(
            "SELECT {CHANNEL_COLUMNS} FROM channel_instances WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(channel_row)
        .transpose()
    }

    /// One instance by plugin and name.
    pub async fn channel_named(
        &self,
        plugin: &str,
        name: &str,
    ) -> Result<Option<ChannelRow>, StoreError> {
        sqlx::query(sql!(
            "SELECT {CHANNEL_COLUMNS} FROM channel_instances WHERE plugin = $1 AND name = $2"
        ))
        .bind(plugin)
        .bind(name)
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(channel_row)
        .transpose()
    }

    /// Every instance (of one owner when given), by plugin and name.
    pub async fn channels(&self, owner_id: Option<&str>) -> Result<Vec<ChannelRow>, StoreError> {
        let rows = match owner_id {
            Some(owner) => {
                sqlx::query(sql!(
                    "SELECT {CHANNEL_COLUMNS} FROM channel_instances WHERE owner_id = $1 ORDER BY plugin, name"
                ))
                .bind(owner)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query(sql!(
                    "SELECT {CHANNEL_COLUMNS} FROM channel_instances ORDER BY plugin, name"
                ))
                .fetch_all(self.pool())
                .await?
            }
        };
        rows.iter().map(channel_row).collect()
    }

    /// Set (or with `None`, delete) a sealed instance secret.
    pub async fn put_channel_secret(
        &self,
        instance_id: &str,
        name: &str,
        sealed: Option<Vec<u8>>,
    ) -> Result<(), StoreError> {
        match sealed {
            Some(bytes) => {
                sqlx::query(
                    "INSERT INTO channel_secrets (instance_id, name, sealed, updated_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (instance_id, name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
                )
                .bind(instance_id)
                .bind(name)
                .bind(bytes)
                .bind(now_ms())
                .execute(self.pool())
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM channel_secrets WHERE instance_id = $1 AND name = $2")
                    .bind(instance_id)
                    .bind(name)
                    .execute(self.pool())
                    .await?;
            }
        }
        Ok(())
    }

    /// A sealed instance secret.
    pub async fn channel_secret(
        &self,
        instance_id: &str,
        name: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT sealed FROM channel_secrets WHERE instance_id = $1 AND name = $2",
        )
        .bind(instance_id)
        .bind(name)
        .fetch_optional(self.pool())
        .await?)
    }

    /// The names of an instance's secrets that have values.
    pub async fn channel_secret_names(&self, instance_id: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT name FROM channel_secrets WHERE instance_id = $1 ORDER BY name",
        )
        .bind(instance_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// The session a conversation is bound to.
    pub async fn conversation_session(
        &self,
        instance_id: &str,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT session_id FROM channel_conversations WHERE instance_id = $1 AND conversation_key = $2",
        )
        .bind(instance_id)
        .bind(key)
        .fetch_optional(self.pool())
        .await?)
    }

    /// The session a conversation is bound to, read in one query.
    pub async fn conversation_session_row(
        &self,
        instance_id: &str,
        key: &str,
    ) -> Result<Option<SessionRow>, StoreError> {
        self.session_where(
            "id = (SELECT session_id FROM channel_conversations \
             WHERE instance_id = $1 AND conversation_key = $2)",
            &[instance_id, key],
        )
        .await
    }

    /// Bind a conversation to `session_id` unless it is bound already; the
    /// session it is bound to afterwards (the first binding wins a race).
    pub async fn bind_conversation(
        &self,
        instance_id: &str,
        key: &str,
        session_id: &str,
    ) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO channel_conversations (instance_id, conversation_key, session_id, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (instance_id, conversation_key) DO NOTHING",
        )
        .bind(instance_id)
        .bind(key)
        .bind(session_id)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        self.conversation_session(instance_id, key)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Drop dedupe records received before `before` (ms); how many.
    pub async fn prune_receipts(&self, before: i64) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM channel_receipts WHERE received_at < $1")
                .bind(before)
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }

    /// Claim the oldest due reply whose task has finished, for `holder` until
    /// `lease_until`: it becomes `sending` with one more attempt, committed
    /// before anything is sent.
    pub async fn claim_delivery(
        &self,
        holder: &str,
        lease_until: i64,
    ) -> Result<Option<DeliveryRow>, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let lock = match self.backend() {
            Backend::Postgres => "FOR UPDATE OF d SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let id: Option<String> = sqlx::query_scalar(sql!(
            "SELECT d.id FROM deliveries d JOIN tasks t ON t.id = d.task_id \
             WHERE d.state IN ('waiting', 'retry') AND d.next_attempt_at <= $1 \
             AND t.status IN ('completed', 'failed', 'canceled') \
             ORDER BY d.next_attempt_at, d.id LIMIT 1 {lock}"
        ))
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else {
            tx.rollback().await?;
            return Ok(None);
        };
        let row = sqlx::query(sql!(
            "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, lease_owner = $2, \
             lease_until = $3, updated_at = $4 WHERE id = $1 RETURNING {DELIVERY_COLUMNS}"
        ))
        .bind(&id)
        .bind(holder)
        .bind(lease_until)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(delivery_row(&row)?))
    }

    /// Record how an attempt ended, if `holder` still holds it: `state` is
    /// `delivered`, `failed` or `retry` (again at `next_attempt_at`).
    /// False when the lease was lost.
    pub async fn settle_delivery(
        &self,
        id: &str,
        holder: &str,
        state: &str,
        next_attempt_at: i64,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE deliveries SET state = $3, next_attempt_at = $4, last_error = $5, lease_owner = NULL, \
             lease_until = NULL, updated_at = $6 WHERE id = $1 AND lease_owner = $2 AND state = 'sending'",
        )
        .bind(id)
        .bind(holder)
        .bind(state)
        .bind(next_attempt_at)
        .bind(error)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Attempts whose sender died mid-send (lease expired while `sending`):
    /// they become `retry` at once; the rows as they were, so their attempt
    /// can be reported as `unknown`.
    pub async fn reclaim_deliveries(&self) -> Result<Vec<DeliveryRow>, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(sql!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE state = 'sending' AND lease_until < $1"
        ))
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let rows = rows
            .iter()
            .map(delivery_row)
            .collect::<Result<Vec<_>, _>>()?;
        for row in &rows {
            sqlx::query(
                "UPDATE deliveries SET state = 'retry', last_error = $2, lease_owner = NULL, lease_until = NULL, \
                 next_attempt_at = $3, updated_at = $3 WHERE id = $1 AND state = 'sending'",
            )
            .bind(&row.id)
            .bind("the host stopped while sending: the attempt's outcome is unknown")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(rows)
    }

    /// Put a failed reply back in the queue (a manual retry); false when it is not `failed`.
    pub async fn retry_delivery(&self, id: &str) -> Result<bool, StoreError> {
        let now = now_ms();
        let result = sqlx::query(
            "UPDATE deliveries SET state = 'retry', next_attempt_at = $2, updated_at = $2 \
             WHERE id = $1 AND state = 'failed'",
        )
        .bind(id)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// One reply by id.
    pub async fn delivery(&self, id: &str) -> Result<Option<DeliveryRow>, StoreError> {
        sqlx::query(sql!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(delivery_row)
        .transpose()
    }

    /// The replies of a task.
    pub async fn task_deliveries(&self, task_id: &str) -> Result<Vec<DeliveryRow>, StoreError> {
        let rows = sqlx::query(sql!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE task_id = $1 ORDER BY created_at, id"
        ))
        .bind(task_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(delivery_row).collect()
    }

    /// An instance's newest replies, at most `limit`.
    pub async fn channel_deliveries(
        &self,
        instance_id: &str,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let rows = sqlx::query(sql!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE instance_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2"
        ))
        .bind(instance_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(delivery_row).collect()
    }
}

/// Outbox rows for one multi-row insert.
pub(crate) struct DeliveryRows<'a>(pub &'a [&'a DeliveryRow]);

impl RowsInsert for DeliveryRows<'_> {
    const COLUMNS: usize = 15;

    fn head(&self) -> String {
        format!("INSERT INTO deliveries ({DELIVERY_COLUMNS}) VALUES ")
    }

    fn rows(&self) -> usize {
        self.0.len()
    }

    fn bind<'q>(&self, mut query: AnyQuery<'q>) -> AnyQuery<'q> {
        for d in self.0 {
            query = query
                .bind(&d.id)
                .bind(&d.task_id)
                .bind(&d.instance_id)
                .bind(&d.conversation_key)
                .bind(&d.reply_target)
                .bind(&d.metadata)
                .bind(&d.idempotency_key)
                .bind(&d.state)
                .bind(d.attempts)
                .bind(d.next_attempt_at)
                .bind(&d.last_error)
                .bind(&d.lease_owner)
                .bind(d.lease_until)
                .bind(d.created_at)
                .bind(d.updated_at);
        }
        query
    }
}
