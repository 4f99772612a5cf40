//! A task's event log as followers see it: committed rows read from the store,
//! then live ones from an in-process fan-out, with no gap and no duplicate.
//!
//! Every event is committed before [`Hub::publish`] is called with it. A
//! follower subscribes to the live fan-out first and reads the store second,
//! so an event committed while it reads is in one of the two; it then skips
//! what it already has (by seq) and fills any hole from the store. The
//! fan-out only carries "this row exists now": across hosts, Postgres
//! `NOTIFY task_events, '<task>:<seq>'` can drive it the same way.

use crate::store::{EventRow, Store, StoreError};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Live events buffered per follower; one that falls further behind reads
/// the rest from the store.
pub const SUBSCRIBER_BUFFER: usize = 1024;

/// Events read from the store per query while catching up.
const PAGE: usize = 500;

/// One event of a task, as every face shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Event {
    /// The task.
    pub task_id: String,
    /// Its place in the task's log: contiguous from 1.
    pub seq: i64,
    /// `status`, `text`, `tool_call`, `tool_result`, `log`, `output`, `error`,
    /// `done`, or `gap` (events a follower asked for were pruned).
    #[serde(rename = "type")]
    pub kind: String,
    /// What happened (shape by type; see docs/tasks.md).
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// When it was committed (ms since the epoch).
    pub time: i64,
}

impl Event {
    /// The event a stored row holds.
    pub fn from_row(row: &EventRow) -> Self {
        Self {
            task_id: row.task_id.clone(),
            seq: row.seq,
            kind: row.kind.clone(),
            data: serde_json::from_str(&row.payload).unwrap_or(serde_json::Value::Null),
            time: row.created_at,
        }
    }

    /// Whether this is the task's last event.
    pub fn is_done(&self) -> bool {
        self.kind == "done"
    }
}

/// News about a session (not part of any task's log): a task was queued in
/// it, or it got a title.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SessionNotice {
    /// A task was queued in the session.
    TaskCreated {
        /// The session.
        session_id: String,
        /// The new task.
        task_id: String,
    },
    /// The session was titled.
    SessionTitle {
        /// The session.
        session_id: String,
        /// Its title.
        title: String,
    },
}

/// The in-process fan-out: one broadcast channel per followed task, and one
/// per followed session for [`SessionNotice`]s.
#[derive(Default)]
pub struct Hub {
    tasks: Mutex<HashMap<String, broadcast::Sender<Arc<Event>>>>,
    sessions: Mutex<HashMap<String, broadcast::Sender<SessionNotice>>>,
}

impl Hub {
    /// Hear about a session's new tasks and title.
    pub fn watch_session(&self, session_id: &str) -> broadcast::Receiver<SessionNotice> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, tx| tx.receiver_count() > 0);
        sessions
            .entry(session_id.to_string())
            .or_insert_with(|| broadcast::channel(256).0)
            .subscribe()
    }

    fn notify_session(&self, session_id: &str, notice: SessionNotice) {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = sessions.get(session_id) {
            let _ = tx.send(notice);
        }
    }

    /// Tell a session's watchers about a new task.
    pub fn task_created(&self, session_id: &str, task_id: &str) {
        self.notify_session(
            session_id,
            SessionNotice::TaskCreated {
                session_id: session_id.into(),
                task_id: task_id.into(),
            },
        );
    }

    /// Tell a session's watchers about its title.
    pub fn session_title(&self, session_id: &str, title: &str) {
        self.notify_session(
            session_id,
            SessionNotice::SessionTitle {
                session_id: session_id.into(),
                title: title.into(),
            },
        );
    }

    /// Tell the task's followers about committed events (in seq order).
    pub fn publish(&self, rows: &[EventRow]) {
        let Some(first) = rows.first() else {
            return;
        };
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tx) = tasks.get(&first.task_id) else {
            return;
        };
        for row in rows {
            let _ = tx.send(Arc::new(Event::from_row(row)));
        }
        metrics::counter!("switchyard_task_events_published_total").increment(rows.len() as u64);
        if tx.receiver_count() == 0 || rows.iter().any(|r| r.kind == "done") {
            tasks.remove(&first.task_id);
        }
    }

    fn subscribe(&self, task_id: &str) -> broadcast::Receiver<Arc<Event>> {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|_, tx| tx.receiver_count() > 0);
        tasks
            .entry(task_id.to_string())
            .or_insert_with(|| broadcast::channel(SUBSCRIBER_BUFFER).0)
            .subscribe()
    }

    /// How many tasks have live followers.
    pub fn followed(&self) -> usize {
        let tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.values().filter(|t| t.receiver_count() > 0).count()
    }
}

/// Why a follow ended early.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A follower of one task's events from a cursor: every event after it, in
/// order, exactly once, ending after `done`.
pub struct Follow {
    store: Store,
    task_id: String,
    live: broadcast::Receiver<Arc<Event>>,
    cursor: i64,
    backlog: std::collections::VecDeque<Event>,
    caught_up: bool,
    gap_checked: bool,
    finished: bool,
}

impl Follow {
    /// Follow `task_id` from after seq `after` (0 for everything).
    pub fn new(hub: &Hub, store: Store, task_id: &str, after: i64) -> Self {
        Self {
            live: hub.subscribe(task_id),
            store,
            task_id: task_id.to_string(),
            cursor: after.max(0),
            backlog: Default::default(),
            caught_up: false,
            gap_checked: false,
            finished: false,
        }
    }

    /// The seq of the last event handed out.
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    /// The next event, `None` after `done`.
    pub async fn next(&mut self) -> Result<Option<Event>, FollowError> {
        loop {
            if let Some(event) = self.backlog.pop_front() {
                return Ok(Some(self.hand_out(event)));
            }
            if self.finished {
                return Ok(None);
            }
            if !self.caught_up {
                self.read_store().await?;
                continue;
            }
            match self.live.recv().await {
                Ok(event) if event.seq <= self.cursor => {}
                Ok(event) if event.seq == self.cursor.saturating_add(1) => {
                    return Ok(Some(self.hand_out(event.as_ref().clone())));
                }
                // A hole (an event published out of order), or live events
                // dropped while this follower was behind: the store has them.
                Ok(_)
                | Err(
                    broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed,
                ) => self.caught_up = false,
            }
        }
    }

    fn hand_out(&mut self, event: Event) -> Event {
        self.cursor = self.cursor.max(event.seq);
        if event.is_done() {
            self.finished = true;
            self.backlog.clear();
        }
        event
    }

    async fn read_store(&mut self) -> Result<(), FollowError> {
        // Only finished tasks are pruned, so one look at the start is enough.
        if !self.gap_checked {
            self.gap_checked = true;
            if let Some(first) = self.store.first_event_seq(&self.task_id).await?
                && first > self.cursor.saturating_add(1)
            {
                self.backlog.push_back(Event {
                    task_id: self.task_id.clone(),
                    seq: first - 1,
                    kind: "gap".into(),
                    data: serde_json::json!({ "from": self.cursor.saturating_add(1), "to": first - 1 }),
                    time: crate::store::now_ms(),
                });
                self.cursor = first - 1;
            }
        }
        let rows = self
            .store
            .events_after(&self.task_id, self.cursor, PAGE)
            .await?;
        self.caught_up = rows.len() < PAGE;
        self.backlog.extend(rows.iter().map(Event::from_row));
        Ok(())
    }
}
