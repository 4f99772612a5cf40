//! The audit log: who did what to which target, with what outcome.

use super::{Page, Store, StoreError, new_id, now_ms};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

/// A recorded action.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Stable, time-ordered id.
    pub id: String,
    /// When (ms since the epoch).
    pub at: i64,
    /// The acting user's id; absent for the host itself and the CLI.
    pub actor_id: Option<String>,
    /// The actor's name (`cli` and `system` for the host).
    pub actor: String,
    /// What was attempted, e.g. `plugin.install`.
    pub action: String,
    /// What it was done to, e.g. `plugin:notes`.
    pub target: String,
    /// `ok`, `denied` or `error`.
    pub outcome: String,
    /// Further facts (JSON object).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// The HTTP request id, when there was one.
    pub request_id: Option<String>,
}

/// What to record.
#[derive(Debug, Clone)]
pub struct NewAudit<'a> {
    /// Acting user's id.
    pub actor_id: Option<&'a str>,
    /// Actor's name.
    pub actor: &'a str,
    /// Action.
    pub action: &'a str,
    /// Target.
    pub target: &'a str,
    /// Outcome.
    pub outcome: &'a str,
    /// Details.
    pub details: serde_json::Value,
    /// Request id.
    pub request_id: Option<&'a str>,
}

/// Which entries to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this actor id.
    pub actor_id: Option<String>,
    /// Only this action (exact) or action family (`plugin.` prefix).
    pub action: Option<String>,
    /// Only at or after (ms).
    pub since: Option<i64>,
    /// Only before (ms).
    pub until: Option<i64>,
    /// Only this outcome.
    pub outcome: Option<String>,
}

fn entry(row: &AnyRow) -> Result<AuditEntry, StoreError> {
    let details: String = row.try_get("details")?;
    Ok(AuditEntry {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor_id: row.try_get("actor_id")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        outcome: row.try_get("outcome")?,
        details: serde_json::from_str(&details).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        request_id: row.try_get("request_id")?,
    })
}

impl Store {
    /// Append an entry.
    pub async fn audit(&self, new: NewAudit<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (id, at, actor_id, actor, action, target, outcome, details, request_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(new_id())
        .bind(now_ms())
        .bind(new.actor_id)
        .bind(new.actor)
        .bind(new.action)
        .bind(new.target)
        .bind(new.outcome)
        .bind(new.details.to_string())
        .bind(new.request_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Entries matching `filter`, newest first, `limit` before the cursor.
    pub async fn audit_entries(
        &self,
        filter: &AuditFilter,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Page<AuditEntry>, StoreError> {
        let action = filter.action.clone().unwrap_or_default();
        let rows = sqlx::query(
            "SELECT id, at, actor_id, actor, action, target, outcome, details, request_id \
             FROM audit_log WHERE ($1 = '' OR actor_id = $1) \
             AND ($2 = '' OR action = $2 OR substr(action, 1, CAST($3 AS INTEGER)) = $2) \
             AND at >= $4 AND at < $5 AND ($6 = '' OR outcome = $6) AND ($7 = '' OR id < $7) \
             ORDER BY id DESC LIMIT $8",
        )
        .bind(filter.actor_id.as_deref().unwrap_or(""))
        .bind(&action)
        .bind(if action.ends_with('.') {
            action.chars().count() as i64
        } else {
            0
        })
        .bind(filter.since.unwrap_or(i64::MIN))
        .bind(filter.until.unwrap_or(i64::MAX))
        .bind(filter.outcome.as_deref().unwrap_or(""))
        .bind(before.unwrap_or(""))
        .bind(limit as i64 + 1)
        .fetch_all(self.pool())
        .await?;
        let items = rows.iter().map(entry).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_fetched(items, limit, |e| e.id.clone()))
    }
}
