//! Sandboxes: each named sandbox's owner, lifecycle state, container and
//! workspace volume, and the sandbox limits administrators set per user.

use super::{Page, Store, StoreError, now_ms};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Where a sandbox is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SandboxState {
    /// Its container is being created or started.
    Starting,
    /// Running, no command in progress.
    Idle,
    /// Running a command or a terminal.
    Busy,
    /// No container (stopped by its owner or the idle reaper); the workspace remains.
    Stopped,
    /// The container could not start or vanished; `detail` says why.
    Failed,
}

impl SandboxState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Idle => "idle",
            Self::Busy => "busy",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
        }
    }

    /// Whether the sandbox counts against its owner's quota (it has a container).
    pub fn is_live(self) -> bool {
        matches!(self, Self::Starting | Self::Idle | Self::Busy)
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "starting" => Self::Starting,
            "idle" => Self::Idle,
            "busy" => Self::Busy,
            "stopped" => Self::Stopped,
            "failed" => Self::Failed,
            other => return Err(StoreError::Corrupt(format!("sandbox state `{other}`"))),
        })
    }
}

/// A stored sandbox.
#[derive(Debug, Clone)]
pub struct SandboxRow {
    /// Stable id.
    pub id: String,
    /// The user it belongs to.
    pub owner_id: String,
    /// Its name, unique per owner.
    pub name: String,
    /// Lifecycle state.
    pub state: SandboxState,
    /// Why it failed or stopped, when it did.
    pub detail: Option<String>,
    /// The engine's container id while it has one.
    pub container_id: Option<String>,
    /// The workspace volume.
    pub volume: String,
    /// Its resource limits (JSON, owned by the sandbox module).
    pub limits: String,
    /// Creation time (ms since the epoch).
    pub created_at: i64,
    /// Last state change (ms since the epoch).
    pub updated_at: i64,
    /// Last command, file operation or terminal activity (ms since the epoch).
    pub last_used_at: i64,
}

const COLUMNS: &str = "id, owner_id, name, state, detail, container_id, volume, limits, created_at, updated_at, last_used_at";

fn sandbox(row: &AnyRow) -> Result<SandboxRow, StoreError> {
    Ok(SandboxRow {
        id: row.try_get("id")?,
        owner_id: row.try_get("owner_id")?,
        name: row.try_get("name")?,
        state: SandboxState::parse(&row.try_get::<String, _>("state")?)?,
        detail: row.try_get("detail")?,
        container_id: row.try_get("container_id")?,
        volume: row.try_get("volume")?,
        limits: row.try_get("limits")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

impl Store {
    /// Store a new sandbox; a name its owner already uses is a conflict.
    pub async fn insert_sandbox(&self, s: &SandboxRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sandboxes (id, owner_id, name, state, detail, container_id, volume, limits, created_at, updated_at, last_used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&s.id)
        .bind(&s.owner_id)
        .bind(&s.name)
        .bind(s.state.as_str())
        .bind(&s.detail)
        .bind(&s.container_id)
        .bind(&s.volume)
        .bind(&s.limits)
        .bind(s.created_at)
        .bind(s.updated_at)
        .bind(s.last_used_at)
        .execute(self.pool())
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!("sandbox `{}`", s.name)),
            other => other,
        })?;
        Ok(())
    }

    /// One sandbox by id.
    pub async fn sandbox(&self, id: &str) -> Result<Option<SandboxRow>, StoreError> {
        sqlx::query(sql!("SELECT {COLUMNS} FROM sandboxes WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(sandbox)
            .transpose()
    }

    /// A page of sandboxes, oldest first: one owner's, or everyone's with `None`.
    pub async fn sandboxes(
        &self,
        owner_id: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<SandboxRow>, StoreError> {
        let rows = sqlx::query(sql!(
            "SELECT {COLUMNS} FROM sandboxes WHERE ($1 = '' OR owner_id = $1) AND ($2 = '' OR id > $2) \
             ORDER BY id LIMIT $3"
        ))
        .bind(owner_id.unwrap_or(""))
        .bind(after.unwrap_or(""))
        .bind((limit + 1) as i64)
        .fetch_all(self.pool())
        .await?;
        let items = rows.iter().map(sandbox).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_fetched(items, limit, |s| s.id.clone()))
    }

    /// Every sandbox of one owner (for the storage quota).
    pub async fn owner_sandboxes(&self, owner_id: &str) -> Result<Vec<SandboxRow>, StoreError> {
        sqlx::query(sql!(
            "SELECT {COLUMNS} FROM sandboxes WHERE owner_id = $1 ORDER BY id"
        ))
        .bind(owner_id)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(sandbox)
        .collect()
    }

    /// Replace a sandbox's limits (JSON).
    pub async fn set_sandbox_limits(&self, id: &str, limits: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE sandboxes SET limits = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(limits)
            .bind(now_ms())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Every sandbox (for re-attaching and reaping).
    pub async fn all_sandboxes(&self) -> Result<Vec<SandboxRow>, StoreError> {
        sqlx::query(sql!("SELECT {COLUMNS} FROM sandboxes ORDER BY id"))
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(sandbox)
            .collect()
    }

    /// How many sandboxes are in each stored state.
    pub async fn sandbox_state_counts(&self) -> Result<Vec<(SandboxState, i64)>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM sandboxes GROUP BY state")
                .fetch_all(self.pool())
                .await?;
        rows.into_iter()
            .map(|(s, n)| Ok((SandboxState::parse(&s)?, n)))
            .collect()
    }

    /// How many of `owner_id`'s sandboxes have a container.
    pub async fn live_sandbox_count(&self, owner_id: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM sandboxes WHERE owner_id = $1 AND state IN ('starting', 'idle', 'busy')",
        )
        .bind(owner_id)
        .fetch_one(self.pool())
        .await?)
    }

    /// Record a state change, its detail and the current container.
    pub async fn set_sandbox_state(
        &self,
        id: &str,
        state: SandboxState,
        detail: Option<&str>,
        container_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE sandboxes SET state = $2, detail = $3, container_id = $4, updated_at = $5 WHERE id = $1",
        )
        .bind(id)
        .bind(state.as_str())
        .bind(detail)
        .bind(container_id)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Note activity on a sandbox (the idle reaper measures from here).
    pub async fn touch_sandbox(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE sandboxes SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now_ms())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Forget a sandbox.
    pub async fn delete_sandbox(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sandboxes WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The sandbox limits an administrator set for a user (JSON), if any.
    pub async fn sandbox_user_limits(&self, user_id: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT limits FROM sandbox_user_limits WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// Set (or with `None`, clear) a user's sandbox limits.
    pub async fn set_sandbox_user_limits(
        &self,
        user_id: &str,
        limits: Option<&str>,
    ) -> Result<(), StoreError> {
        match limits {
            Some(limits) => {
                sqlx::query(
                    "INSERT INTO sandbox_user_limits (user_id, limits, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (user_id) DO UPDATE SET limits = excluded.limits, updated_at = excluded.updated_at",
                )
                .bind(user_id)
                .bind(limits)
                .bind(now_ms())
                .execute(self.pool())
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM sandbox_user_limits WHERE user_id = $1")
                    .bind(user_id)
                    .execute(self.pool())
                    .await?;
            }
        }
        Ok(())
    }
}
