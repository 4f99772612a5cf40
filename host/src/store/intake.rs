//! Channel intake: queueing webhook messages as tasks with group commit.
//!
//! Each message's task, first events, dedupe record and outbox row are written
//! in one transaction, and messages that arrive while one transaction commits
//! wait to share the next: one runner task (spawned when work arrives, gone
//! when the queue is empty) writes up to [`MAX_BATCH`] messages per
//! transaction with one statement per table; on SQLite, where each command is
//! a round trip to the connection's worker thread, those statements go as two
//! commands between BEGIN and COMMIT (the dedupe records with the owners'
//! open-task counts, then every insert). Every caller still gets its own
//! answer only after its rows are committed. When a batch fails, each of its
//! messages is retried in a transaction of its own, so one bad message (its
//! session deleted meanwhile, say) fails alone.
//!
//! The owner's open-task limit is checked inside the transaction, against the
//! tasks already stored plus those the batch queues before it.

use super::batch::{AnyQuery, Inserts};
use super::channels::{DeliveryRow, DeliveryRows};
use super::events::{EventRow, EventRows, first_events};
use super::tasks::{TaskRow, TaskRows};
use super::{Backend, Store, StoreError, now_ms};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::{HashMap, HashSet, VecDeque};
use tokio::sync::oneshot;

/// Most messages one transaction takes.
pub const MAX_BATCH: usize = 64;

/// One channel message's task, ready to queue.
#[derive(Debug, Clone)]
pub struct ChannelTask {
    /// The new task (its `last_seq` is set to the number of `events`).
    pub task: TaskRow,
    /// Its first events (type, JSON payload), numbered from 1.
    pub events: Vec<(&'static str, String)>,
    /// The dedupe record (channel instance, delivery id), when the message has one.
    pub receipt: Option<(String, String)>,
    /// The reply waiting in the outbox for the task to end.
    pub delivery: DeliveryRow,
    /// The owner's limit of pending and running tasks.
    pub max_open: i64,
}

/// What became of a queued channel message.
#[derive(Debug, Clone)]
pub enum Queued {
    /// The task was committed with these first events.
    Fresh(Box<TaskRow>, Vec<EventRow>),
    /// The delivery id was received before (the earlier task's id).
    Duplicate(Option<String>),
    /// The owner already has this many open tasks: nothing was written.
    Full(i64),
}

type Answer = oneshot::Sender<Result<Queued, StoreError>>;

/// Messages waiting for the runner, and whether it runs.
#[derive(Debug, Default)]
pub(crate) struct Intake {
    state: std::sync::Mutex<Waiting>,
}

#[derive(Debug, Default)]
struct Waiting {
    items: VecDeque<(ChannelTask, Answer)>,
    running: bool,
}

impl Intake {
    fn waiting(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Marks the runner stopped if it panics, so the next message starts a new one.
struct Unwedge<'a>(&'a Intake);

impl Drop for Unwedge<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.waiting().running = false;
        }
    }
}

impl Store {
    /// Queue a channel message's task with its first events, dedupe record and
    /// outbox row, all committed together (or none); what became of it.
    pub async fn queue_channel_task(&self, item: ChannelTask) -> Result<Queued, StoreError> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut waiting = self.intake.waiting();
            waiting.items.push_back((item, tx));
            !std::mem::replace(&mut waiting.running, true)
        };
        if start {
            tokio::spawn(self.clone().run_intake());
        }
        rx.await.map_err(|_| {
            StoreError::Database("the channel intake stopped before answering".into())
        })?
    }

    /// Commit waiting messages batch by batch until none is left.
    async fn run_intake(self) {
        let _unwedge = Unwedge(&self.intake);
        loop {
            let batch: Vec<(ChannelTask, Answer)> = {
                let mut waiting = self.intake.waiting();
                if waiting.items.is_empty() {
                    waiting.running = false;
                    return;
                }
                let n = waiting.items.len().min(MAX_BATCH);
                waiting.items.drain(..n).collect()
            };
            let (items, answers): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            metrics::histogram!("switchyard_channel_intake_batch").record(items.len() as f64);
            match self.commit_intake(&items).await {
                Ok(results) => {
                    for (answer, result) in answers.into_iter().zip(results) {
                        let _ = answer.send(Ok(result));
                    }
                }
                Err(e) if items.len() == 1 => {
                    for answer in answers {
                        let _ = answer.send(Err(e.clone()));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, messages = items.len(), "a channel intake batch failed; committing its messages one by one");
                    for (item, answer) in items.iter().zip(answers) {
                        let result = self.commit_intake(std::slice::from_ref(item)).await;
                        let _ = answer.send(result.map(|mut r| r.remove(0)));
                    }
                }
            }
        }
    }

    /// Write `items` in one transaction; one result per item, in order.
    async fn commit_intake(&self, items: &[ChannelTask]) -> Result<Vec<Queued>, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut out: Vec<Option<Queued>> = vec![None; items.len()];
        let mut first_of: HashMap<(&str, &str), usize> = HashMap::new();
        let mut repeat_of: Vec<Option<usize>> = vec![None; items.len()];
        for (i, item) in items.iter().enumerate() {
            if let Some((instance, key)) = &item.receipt {
                match first_of.get(&(instance.as_str(), key.as_str())) {
                    Some(&j) => repeat_of[i] = Some(j),
                    None => {
                        first_of.insert((instance, key), i);
                    }
                }
            }
        }
        let received: Vec<usize> = first_of.values().copied().collect();
        let owners: Vec<&str> = items
            .iter()
            .map(|item| item.task.owner_id.as_str())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let (fresh, mut open) = receive(&mut tx, self.backend(), items, &received, &owners).await?;
        for &i in &received {
            if !fresh.contains(&i) {
                let (instance, key) = items[i].receipt.as_ref().expect("received items have one");
                let task: Option<Option<String>> = sqlx::query_scalar(
                    "SELECT task_id FROM channel_receipts WHERE instance_id = $1 AND delivery_key = $2",
                )
                .bind(instance)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
                out[i] = Some(Queued::Duplicate(task.flatten()));
            }
        }
        let mut accepted = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if out[i].is_some() || repeat_of[i].is_some() {
                continue;
            }
            let count = open.entry(item.task.owner_id.clone()).or_default();
            if *count >= item.max_open {
                out[i] = Some(Queued::Full(*count));
                if let Some((instance, key)) = &item.receipt {
                    sqlx::query(
                        "DELETE FROM channel_receipts WHERE instance_id = $1 AND delivery_key = $2",
                    )
                    .bind(instance)
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
                }
            } else {
                *count += 1;
                accepted.push(i);
            }
        }
        let tasks: Vec<TaskRow> = accepted
            .iter()
            .map(|&i| TaskRow {
                last_seq: items[i].events.len() as i64,
                ..items[i].task.clone()
            })
            .collect();
        let firsts: Vec<(&str, &[(&str, String)])> = accepted
            .iter()
            .map(|&i| (items[i].task.id.as_str(), items[i].events.as_slice()))
            .collect();
        let events = first_events(&firsts);
        let task_refs: Vec<&TaskRow> = tasks.iter().collect();
        let event_refs: Vec<&EventRow> = events.iter().flatten().collect();
        let delivery_refs: Vec<&DeliveryRow> =
            accepted.iter().map(|&i| &items[i].delivery).collect();
        let mut inserts = Inserts::default();
        inserts.push(TaskRows(&task_refs));
        inserts.push(EventRows(&event_refs));
        inserts.push(DeliveryRows(&delivery_refs));
        inserts.run(&mut tx, self.backend()).await?;
        tx.commit().await?;
        for ((i, task), events) in accepted.iter().zip(tasks).zip(events) {
            out[*i] = Some(Queued::Fresh(Box::new(task), events));
        }
        for (i, j) in repeat_of.iter().enumerate() {
            if let Some(j) = j {
                out[i] = Some(match &out[*j] {
                    Some(Queued::Fresh(task, _)) => Queued::Duplicate(Some(task.id.clone())),
                    Some(other) => other.clone(),
                    None => unreachable!("the first of a delivery id is decided first"),
                });
            }
        }
        Ok(out
            .into_iter()
            .map(|r| r.expect("every item is decided"))
            .collect())
    }
}

/// Insert the dedupe records of `items[received]`, skipping those stored
/// before, and read the open-task counts of `owners`: the indexes whose
/// record is new, and each owner's count. On SQLite both statements go as one
/// command.
async fn receive(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    items: &[ChannelTask],
    received: &[usize],
    owners: &[&str],
) -> Result<(HashSet<usize>, HashMap<String, i64>), StoreError> {
    let in_list = super::placeholders(1, owners.len());
    let counts =
        format!("SELECT owner_id, open_tasks FROM task_counts WHERE owner_id IN {in_list}");
    let bind_counts = |mut query: AnyQuery<'static>| {
        for owner in owners {
            query = query.bind(owner.to_string());
        }
        query
    };
    let now = now_ms();
    let receipts = |first: usize| {
        let values = super::placeholders_from(first, received.len(), 4);
        format!(
            "INSERT INTO channel_receipts (instance_id, delivery_key, task_id, received_at) VALUES {values} \
             ON CONFLICT (instance_id, delivery_key) DO NOTHING RETURNING instance_id, delivery_key"
        )
    };
    let bind_receipts = |mut query: AnyQuery<'static>| {
        for &i in received {
            let (instance, key) = items[i].receipt.as_ref().expect("received items have one");
            query = query
                .bind(instance.clone())
                .bind(key.clone())
                .bind(items[i].task.id.clone())
                .bind(now);
        }
        query
    };
    let rows: Vec<AnyRow> = if received.is_empty() {
        bind_counts(sqlx::query(sql!("{counts}")))
            .fetch_all(&mut *conn)
            .await?
    } else if backend == Backend::Sqlite {
        let both = format!("{counts};\n{}", receipts(owners.len()));
        bind_receipts(bind_counts(sqlx::query(sql!("{both}"))))
            .fetch_all(&mut *conn)
            .await?
    } else {
        let mut rows = bind_counts(sqlx::query(sql!("{counts}")))
            .fetch_all(&mut *conn)
            .await?;
        rows.extend(
            bind_receipts(sqlx::query(sql!("{}", receipts(0))))
                .fetch_all(&mut *conn)
                .await?,
        );
        rows
    };
    let mut inserted: HashSet<(String, String)> = HashSet::new();
    let mut open = HashMap::new();
    for row in rows {
        if row.try_column("open_tasks").is_ok() {
            open.insert(row.try_get("owner_id")?, row.try_get("open_tasks")?);
        } else {
            inserted.insert((row.try_get("instance_id")?, row.try_get("delivery_key")?));
        }
    }
    let fresh = received
        .iter()
        .copied()
        .filter(|&i| {
            items[i]
                .receipt
                .as_ref()
                .is_some_and(|r| inserted.contains(r))
        })
        .collect();
    Ok((fresh, open))
}
