//! Tasks: the durable queue. One row per task with its status, input, result,
//! lease (holder + expiry) and the counter its events' seqs come from.
//!
//! A claim moves the oldest runnable `pending` task to `running` under a lease
//! in one statement (Postgres adds `FOR UPDATE SKIP LOCKED`, so hosts sharing
//! the database skip each other's rows); a session's tasks run one at a time
//! and in order; a lease that is not renewed expires and the task is
//! recovered by whoever looks next.

use super::batch::{AnyQuery, RowsInsert};
use super::events::{EventRow, insert_events};
use super::{Backend, Page, Store, StoreError, now_ms};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Queued, waiting for a dispatcher.
    Pending,
    /// Claimed and running under a lease.
    Running,
    /// Waiting for the session's next message (a question or an approval).
    InputRequired,
    /// Finished with a result.
    Completed,
    /// Finished with an error.
    Failed,
    /// Stopped on request.
    Canceled,
}

impl TaskStatus {
    /// Every status, in life order.
    pub const ALL: [TaskStatus; 6] = [
        Self::Pending,
        Self::Running,
        Self::InputRequired,
        Self::Completed,
        Self::Failed,
        Self::Canceled,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::InputRequired => "input_required",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }

    /// The status called `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether the task will never change again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Canceled)
    }
}

/// What a task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    /// The agent loop: a model with tools.
    Agent,
    /// A command in the session's sandbox.
    Exec,
}

impl TaskKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Exec => "exec",
        }
    }

    /// The kind called `s`.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "agent" => Ok(Self::Agent),
            "exec" => Ok(Self::Exec),
            other => Err(StoreError::Corrupt(format!("task kind `{other}`"))),
        }
    }
}

/// A stored task.
#[derive(Debug, Clone)]
pub struct TaskRow {
    /// Stable id (UUIDv7).
    pub id: String,
    /// The session it runs in.
    pub session_id: String,
    /// The user it belongs to.
    pub owner_id: String,
    /// Agent or exec.
    pub kind: TaskKind,
    /// Its input (JSON).
    pub input: String,
    /// Where it is.
    pub status: TaskStatus,
    /// Its result (JSON) once completed.
    pub result: Option<String>,
    /// The error code once failed or canceled.
    pub error_code: Option<String>,
    /// The error message.
    pub error_message: Option<String>,
    /// How many times it was claimed.
    pub attempt: i64,
    /// Where it came from (`rest`, `ws`, `mcp`, …).
    pub origin: String,
    /// Queued (ms since the epoch).
    pub queued_at: i64,
    /// First started.
    pub started_at: Option<i64>,
    /// Finished.
    pub finished_at: Option<i64>,
    /// Not claimed before this time (retry backoff).
    pub run_after: i64,
    /// The dispatcher holding it.
    pub lease_owner: Option<String>,
    /// When the holder's lease runs out.
    pub lease_until: Option<i64>,
    /// A cancel was asked for while it ran.
    pub cancel_requested: bool,
    /// The seq of its last event.
    pub last_seq: i64,
    /// The runner's own state (JSON): what a resumed run needs.
    pub state: String,
    /// Model input tokens used.
    pub input_tokens: i64,
    /// Model output tokens used.
    pub output_tokens: i64,
}

const COLUMNS: &str = "id, session_id, owner_id, kind, input, status, result, error_code, error_message, attempt, origin, \
     queued_at, started_at, finished_at, run_after, lease_owner, lease_until, cancel_requested, last_seq, state, \
     input_tokens, output_tokens";

fn task(row: &AnyRow) -> Result<TaskRow, StoreError> {
    let status: String = row.try_get("status")?;
    Ok(TaskRow {
        id: row.try_get("id")?,
        session_id: row.try_get("session_id")?,
        owner_id: row.try_get("owner_id")?,
        kind: TaskKind::parse(&row.try_get::<String, _>("kind")?)?,
        input: row.try_get("input")?,
        status: TaskStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("task status `{status}`")))?,
        result: row.try_get("result")?,
        error_code: row.try_get("error_code")?,
        error_message: row.try_get("error_message")?,
        attempt: row.try_get::<i64, _>("attempt")?,
        origin: row.try_get("origin")?,
        queued_at: row.try_get("queued_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        run_after: row.try_get("run_after")?,
        lease_owner: row.try_get("lease_owner")?,
        lease_until: row.try_get("lease_until")?,
        cancel_requested: row.try_get::<i64, _>("cancel_requested")? != 0,
        last_seq: row.try_get("last_seq")?,
        state: row.try_get("state")?,
        input_tokens: row.try_get("input_tokens")?,
        output_tokens: row.try_get("output_tokens")?,
    })
}

/// Which tasks a list returns.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter<'a> {
    /// One owner's (`None`: everyone's).
    pub owner_id: Option<&'a str>,
    /// One session's.
    pub session_id: Option<&'a str>,
    /// In one status.
    pub status: Option<TaskStatus>,
    /// From one origin.
    pub origin: Option<&'a str>,
}

/// Limits a claim respects.
#[derive(Debug, Clone, Copy)]
pub struct ClaimLimits {
    /// Running tasks allowed per user.
    pub per_user: i64,
    /// The lease length (ms).
    pub lease_ms: i64,
}

/// How a task ended, as stored.
#[derive(Debug, Clone)]
pub struct Finish<'a> {
    /// Completed, failed or canceled.
    pub status: TaskStatus,
    /// Only from this status (any unfinished one when `None`).
    pub from: Option<TaskStatus>,
    /// The result (JSON).
    pub result: Option<&'a str>,
    /// The error code.
    pub error_code: Option<&'a str>,
    /// The error message.
    pub error_message: Option<&'a str>,
}

impl Store {
    /// Queue a new task with its first `events`, in one transaction.
    pub async fn insert_task(
        &self,
        t: &TaskRow,
        events: &[(&str, String)],
    ) -> Result<Vec<EventRow>, StoreError> {
        let mut tx = self.begin_write().await?;
        insert_task_row(&mut tx, t).await?;
        let rows = insert_events(&mut tx, &t.id, events).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// One task by id.
    pub async fn task(&self, id: &str) -> Result<Option<TaskRow>, StoreError> {
        sqlx::query(sql!("SELECT {COLUMNS} FROM tasks WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(task)
            .transpose()
    }

    /// A page of tasks, newest first.
    pub async fn tasks(
        &self,
        filter: &TaskFilter<'_>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<TaskRow>, StoreError> {
        let rows = sqlx::query(sql!(
            "SELECT {COLUMNS} FROM tasks WHERE ($1 = '' OR owner_id = $1) AND ($2 = '' OR session_id = $2) \
             AND ($3 = '' OR status = $3) AND ($4 = '' OR origin = $4) AND ($5 = '' OR id < $5) \
             ORDER BY id DESC LIMIT $6"
        ))
        .bind(filter.owner_id.unwrap_or(""))
        .bind(filter.session_id.unwrap_or(""))
        .bind(filter.status.map_or("", TaskStatus::as_str))
        .bind(filter.origin.unwrap_or(""))
        .bind(after.unwrap_or(""))
        .bind((limit + 1) as i64)
        .fetch_all(self.pool())
        .await?;
        let items = rows.iter().map(task).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_fetched(items, limit, |t| t.id.clone()))
    }

    /// The session's task that holds it (running or waiting for input), if any.
    pub async fn session_active_task(
        &self,
        session_id: &str,
    ) -> Result<Option<TaskRow>, StoreError> {
        sqlx::query(sql!(
            "SELECT {COLUMNS} FROM tasks WHERE session_id = $1 AND status IN ('running', 'input_required') \
             ORDER BY queued_at LIMIT 1"
        ))
        .bind(session_id)
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(task)
        .transpose()
    }

    /// How many of a session's tasks are not finished.
    pub async fn session_open_tasks(&self, session_id: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM tasks WHERE session_id = $1 AND status IN ('pending', 'running', 'input_required')",
        )
        .bind(session_id)
        .fetch_one(self.pool())
        .await?)
    }

    /// How many of a user's tasks are queued or running.
    pub async fn user_open_tasks(&self, owner_id: &str) -> Result<i64, StoreError> {
        let mut conn = self.pool().acquire().await?;
        open_tasks(&mut conn, owner_id).await
    }

    /// How many tasks are in each status.
    pub async fn task_status_counts(&self) -> Result<Vec<(TaskKind, TaskStatus, i64)>, StoreError> {
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT kind, status, COUNT(*) FROM tasks GROUP BY kind, status")
                .fetch_all(self.pool())
                .await?;
        rows.into_iter()
            .map(|(k, s, n)| {
                let status = TaskStatus::parse(&s)
                    .ok_or_else(|| StoreError::Corrupt(format!("task status `{s}`")))?;
                Ok((TaskKind::parse(&k)?, status, n))
            })
            .collect()
    }

    /// Claim the oldest runnable pending task for `holder`: not before its
    /// `run_after`, none of its session's tasks running or waiting for input,
    /// no older pending task in its session, its owner under `per_user`
    /// running tasks. It becomes `running` with a lease and one more attempt.
    /// `event` makes the claim's first event (given the claimed row), committed with it.
    pub async fn claim_task(
        &self,
        holder: &str,
        limits: ClaimLimits,
        event: impl FnOnce(&TaskRow) -> (&'static str, String),
    ) -> Result<Option<(TaskRow, Vec<EventRow>)>, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let lock = match self.backend() {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let row = sqlx::query(sql!(
            "UPDATE tasks SET status = 'running', lease_owner = $1, lease_until = $2, \
             started_at = COALESCE(started_at, $3), attempt = attempt + 1 \
             WHERE status = 'pending' AND id = ( \
               SELECT t.id FROM tasks t WHERE t.status = 'pending' AND t.run_after <= $3 \
               AND NOT EXISTS (SELECT 1 FROM tasks r WHERE r.session_id = t.session_id \
                               AND r.status IN ('running', 'input_required')) \
               AND NOT EXISTS (SELECT 1 FROM tasks o WHERE o.session_id = t.session_id AND o.status = 'pending' \
                               AND (o.queued_at < t.queued_at OR (o.queued_at = t.queued_at AND o.id < t.id))) \
               AND (SELECT COUNT(*) FROM tasks u WHERE u.owner_id = t.owner_id AND u.status = 'running') < $4 \
               ORDER BY t.queued_at, t.id LIMIT 1 {lock}) \
             RETURNING {COLUMNS}"
        ))
        .bind(holder)
        .bind(now + limits.lease_ms)
        .bind(now)
        .bind(limits.per_user)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(mut claimed) = row.as_ref().map(task).transpose()? else {
            return Ok(None);
        };
        let (kind, payload) = event(&claimed);
        let events = insert_events(&mut tx, &claimed.id, &[(kind, payload)]).await?;
        tx.commit().await?;
        claimed.last_seq = events.last().map_or(claimed.last_seq, |e| e.seq);
        Ok(Some((claimed, events)))
    }

    /// Extend the leases of every running task `holder` holds; the ids of
    /// those whose cancel was asked for.
    pub async fn renew_leases(
        &self,
        holder: &str,
        lease_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        sqlx::query(
            "UPDATE tasks SET lease_until = $2 WHERE lease_owner = $1 AND status = 'running'",
        )
        .bind(holder)
        .bind(now_ms() + lease_ms)
        .execute(self.pool())
        .await?;
        Ok(sqlx::query_scalar(
            "SELECT id FROM tasks WHERE lease_owner = $1 AND status = 'running' AND cancel_requested = 1",
        )
        .bind(holder)
        .fetch_all(self.pool())
        .await?)
    }

    /// Running tasks whose lease ran out (their holder died).
    pub async fn expired_tasks(&self) -> Result<Vec<TaskRow>, StoreError> {
        sqlx::query(sql!(
            "SELECT {COLUMNS} FROM tasks WHERE status = 'running' AND lease_until < $1 ORDER BY queued_at"
        ))
        .bind(now_ms())
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(task)
        .collect()
    }

    /// Take over an expired lease: true when this caller won it.
    pub async fn take_expired(
        &self,
        id: &str,
        holder: &str,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE tasks SET lease_owner = $2, lease_until = $3 WHERE id = $1 AND status = 'running' AND lease_until < $4",
        )
        .bind(id)
        .bind(holder)
        .bind(now + lease_ms)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Move a task from `from` to `to`, clearing the lease when it leaves
    /// `running` (`run_after` delays a requeue), and commit `events` with the
    /// change; `None` (and nothing written) when the task was not in `from`.
    pub async fn move_task(
        &self,
        id: &str,
        from: TaskStatus,
        to: TaskStatus,
        run_after: Option<i64>,
        events: &[(&str, String)],
    ) -> Result<Option<Vec<EventRow>>, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE tasks SET status = $3, run_after = COALESCE($4, run_after), \
             lease_owner = CASE WHEN $3 = 'running' THEN lease_owner ELSE NULL END, \
             lease_until = CASE WHEN $3 = 'running' THEN lease_until ELSE NULL END \
             WHERE id = $1 AND status = $2",
        )
        .bind(id)
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(run_after)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        let rows = insert_events(&mut tx, id, events).await?;
        tx.commit().await?;
        Ok(Some(rows))
    }

    /// Finish a task that is not final yet and commit `events` with it;
    /// `None` (and nothing written) when it was already final.
    pub async fn finish_task(
        &self,
        id: &str,
        f: &Finish<'_>,
        events: &[(&str, String)],
    ) -> Result<Option<Vec<EventRow>>, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE tasks SET status = $2, result = $3, error_code = $4, error_message = $5, finished_at = $6, \
             lease_owner = NULL, lease_until = NULL \
             WHERE id = $1 AND status IN ('pending', 'running', 'input_required') AND ($7 = '' OR status = $7)",
        )
        .bind(id)
        .bind(f.status.as_str())
        .bind(f.result)
        .bind(f.error_code)
        .bind(f.error_message)
        .bind(now_ms())
        .bind(f.from.map_or("", TaskStatus::as_str))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        let rows = insert_events(&mut tx, id, events).await?;
        tx.commit().await?;
        Ok(Some(rows))
    }

    /// Ask a running task to stop (its holder sees it on the next lease renewal).
    pub async fn request_cancel(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE tasks SET cancel_requested = 1 WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Save a runner's state and usage so far.
    pub async fn save_task_state(
        &self,
        id: &str,
        state: &str,
        input_tokens: i64,
        output_tokens: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE tasks SET state = $2, input_tokens = $3, output_tokens = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(state)
        .bind(input_tokens)
        .bind(output_tokens)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

/// How many of `owner`'s tasks are pending or running (the count the
/// `task_counts` triggers keep).
pub(crate) async fn open_tasks(
    conn: &mut sqlx::AnyConnection,
    owner: &str,
) -> Result<i64, StoreError> {
    let open: Option<i64> =
        sqlx::query_scalar("SELECT open_tasks FROM task_counts WHERE owner_id = $1")
            .bind(owner)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(open.unwrap_or(0))
}

/// Insert a task row inside the caller's transaction.
pub(crate) async fn insert_task_row(
    conn: &mut sqlx::AnyConnection,
    t: &TaskRow,
) -> Result<(), StoreError> {
    super::batch::insert(conn, TaskRows(&[t])).await
}

/// Task rows for one multi-row insert.
pub(crate) struct TaskRows<'a>(pub &'a [&'a TaskRow]);

impl RowsInsert for TaskRows<'_> {
    const COLUMNS: usize = 22;

    fn head(&self) -> String {
        format!("INSERT INTO tasks ({COLUMNS}) VALUES ")
    }

    fn rows(&self) -> usize {
        self.0.len()
    }

    fn bind<'q>(&self, mut query: AnyQuery<'q>) -> AnyQuery<'q> {
        for t in self.0 {
            query = query
                .bind(&t.id)
                .bind(&t.session_id)
                .bind(&t.owner_id)
                .bind(t.kind.as_str())
                .bind(&t.input)
                .bind(t.status.as_str())
                .bind(&t.result)
                .bind(&t.error_code)
                .bind(&t.error_message)
                .bind(t.attempt)
                .bind(&t.origin)
                .bind(t.queued_at)
                .bind(t.started_at)
                .bind(t.finished_at)
                .bind(t.run_after)
                .bind(&t.lease_owner)
                .bind(t.lease_until)
                .bind(i64::from(t.cancel_requested))
                .bind(t.last_seq)
                .bind(&t.state)
                .bind(t.input_tokens)
                .bind(t.output_tokens);
        }
        query
    }
}
