//! Task events: the log a task's followers read. Each event is a row
//! `(task_id, seq)`; the seq comes from the task's `last_seq` in the same
//! transaction that inserts the row, so seqs are contiguous from 1 and an
//! event exists in the store before anyone is told about it.

use super::batch::{AnyQuery, RowsInsert};
use super::{Store, StoreError, now_ms};
use sqlx::Row;

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    /// The task.
    pub task_id: String,
    /// Its place in the task's log, from 1.
    pub seq: i64,
    /// Its type (`status`, `text`, `tool_call`, …).
    pub kind: String,
    /// Its payload (JSON).
    pub payload: String,
    /// When it was committed (ms since the epoch).
    pub created_at: i64,
}

/// Insert `events` into a task's log inside the caller's transaction, taking
/// their seqs from the task's counter; the rows (not yet committed).
pub(crate) async fn insert_events(
    conn: &mut sqlx::AnyConnection,
    task_id: &str,
    events: &[(&str, String)],
) -> Result<Vec<EventRow>, StoreError> {
    let mut rows = Vec::with_capacity(events.len());
    if events.is_empty() {
        return Ok(rows);
    }
    let last: Option<i64> = sqlx::query_scalar(
        "UPDATE tasks SET last_seq = last_seq + $2 WHERE id = $1 RETURNING last_seq",
    )
    .bind(task_id)
    .bind(events.len() as i64)
    .fetch_optional(&mut *conn)
    .await?;
    let last = last.ok_or(StoreError::NotFound)?;
    let created_at = now_ms();
    for (i, (kind, payload)) in events.iter().enumerate() {
        rows.push(EventRow {
            task_id: task_id.to_string(),
            seq: last - events.len() as i64 + 1 + i as i64,
            kind: kind.to_string(),
            payload: payload.clone(),
            created_at,
        });
    }
    super::batch::insert(conn, EventRows(&rows.iter().collect::<Vec<_>>())).await?;
    Ok(rows)
}

/// The first events of tasks inserted in this transaction with `last_seq`
/// set to their count, numbered from 1 (insert them with [`EventRows`]).
pub(crate) fn first_events(tasks: &[(&str, &[(&str, String)])]) -> Vec<Vec<EventRow>> {
    let created_at = now_ms();
    tasks
        .iter()
        .map(|(task_id, events)| {
            events
                .iter()
                .zip(1..)
                .map(|((kind, payload), seq)| EventRow {
                    task_id: task_id.to_string(),
                    seq,
                    kind: kind.to_string(),
                    payload: payload.clone(),
                    created_at,
                })
                .collect()
        })
        .collect()
}

/// Event rows for one multi-row insert.
pub(crate) struct EventRows<'a>(pub &'a [&'a EventRow]);

impl RowsInsert for EventRows<'_> {
    const COLUMNS: usize = 5;

    fn head(&self) -> String {
        "INSERT INTO task_events (task_id, seq, kind, payload, created_at) VALUES ".into()
    }

    fn rows(&self) -> usize {
        self.0.len()
    }

    fn bind<'q>(&self, mut query: AnyQuery<'q>) -> AnyQuery<'q> {
        for e in self.0 {
            query = query
                .bind(&e.task_id)
                .bind(e.seq)
                .bind(&e.kind)
                .bind(&e.payload)
                .bind(e.created_at);
        }
        query
    }
}

impl Store {
    /// Append events to a task's log and commit them; the stored rows.
    pub async fn append_events(
        &self,
        task_id: &str,
        events: &[(&str, String)],
    ) -> Result<Vec<EventRow>, StoreError> {
        let mut tx = self.begin_write().await?;
        let rows = insert_events(&mut tx, task_id, events).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Up to `limit` of a task's events after `after`, in order.
    pub async fn events_after(
        &self,
        task_id: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<EventRow>, StoreError> {
        sqlx::query(
            "SELECT task_id, seq, kind, payload, created_at FROM task_events WHERE task_id = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3",
        )
        .bind(task_id)
        .bind(after)
        .bind(limit as i64)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|r| {
            Ok(EventRow {
                task_id: r.try_get("task_id")?,
                seq: r.try_get("seq")?,
                kind: r.try_get("kind")?,
                payload: r.try_get("payload")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
    }

    /// The lowest seq still stored for a task (events before it were pruned),
    /// `None` when it has none.
    pub async fn first_event_seq(&self, task_id: &str) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT MIN(seq) FROM task_events WHERE task_id = $1")
                .bind(task_id)
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// Drop the events of tasks that finished before `before` (ms), keeping
    /// each task's last event; how many went.
    pub async fn prune_events(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM task_events WHERE task_id IN (SELECT id FROM tasks WHERE finished_at IS NOT NULL \
             AND finished_at < $1) AND seq < (SELECT last_seq FROM tasks WHERE tasks.id = task_events.task_id)",
        )
        .bind(before)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }
}
