//! The task queue in the store, on both backends: claims follow queue order,
//! one running task per session (also against a racing second claim: the
//! unique index), the per-user limit, run_after, leases that expire and are
//! taken over once, events whose seqs are contiguous and whose pruned ranges
//! followers see as a `gap`; each user's open-task count (kept by triggers)
//! follows every insert, claim, wait, finish and delete.

use crate::harness::{Backend, fresh_postgres};
use switchyard::store::{
    ClaimLimits, Finish, Role, SessionRow, Store, TaskKind, TaskRow, TaskStatus, new_id, now_ms,
};
use switchyard::tasks::{Follow, Hub};

crate::on_both_backends!(
    claims_follow_the_rules,
    events_are_contiguous_and_gaps_are_explicit,
    open_task_counts_follow_every_change
);

async fn open(backend: Backend, dir: &std::path::Path) -> Store {
    let url = match backend {
        Backend::Sqlite => switchyard::store::sqlite_url(dir),
        Backend::Postgres => fresh_postgres().await,
    };
    Store::open(&url).await.expect("open")
}

/// A new empty session of `owner`; its id.
pub(crate) async fn session(store: &Store, owner: &str) -> String {
    let now = now_ms();
    let s = SessionRow {
        id: new_id(),
        owner_id: owner.into(),
        agent_id: None,
        title: String::new(),
        instructions: String::new(),
        provider: None,
        model: None,
        skills: "[]".into(),
        busy_policy: "queue".into(),
        sandbox_id: None,
        archived: false,
        created_at: now,
        updated_at: now,
    };
    store.insert_session(&s).await.unwrap();
    s.id
}

/// A pending exec task row of `owner` in `session`, not yet stored.
pub(crate) fn pending_task(session: &str, owner: &str, run_after: i64) -> TaskRow {
    let now = now_ms();
    TaskRow {
        id: new_id(),
        session_id: session.into(),
        owner_id: owner.into(),
        kind: TaskKind::Exec,
        input: "{}".into(),
        status: TaskStatus::Pending,
        result: None,
        error_code: None,
        error_message: None,
        attempt: 0,
        origin: "rest".into(),
        queued_at: now,
        started_at: None,
        finished_at: None,
        run_after,
        lease_owner: None,
        lease_until: None,
        cancel_requested: false,
        last_seq: 0,
        state: "{}".into(),
        input_tokens: 0,
        output_tokens: 0,
    }
}

async fn task(store: &Store, session: &str, owner: &str, run_after: i64) -> String {
    let t = pending_task(session, owner, run_after);
    let rows = store
        .insert_task(&t, &[("status", r#"{"status":"pending"}"#.into())])
        .await
        .unwrap();
    assert_eq!(rows[0].seq, 1);
    t.id
}

fn limits(per_user: i64, lease_ms: i64) -> ClaimLimits {
    ClaimLimits { per_user, lease_ms }
}

async fn claim(store: &Store, holder: &str, l: ClaimLimits) -> Option<TaskRow> {
    store
        .claim_task(holder, l, |_| ("status", r#"{"status":"running"}"#.into()))
        .await
        .unwrap()
        .map(|(t, rows)| {
            assert_eq!(rows[0].seq, t.last_seq);
            t
        })
}

/// Users alice and bob; their ids.
async fn two_users(store: &Store) -> (String, String) {
    let alice = store.create_user("alice", "x", Role::User).await.unwrap();
    let bob = store.create_user("bob", "x", Role::User).await.unwrap();
    (alice.id, bob.id)
}

async fn claims_follow_the_rules(backend: Backend) {
    let dir = tempfile::TempDir::new().unwrap();
    let store = open(backend, dir.path()).await;
    let (alice, bob) = two_users(&store).await;
    let s1 = session(&store, &alice).await;
    let s2 = session(&store, &alice).await;
    let s3 = session(&store, &bob).await;
    let a1 = task(&store, &s1, &alice, 0).await;
    let a2 = task(&store, &s1, &alice, 0).await;
    let later = task(&store, &s2, &alice, now_ms() + 60_000).await;
    let b1 = task(&store, &s3, &bob, 0).await;
    // Oldest first; the second task of s1 waits for the first; s2's waits for run_after.
    let first = claim(&store, "h1", limits(10, 30_000)).await.unwrap();
    assert_eq!(first.id, a1);
    assert_eq!(first.status, TaskStatus::Running);
    assert_eq!(first.attempt, 1);
    assert_eq!(first.lease_owner.as_deref(), Some("h1"));
    let second = claim(&store, "h2", limits(10, 30_000)).await.unwrap();
    assert_eq!(
        second.id, b1,
        "a2 waits for a1 (same session), `later` for its run_after"
    );
    assert!(claim(&store, "h1", limits(10, 30_000)).await.is_none());
    // A racing claim cannot make a second active task in a session.
    let forced = store
        .move_task(&a2, TaskStatus::Pending, TaskStatus::Running, None, &[])
        .await;
    assert!(
        forced.is_err(),
        "the unique index refuses a second running task in s1"
    );
    // Finish a1: a2 becomes claimable.
    let done = Finish {
        status: TaskStatus::Completed,
        from: Some(TaskStatus::Running),
        result: Some("{}"),
        error_code: None,
        error_message: None,
    };
    assert!(store.finish_task(&a1, &done, &[]).await.unwrap().is_some());
    assert!(
        store.finish_task(&a1, &done, &[]).await.unwrap().is_none(),
        "once only"
    );
    let _ = later;
    let next = claim(&store, "h1", limits(10, 30_000)).await.unwrap();
    assert_eq!(next.id, a2);
    // The per-user limit: alice runs a2, so with a limit of 1 her next task waits.
    let s4 = session(&store, &alice).await;
    let x = task(&store, &s4, &alice, 0).await;
    assert!(claim(&store, "h1", limits(1, 30_000)).await.is_none());
    assert_eq!(claim(&store, "h1", limits(2, 30_000)).await.unwrap().id, x);
    // An expired lease is taken over by exactly one holder.
    let short = task(&store, &s3, &bob, 0).await;
    assert!(store.finish_task(&b1, &done, &[]).await.unwrap().is_some());
    let c = claim(&store, "dead", limits(10, -1)).await.unwrap();
    assert_eq!(c.id, short);
    let expired = store.expired_tasks().await.unwrap();
    assert!(expired.iter().any(|t| t.id == short));
    assert!(store.take_expired(&short, "h1", 30_000).await.unwrap());
    assert!(!store.take_expired(&short, "h2", 30_000).await.unwrap());
    // Leases renew; a cancel request shows up on renewal.
    store.request_cancel(&short).await.unwrap();
    let canceled = store.renew_leases("h1", 30_000).await.unwrap();
    assert_eq!(canceled, vec![short.clone()]);
}

async fn events_are_contiguous_and_gaps_are_explicit(backend: Backend) {
    let dir = tempfile::TempDir::new().unwrap();
    let store = open(backend, dir.path()).await;
    let alice = store
        .create_user("alice", "x", Role::User)
        .await
        .unwrap()
        .id;
    let s = session(&store, &alice).await;
    let t = task(&store, &s, &alice, 0).await;
    // Appends from many tasks at once: each one's seqs stay contiguous.
    let mut handles = Vec::new();
    for i in 0..4 {
        let (store, t) = (store.clone(), t.clone());
        handles.push(tokio::spawn(async move {
            for j in 0..10 {
                store
                    .append_events(&t, &[("log", format!(r#"{{"writer":{i},"n":{j}}}"#))])
                    .await
                    .unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let all = store.events_after(&t, 0, 1000).await.unwrap();
    let seqs: Vec<i64> = all.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=41).collect::<Vec<_>>());
    let hub = Hub::default();
    let mut f = Follow::new(&hub, store.clone(), &t, 38);
    assert_eq!(f.next().await.unwrap().unwrap().seq, 39);
    // Finish long ago and prune: a follower from the start gets a gap, then what is kept.
    let done = Finish {
        status: TaskStatus::Completed,
        from: None,
        result: None,
        error_code: None,
        error_message: None,
    };
    let rows = store
        .finish_task(&t, &done, &[("done", r#"{"status":"completed"}"#.into())])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rows[0].seq, 42);
    assert!(store.prune_events(now_ms() + 1).await.unwrap() >= 41);
    let mut f = Follow::new(&hub, store.clone(), &t, 0);
    let gap = f.next().await.unwrap().unwrap();
    assert_eq!(gap.kind, "gap");
    assert_eq!(gap.data, serde_json::json!({ "from": 1, "to": 41 }));
    let last = f.next().await.unwrap().unwrap();
    assert_eq!((last.seq, last.kind.as_str()), (42, "done"));
    assert!(
        f.next().await.unwrap().is_none(),
        "a follow ends after done"
    );
}

async fn open_task_counts_follow_every_change(backend: Backend) {
    let dir = tempfile::TempDir::new().unwrap();
    let store = open(backend, dir.path()).await;
    let (alice, bob) = two_users(&store).await;
    assert_eq!(store.user_open_tasks(&alice).await.unwrap(), 0);
    let s1 = session(&store, &alice).await;
    let s2 = session(&store, &alice).await;
    let a1 = task(&store, &s1, &alice, 0).await;
    let a2 = task(&store, &s2, &alice, 0).await;
    let s3 = session(&store, &bob).await;
    task(&store, &s3, &bob, 0).await;
    assert_eq!(store.user_open_tasks(&alice).await.unwrap(), 2);
    assert_eq!(store.user_open_tasks(&bob).await.unwrap(), 1);
    // Claimed (running) stays open; waiting for input does not count.
    let running = claim(&store, "h1", limits(10, 30_000)).await.unwrap();
    assert_eq!(running.id, a1);
    assert_eq!(store.user_open_tasks(&alice).await.unwrap(), 2);
    store
        .move_task(
            &a1,
            TaskStatus::Running,
            TaskStatus::InputRequired,
            None,
            &[],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.user_open_tasks(&alice).await.unwrap(), 1);
    store
        .move_task(
            &a1,
            TaskStatus::InputRequired,
            TaskStatus::Pending,
            None,
            &[],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.user_open_tasks(&alice).await.unwrap(), 2);
    let done = Finish {
        status: TaskStatus::Canceled,
        from: None,
        result: None,
        error_code: None,
        error_message: None,
    };
    store.finish_task(&a2, &done, &[]).await.unwrap().unwrap();
    assert!(store.finish_task(&a2, &done, &[]).await.unwrap().is_none());
    assert_eq!(store.user_open_tasks(&alice).await.unwrap(), 1);
    // Deleting a session deletes its tasks; deleting a user, all of theirs.
    store.delete_session(&s1).await.unwrap();
    assert_eq!(store.user_open_tasks(&alice).await.unwrap(), 0);
    store.delete_user(&bob).await.unwrap();
    assert_eq!(store.user_open_tasks(&bob).await.unwrap(), 0);
}
