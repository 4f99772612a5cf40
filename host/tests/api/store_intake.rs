//! The channel intake in the store, on both backends: messages queued at once
//! share transactions yet each is queued once — a delivery id repeated inside
//! one batch or sent again after a restart makes no second task — the owner's
//! open-task limit holds inside a batch (a refused message leaves no dedupe
//! record), and a message that cannot be written fails alone.

use crate::harness::{Backend, fresh_postgres};
use futures_util::future::join_all;
use std::collections::HashMap;
use switchyard::store::{
    ChannelRow, ChannelTask, DeliveryRow, PluginRow, Queued, Role, Store, StoreError, TaskKind,
    TaskRow, TaskStatus, new_id, now_ms,
};

crate::on_both_backends!(
    concurrent_messages_are_each_queued_once,
    the_open_task_limit_holds_inside_a_batch,
    a_message_that_cannot_be_written_fails_alone
);

/// A store with a user, a channel instance and a session.
struct World {
    store: Store,
    url: String,
    owner: String,
    instance: String,
    session: String,
    _dir: tempfile::TempDir,
}

async fn world(backend: Backend) -> World {
    let dir = tempfile::TempDir::new().unwrap();
    let url = match backend {
        Backend::Sqlite => switchyard::store::sqlite_url(dir.path()),
        Backend::Postgres => fresh_postgres().await,
    };
    let store = Store::open(&url).await.expect("open");
    let owner = store.create_user("ops", "x", Role::User).await.unwrap().id;
    let now = now_ms();
    store
        .put_plugin(&PluginRow {
            name: "github".into(),
            version: "0.1.0".into(),
            owner_id: None,
            enabled: true,
            granted: "{}".into(),
            config: "{}".into(),
            installed_at: now,
            updated_at: now,
            revision: 0,
        })
        .await
        .unwrap();
    let instance = new_id();
    store
        .insert_channel(&ChannelRow {
            id: instance.clone(),
            plugin: "github".into(),
            name: "default".into(),
            owner_id: owner.clone(),
            agent_id: None,
            config: "{}".into(),
            enabled: true,
            rate_per_minute: 600,
            created_at: now,
            updated_at: now,
        })
        .await
        .unwrap();
    let session = crate::store_tasks::session(&store, &owner).await;
    World {
        store,
        url,
        owner,
        instance,
        session,
        _dir: dir,
    }
}

impl World {
    /// A message for the world's session with delivery id `key`.
    fn message(&self, key: Option<&str>, max_open: i64) -> ChannelTask {
        let now = now_ms();
        let id = new_id();
        ChannelTask {
            task: TaskRow {
                id: id.clone(),
                kind: TaskKind::Agent,
                input: r#"{"content":"hello"}"#.into(),
                origin: "webhook".into(),
                ..crate::store_tasks::pending_task(&self.session, &self.owner, now)
            },
            events: vec![("status", r#"{"status":"pending"}"#.into())],
            receipt: key.map(|k| (self.instance.clone(), k.to_string())),
            delivery: DeliveryRow {
                id: new_id(),
                task_id: id.clone(),
                instance_id: self.instance.clone(),
                conversation_key: "acme/bench#1".into(),
                reply_target: "acme/bench#1".into(),
                metadata: "[]".into(),
                idempotency_key: format!("switchyard-{id}"),
                state: "waiting".into(),
                attempts: 0,
                next_attempt_at: now,
                last_error: None,
                lease_owner: None,
                lease_until: None,
                created_at: now,
                updated_at: now,
            },
            max_open,
        }
    }

    /// Queue `items` all at once; the outcomes in order.
    async fn queue_all(&self, items: Vec<ChannelTask>) -> Vec<Result<Queued, StoreError>> {
        join_all(
            items
                .into_iter()
                .map(|item| self.store.queue_channel_task(item)),
        )
        .await
    }

    async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&self.raw().await)
            .await
            .unwrap()
    }

    async fn raw(&self) -> sqlx::AnyPool {
        sqlx::AnyPool::connect(&self.url).await.unwrap()
    }
}

async fn concurrent_messages_are_each_queued_once(backend: Backend) {
    let w = world(backend).await;
    // 30 delivery ids, ten of them sent twice in the same burst, and five
    // messages that carry no delivery id.
    let mut keys: Vec<Option<String>> = (0..30).map(|i| Some(format!("d-{i}"))).collect();
    keys.extend((0..10).map(|i| Some(format!("d-{}", i * 3))));
    keys.extend((0..5).map(|_| None));
    let items = keys
        .iter()
        .map(|k| w.message(k.as_deref(), 1_000))
        .collect();
    let outcomes = w.queue_all(items).await;
    let mut task_of: HashMap<String, String> = HashMap::new();
    let mut repeats = Vec::new();
    for (key, outcome) in keys.iter().zip(outcomes) {
        match outcome.expect("queued") {
            Queued::Fresh(task, events) => {
                assert_eq!(task.last_seq, 1);
                assert_eq!(events.len(), 1);
                assert_eq!(
                    (events[0].seq, events[0].task_id.as_str()),
                    (1, task.id.as_str())
                );
                if let Some(k) = key {
                    assert!(
                        task_of.insert(k.clone(), task.id.clone()).is_none(),
                        "{k} was queued twice"
                    );
                }
            }
            Queued::Duplicate(earlier) => repeats.push((key.clone().unwrap(), earlier.unwrap())),
            Queued::Full(n) => panic!("refused at {n} open tasks"),
        }
    }
    assert_eq!(task_of.len(), 30);
    assert_eq!(repeats.len(), 10);
    for (key, earlier) in &repeats {
        assert_eq!(&task_of[key], earlier, "a repeat names the first task");
    }
    assert_eq!(w.count("tasks").await, 35);
    assert_eq!(w.count("task_events").await, 35);
    assert_eq!(w.count("deliveries").await, 35);
    assert_eq!(w.count("channel_receipts").await, 30);
    let stored = w.store.task(&task_of["d-7"]).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.last_seq), (TaskStatus::Pending, 1));
    let next = w
        .store
        .append_events(&stored.id, &[("log", r#"{"line":"next"}"#.into())])
        .await
        .unwrap();
    assert_eq!(next[0].seq, 2, "the log continues after the first event");

    // After a restart the same deliveries are recognized, from the store.
    w.store.close().await;
    let reopened = Store::open(&w.url).await.unwrap();
    let again = join_all(
        (0..30).map(|i| reopened.queue_channel_task(w.message(Some(&format!("d-{i}")), 1_000))),
    )
    .await;
    for (i, outcome) in again.into_iter().enumerate() {
        match outcome.unwrap() {
            Queued::Duplicate(Some(earlier)) => assert_eq!(earlier, task_of[&format!("d-{i}")]),
            other => panic!("d-{i} after a restart: {other:?}"),
        }
    }
    assert_eq!(w.count("tasks").await, 35);
}

async fn the_open_task_limit_holds_inside_a_batch(backend: Backend) {
    let w = world(backend).await;
    let items = (0..12)
        .map(|i| w.message(Some(&format!("k-{i}")), 5))
        .collect();
    let outcomes = w.queue_all(items).await;
    let fresh = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(Queued::Fresh(..))))
        .count();
    let full: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .filter_map(|(i, o)| matches!(o, Ok(Queued::Full(5))).then_some(i))
        .collect();
    assert_eq!((fresh, full.len()), (5, 7), "{outcomes:?}");
    assert_eq!(w.count("tasks").await, 5);
    assert_eq!(
        w.count("channel_receipts").await,
        5,
        "a refused message leaves no dedupe record"
    );
    // The provider's retry of a refused message is queued once there is room.
    let retry = w
        .store
        .queue_channel_task(w.message(Some(&format!("k-{}", full[0])), 10))
        .await
        .unwrap();
    assert!(matches!(retry, Queued::Fresh(..)), "{retry:?}");
}

async fn a_message_that_cannot_be_written_fails_alone(backend: Backend) {
    let w = world(backend).await;
    let mut items: Vec<ChannelTask> = (0..40)
        .map(|i| w.message(Some(&format!("m-{i}")), 1_000))
        .collect();
    items[20].task.session_id = "no-such-session".into();
    let outcomes = w.queue_all(items).await;
    for (i, outcome) in outcomes.iter().enumerate() {
        if i == 20 {
            assert!(
                matches!(outcome, Err(StoreError::Dangling(_))),
                "{outcome:?}"
            );
        } else {
            assert!(matches!(outcome, Ok(Queued::Fresh(..))), "{i}: {outcome:?}");
        }
    }
    assert_eq!(w.count("tasks").await, 39);
    assert_eq!(
        w.count("channel_receipts").await,
        39,
        "the failed message can be sent again"
    );
}
