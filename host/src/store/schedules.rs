//! Schedules as stored: one row per schedule with its next slot, and one
//! `schedule_runs` row per slot the scheduler decided about (started,
//! buffered, skipped, missed, failed).
//!
//! A pass that fires a schedule writes everything in one transaction
//! ([`Store::fire_schedule`]): it first moves the schedule's `next_slot` from
//! the value the pass read (a compare-and-set that locks the row), then inserts
//! the runs, keyed by (schedule, slot), and their sessions and tasks. A second
//! host or a restarted one that read the same slot finds it moved and writes
//! nothing, so each fire is claimed once.

use super::events::{EventRow, insert_events};
use super::sessions::{SessionRow, insert_session_row};
use super::tasks::{TaskRow, insert_task_row};
use super::{Page, Store, StoreError, now_ms};
use sqlx::Row;
use sqlx::any::AnyRow;

/// One schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRow {
    /// Stable id.
    pub id: String,
    /// Who owns it (and the tasks it starts).
    pub owner_id: String,
    /// Unique per owner.
    pub name: String,
    /// The trigger (JSON).
    pub trigger_spec: String,
    /// `agent` or `exec`.
    pub task_kind: String,
    /// The task input (JSON).
    pub input: String,
    /// The session every run goes to; a fresh session per run when `None`.
    pub session_id: Option<String>,
    /// The agent profile fresh sessions start from.
    pub agent_id: Option<String>,
    /// What a run does while the previous one still runs.
    pub overlap: String,
    /// Which missed runs start after downtime.
    pub catchup: String,
    /// How far back missed runs are caught up (seconds).
    pub catchup_window_secs: i64,
    /// At most this many missed runs are caught up.
    pub catchup_max: i64,
    /// Runs start up to this many seconds after their slot.
    pub jitter_secs: i64,
    /// `active`, `paused` or `done`.
    pub state: String,
    /// The next slot (ms).
    pub next_slot: Option<i64>,
    /// The next slot plus its jitter (ms); `None` unless active.
    pub next_due_at: Option<i64>,
    /// The task of the latest started run.
    pub last_task_id: Option<String>,
    /// Created (ms).
    pub created_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
}

const COLUMNS: &str = "id, owner_id, name, trigger_spec, task_kind, input, session_id, agent_id, overlap, catchup, \
     catchup_window_secs, catchup_max, jitter_secs, state, next_slot, next_due_at, last_task_id, created_at, updated_at";

fn schedule_row(row: &AnyRow) -> Result<ScheduleRow, StoreError> {
    Ok(ScheduleRow {
        id: row.try_get("id")?,
        owner_id: row.try_get("owner_id")?,
        name: row.try_get("name")?,
        trigger_spec: row.try_get("trigger_spec")?,
        task_kind: row.try_get("task_kind")?,
        input: row.try_get("input")?,
        session_id: row.try_get("session_id")?,
        agent_id: row.try_get("agent_id")?,
        overlap: row.try_get("overlap")?,
        catchup: row.try_get("catchup")?,
        catchup_window_secs: row.try_get("catchup_window_secs")?,
        catchup_max: row.try_get("catchup_max")?,
        jitter_secs: row.try_get("jitter_secs")?,
        state: row.try_get("state")?,
        next_slot: row.try_get("next_slot")?,
        next_due_at: row.try_get("next_due_at")?,
        last_task_id: row.try_get("last_task_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// What the scheduler decided about one slot.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    /// The schedule.
    pub schedule_id: String,
    /// The slot (ms): with the schedule, the run's fire id.
    pub slot: i64,
    /// `started`, `buffered`, `skipped`, `missed` or `failed`.
    pub state: String,
    /// Why it was not started.
    pub reason: Option<String>,
    /// The task it started.
    pub task_id: Option<String>,
    /// The slot plus its jitter (ms).
    pub due_at: i64,
    /// When the scheduler decided (ms).
    pub decided_at: i64,
}

const RUN_COLUMNS: &str = "schedule_id, slot, state, reason, task_id, due_at, decided_at";

fn run_row(row: &AnyRow) -> Result<RunRow, StoreError> {
    Ok(RunRow {
        schedule_id: row.try_get("schedule_id")?,
        slot: row.try_get("slot")?,
        state: row.try_get("state")?,
        reason: row.try_get("reason")?,
        task_id: row.try_get("task_id")?,
        due_at: row.try_get("due_at")?,
        decided_at: row.try_get("decided_at")?,
    })
}

/// A task one run starts, with what must be written along with it.
#[derive(Debug, Clone)]
pub struct StartedTask {
    /// A fresh session to create first.
    pub session: Option<SessionRow>,
    /// The task.
    pub task: TaskRow,
    /// Its first events.
    pub events: Vec<(&'static str, String)>,
}

/// Everything one pass writes for one schedule.
#[derive(Debug, Clone)]
pub struct Firing {
    /// The schedule.
    pub schedule_id: String,
    /// Its `next_slot` when the pass read it (the compare-and-set guard).
    pub expected_slot: i64,
    /// The slot after this pass (`None`: no more, the schedule is done).
    pub next_slot: Option<i64>,
    /// Its due time.
    pub next_due_at: Option<i64>,
    /// The runs decided.
    pub runs: Vec<RunRow>,
    /// The tasks started, in run order.
    pub started: Vec<StartedTask>,
}

impl Store {
    /// Add a schedule.
    pub async fn insert_schedule(&self, s: &ScheduleRow) -> Result<(), StoreError> {
        sqlx::query(sql!(
            "INSERT INTO schedules ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
             $14, $15, $16, $17, $18, $19)"
        ))
        .bind(&s.id)
        .bind(&s.owner_id)
        .bind(&s.name)
        .bind(&s.trigger_spec)
        .bind(&s.task_kind)
        .bind(&s.input)
        .bind(&s.session_id)
        .bind(&s.agent_id)
        .bind(&s.overlap)
        .bind(&s.catchup)
        .bind(s.catchup_window_secs)
        .bind(s.catchup_max)
        .bind(s.jitter_secs)
        .bind(&s.state)
        .bind(s.next_slot)
        .bind(s.next_due_at)
        .bind(&s.last_task_id)
        .bind(s.created_at)
        .bind(s.updated_at)
        .execute(self.pool())
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("a schedule named `{}`", s.name))
            }
            other => other,
        })?;
        Ok(())
    }

    /// Replace a schedule's editable fields and its next slot, unless it
    /// changed since `updated_at` (false then).
    pub async fn update_schedule(
        &self,
        s: &ScheduleRow,
        updated_at: i64,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE schedules SET name = $2, trigger_spec = $3, task_kind = $4, input = $5, session_id = $6, \
             agent_id = $7, overlap = $8, catchup = $9, catchup_window_secs = $10, catchup_max = $11, \
             jitter_secs = $12, state = $13, next_slot = $14, next_due_at = $15, updated_at = $16 \
             WHERE id = $1 AND updated_at = $17",
        )
        .bind(&s.id)
        .bind(&s.name)
        .bind(&s.trigger_spec)
        .bind(&s.task_kind)
        .bind(&s.input)
        .bind(&s.session_id)
        .bind(&s.agent_id)
        .bind(&s.overlap)
        .bind(&s.catchup)
        .bind(s.catchup_window_secs)
        .bind(s.catchup_max)
        .bind(s.jitter_secs)
        .bind(&s.state)
        .bind(s.next_slot)
        .bind(s.next_due_at)
        .bind(s.updated_at)
        .bind(updated_at)
        .execute(self.pool())
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("a schedule named `{}`", s.name))
            }
            other => other,
        })?;
        Ok(result.rows_affected() == 1)
    }

    /// Delete a schedule and its history (its tasks stay).
    pub async fn delete_schedule(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM schedule_runs WHERE schedule_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let result = sqlx::query("DELETE FROM schedules WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// One schedule by id.
    pub async fn schedule(&self, id: &str) -> Result<Option<ScheduleRow>, StoreError> {
        sqlx::query(sql!("SELECT {COLUMNS} FROM schedules WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(schedule_row)
            .transpose()
    }

    /// One schedule by owner and name.
    pub async fn schedule_named(
        &self,
        owner_id: &str,
        name: &str,
    ) -> Result<Option<ScheduleRow>, StoreError> {
        sqlx::query(sql!(
            "SELECT {COLUMNS} FROM schedules WHERE owner_id = $1 AND name = $2"
        ))
        .bind(owner_id)
        .bind(name)
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(schedule_row)
        .transpose()
    }

    /// A page of schedules (of one owner when given), by id.
    pub async fn schedules(
        &self,
        owner_id: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<ScheduleRow>, StoreError> {
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
        let rows = sqlx::query(sql!(
            "SELECT {COLUMNS} FROM schedules WHERE ($1 = '' OR owner_id = $1) AND ($2 = '' OR id > $2) \
             ORDER BY id LIMIT $3"
        ))
        .bind(owner_id.unwrap_or(""))
        .bind(after.unwrap_or(""))
        .bind(fetch)
        .fetch_all(self.pool())
        .await?;
        let items = rows
            .iter()
            .map(schedule_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_fetched(items, limit, |s| s.id.clone()))
    }

    /// How many schedules `owner_id` has.
    pub async fn schedule_count(&self, owner_id: &str) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM schedules WHERE owner_id = $1")
                .bind(owner_id)
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// Active schedules due by `now` (ms), earliest first, at most `limit`.
    pub async fn due_schedules(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<ScheduleRow>, StoreError> {
        let rows = sqlx::query(sql!(
            "SELECT {COLUMNS} FROM schedules WHERE next_due_at <= $1 ORDER BY next_due_at, id LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(schedule_row).collect()
    }

    /// The earliest due time of any active schedule.
    pub async fn next_schedule_due(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar("SELECT MIN(next_due_at) FROM schedules")
            .fetch_one(self.pool())
            .await?)
    }

    /// Write one pass's decisions for a schedule, unless another pass moved
    /// its slot first (`None` then: nothing was written). The started tasks'
    /// first events, in order.
    pub async fn fire_schedule(&self, f: &Firing) -> Result<Option<Vec<EventRow>>, StoreError> {
        let mut tx = self.begin_write().await?;
        let now = now_ms();
        let last_task = f.started.last().map(|s| s.task.id.clone());
        let state = if f.next_slot.is_some() {
            "active"
        } else {
            "done"
        };
        let moved = sqlx::query(
            "UPDATE schedules SET next_slot = $3, next_due_at = $4, state = $5, \
             last_task_id = COALESCE($6, last_task_id), updated_at = $7 \
             WHERE id = $1 AND next_slot = $2 AND state = 'active'",
        )
        .bind(&f.schedule_id)
        .bind(f.expected_slot)
        .bind(f.next_slot)
        .bind(f.next_due_at)
        .bind(state)
        .bind(&last_task)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        for run in &f.runs {
            insert_run(&mut tx, run).await?;
        }
        let rows = insert_started(&mut tx, &f.started).await?;
        tx.commit().await?;
        Ok(Some(rows))
    }

    /// Start a buffered run: its task (and session) written and the run marked
    /// `started`, unless it is no longer buffered (`None`).
    pub async fn start_buffered(
        &self,
        schedule_id: &str,
        slot: i64,
        started: &StartedTask,
    ) -> Result<Option<Vec<EventRow>>, StoreError> {
        let mut tx = self.begin_write().await?;
        let claimed = sqlx::query(
            "UPDATE schedule_runs SET state = 'started', reason = NULL, task_id = $3, decided_at = $4 \
             WHERE schedule_id = $1 AND slot = $2 AND state = 'buffered'",
        )
        .bind(schedule_id)
        .bind(slot)
        .bind(&started.task.id)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        sqlx::query("UPDATE schedules SET last_task_id = $2, updated_at = $3 WHERE id = $1")
            .bind(schedule_id)
            .bind(&started.task.id)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        let rows = insert_started(&mut tx, std::slice::from_ref(started)).await?;
        tx.commit().await?;
        Ok(Some(rows))
    }

    /// Mark a buffered run as `skipped` or `failed` (why); false when it is no longer buffered.
    pub async fn drop_buffered(
        &self,
        schedule_id: &str,
        slot: i64,
        state: &str,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE schedule_runs SET state = $3, reason = $4, decided_at = $5 \
             WHERE schedule_id = $1 AND slot = $2 AND state = 'buffered'",
        )
        .bind(schedule_id)
        .bind(slot)
        .bind(state)
        .bind(reason)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// The oldest buffered run of every schedule that has one.
    pub async fn buffered_runs(&self) -> Result<Vec<RunRow>, StoreError> {
        let rows = sqlx::query(sql!(
            "SELECT {RUN_COLUMNS} FROM schedule_runs r WHERE state = 'buffered' AND slot = \
             (SELECT MIN(slot) FROM schedule_runs b WHERE b.schedule_id = r.schedule_id AND b.state = 'buffered') \
             ORDER BY slot"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(run_row).collect()
    }

    /// How many runs of a schedule are buffered.
    pub async fn buffered_count(&self, schedule_id: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM schedule_runs WHERE schedule_id = $1 AND state = 'buffered'",
        )
        .bind(schedule_id)
        .fetch_one(self.pool())
        .await?)
    }

    /// A schedule's runs, newest slot first, before slot `before` when given,
    /// each with its task's status.
    pub async fn schedule_runs(
        &self,
        schedule_id: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(RunRow, Option<String>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.schedule_id, r.slot, r.state, r.reason, r.task_id, r.due_at, r.decided_at, \
             t.status AS task_status FROM schedule_runs r LEFT JOIN tasks t ON t.id = r.task_id \
             WHERE r.schedule_id = $1 AND r.slot < $2 ORDER BY r.slot DESC LIMIT $3",
        )
        .bind(schedule_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok((run_row(row)?, row.try_get("task_status")?)))
            .collect()
    }
}

async fn insert_run(conn: &mut sqlx::AnyConnection, r: &RunRow) -> Result<(), StoreError> {
    sqlx::query(sql!(
        "INSERT INTO schedule_runs ({RUN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(&r.schedule_id)
    .bind(r.slot)
    .bind(&r.state)
    .bind(&r.reason)
    .bind(&r.task_id)
    .bind(r.due_at)
    .bind(r.decided_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn insert_started(
    conn: &mut sqlx::AnyConnection,
    started: &[StartedTask],
) -> Result<Vec<EventRow>, StoreError> {
    let mut rows = Vec::new();
    for s in started {
        if let Some(session) = &s.session {
            insert_session_row(&mut *conn, session).await?;
        }
        insert_task_row(&mut *conn, &s.task).await?;
        rows.extend(insert_events(&mut *conn, &s.task.id, &s.events).await?);
    }
    Ok(rows)
}
