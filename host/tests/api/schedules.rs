//! Schedules on both backends. With an injectable clock (a second scheduler
//! on the server's store and task queue, its time set by the test; the
//! slots lie in 2027, where the server's own scheduler never looks): cron in
//! Europe/Berlin across the spring-forward and fall-back changes, three hours
//! of downtime on an hourly schedule (one run under `latest`, three under
//! `all`), a restart and a racing second host between runs (no double run),
//! every overlap policy, once triggers and jitter. Over REST: create, preview,
//! read, change, pause, resume, history and delete, two tenants, bad input,
//! and a schedule that really runs an exec task in the sandbox.

use crate::harness::{Backend, Server};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use switchyard::schedules::{NewSchedule, Schedules};
use switchyard::tasks::Caller;

crate::on_both_backends!(
    cron_follows_the_time_zone_across_both_dst_changes,
    downtime_is_caught_up_by_policy_and_never_twice,
    overlap_policies_decide_against_the_previous_run,
    once_and_jitter_runs_start_when_due,
    schedules_over_rest_with_two_tenants_and_bad_input,
    a_schedule_runs_an_exec_task_in_the_sandbox
);

fn ms(text: &str) -> i64 {
    text.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

/// A scheduler on `server`'s store whose clock the test sets.
struct Manual {
    clock: Arc<AtomicI64>,
    schedules: Arc<Schedules>,
    admin: Caller,
}

impl Manual {
    async fn new(server: &Server, at: &str) -> Self {
        let clock = Arc::new(AtomicI64::new(ms(at)));
        let read = clock.clone();
        let schedules = Schedules::new(
            server.services.store.clone(),
            Some(server.services.tasks.clone()),
            &server.services.config,
            Arc::new(move || read.load(Ordering::SeqCst)),
        );
        let admin_id = server.admin.get("/api/v1/auth/me").await.body["user"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        Self {
            clock,
            schedules,
            admin: Caller {
                user_id: admin_id,
                admin: true,
            },
        }
    }

    fn set(&self, at: &str) {
        self.clock.store(ms(at), Ordering::SeqCst);
    }

    async fn create(&self, spec: Value) -> String {
        let req: NewSchedule = serde_json::from_value(spec).unwrap();
        self.schedules.create(&self.admin, req).await.unwrap().id
    }

    /// Run a pass at `at`; how many runs started.
    async fn tick(&self, at: &str) -> usize {
        self.set(at);
        self.schedules.tick().await.unwrap().started
    }

    async fn runs(&self, id: &str) -> Vec<switchyard::schedules::Run> {
        let mut runs = self
            .schedules
            .runs(&self.admin, id, None, 500)
            .await
            .unwrap();
        runs.reverse();
        runs
    }

    async fn started_slots(&self, id: &str) -> Vec<String> {
        self.runs(id)
            .await
            .into_iter()
            .filter(|r| r.state == "started")
            .map(|r| r.slot)
            .collect()
    }
}

/// Tasks never start: a run's task stays `pending`, so it is still running
/// for the overlap policies until the test cancels it.
async fn held_server(backend: Backend) -> Server {
    Server::start_with(backend, |c| c.tasks.max_running = 0).await
}

fn exec(command: &str) -> Value {
    json!({ "kind": "exec", "input": { "command": command } })
}

async fn cron_follows_the_time_zone_across_both_dst_changes(backend: Backend) {
    let server = held_server(backend).await;
    let m = Manual::new(&server, "2027-03-26T12:00:00Z").await;
    let daily = json!({ "type": "cron", "expression": "30 2 * * *", "timezone": "Europe/Berlin" });
    let spring = m
        .create(json!({ "name": "spring", "trigger": daily, "task": exec("true"), "overlap": "allow_all", "catchup": "none" }))
        .await;
    let view = m.schedules.get(&m.admin, &spring).await.unwrap();
    assert_eq!(
        view.next_runs[..3],
        [
            "2027-03-27T02:30:00+01:00",
            "2027-03-28T03:00:00+02:00",
            "2027-03-29T02:30:00+02:00"
        ]
    );
    assert_eq!(m.tick("2027-03-27T01:29:59Z").await, 0);
    assert_eq!(m.tick("2027-03-27T01:30:00Z").await, 1);
    assert_eq!(m.tick("2027-03-28T00:59:59Z").await, 0);
    assert_eq!(
        m.tick("2027-03-28T01:00:00Z").await,
        1,
        "03:00 CEST, right after the gap"
    );
    assert_eq!(m.tick("2027-03-29T00:30:00Z").await, 1);
    assert_eq!(
        m.started_slots(&spring).await,
        [
            "2027-03-27T02:30:00+01:00",
            "2027-03-28T03:00:00+02:00",
            "2027-03-29T02:30:00+02:00"
        ]
    );
    m.schedules.delete(&m.admin, &spring).await.unwrap();

    m.set("2027-10-29T12:00:00Z");
    let fall = m
        .create(json!({ "name": "fall", "trigger": daily, "task": exec("true"), "overlap": "allow_all", "catchup": "none" }))
        .await;
    assert_eq!(m.tick("2027-10-30T00:30:00Z").await, 1);
    assert_eq!(
        m.tick("2027-10-31T00:30:00Z").await,
        1,
        "02:30 CEST, the first pass"
    );
    assert_eq!(
        m.tick("2027-10-31T01:30:00Z").await,
        0,
        "02:30 CET again: not twice"
    );
    assert_eq!(m.tick("2027-11-01T01:30:00Z").await, 1);
    assert_eq!(
        m.started_slots(&fall).await,
        [
            "2027-10-30T02:30:00+02:00",
            "2027-10-31T02:30:00+02:00",
            "2027-11-01T02:30:00+01:00"
        ]
    );
    // An hourly pattern runs every real hour: 25 on the fall-back day.
    m.set("2027-10-30T22:00:00Z");
    let preview = m
        .schedules
        .preview(
            &serde_json::from_value(
                json!({ "type": "cron", "expression": "0 * * * *", "timezone": "Europe/Berlin" }),
            )
            .unwrap(),
            26,
        )
        .unwrap();
    assert_eq!(preview[0], "2027-10-31T00:00:00+02:00");
    assert_eq!(preview[2], "2027-10-31T02:00:00+02:00");
    assert_eq!(preview[3], "2027-10-31T02:00:00+01:00");
    assert_eq!(preview[25], "2027-11-01T00:00:00+01:00");
    server.stop().await;
}

async fn downtime_is_caught_up_by_policy_and_never_twice(backend: Backend) {
    let server = held_server(backend).await;
    let m = Manual::new(&server, "2027-05-01T09:30:00Z").await;
    let hourly = |name: &str, catchup: &str| {
        json!({ "name": name, "trigger": { "type": "interval", "every_secs": 3600, "start_at": "2027-05-01T10:00:00Z" },
                "task": exec("true"), "overlap": "allow_all", "catchup": catchup })
    };
    let latest = m.create(hourly("latest", "latest")).await;
    let all = m.create(hourly("all", "all")).await;
    let none = m.create(hourly("none", "none")).await;
    assert_eq!(m.tick("2027-05-01T10:00:05Z").await, 3);
    // Down from 10:30 to 13:30: the 11:00, 12:00 and 13:00 runs were missed.
    assert_eq!(m.tick("2027-05-01T13:30:00Z").await, 1 + 3);
    assert_eq!(
        m.started_slots(&latest).await,
        ["2027-05-01T10:00:00+00:00", "2027-05-01T13:00:00+00:00"]
    );
    assert_eq!(
        m.started_slots(&all).await,
        [
            "2027-05-01T10:00:00+00:00",
            "2027-05-01T11:00:00+00:00",
            "2027-05-01T12:00:00+00:00",
            "2027-05-01T13:00:00+00:00"
        ]
    );
    assert_eq!(m.started_slots(&none).await, ["2027-05-01T10:00:00+00:00"]);
    let missed = m.runs(&none).await;
    assert_eq!(missed.last().unwrap().state, "missed");
    assert!(
        missed
            .last()
            .unwrap()
            .reason
            .as_deref()
            .unwrap()
            .contains("3 run(s)")
    );
    let latest_runs = m.runs(&latest).await;
    assert!(
        latest_runs
            .iter()
            .any(|r| r.state == "missed" && r.slot == "2027-05-01T12:00:00+00:00")
    );

    // A restart between two runs, and a second host racing the first: each
    // slot is decided once.
    let restarted = Manual::new(&server, "2027-05-01T13:30:00Z").await;
    assert_eq!(
        restarted.tick("2027-05-01T13:30:01Z").await,
        0,
        "nothing is due twice"
    );
    m.set("2027-05-01T14:00:00Z");
    restarted.set("2027-05-01T14:00:00Z");
    let (a, b) = tokio::join!(m.schedules.tick(), restarted.schedules.tick());
    assert_eq!(
        a.unwrap().started + b.unwrap().started,
        3,
        "three schedules, one run each"
    );
    for id in [&latest, &all, &none] {
        let slots = m.started_slots(id).await;
        let mut unique = slots.clone();
        unique.dedup();
        assert_eq!(slots, unique, "{slots:?}");
        assert_eq!(slots.last().unwrap(), "2027-05-01T14:00:00+00:00");
    }
    // Every started run has its own task, in the store, from the schedule.
    let runs = m.runs(&all).await;
    let mut tasks: Vec<String> = runs.iter().filter_map(|r| r.task_id.clone()).collect();
    assert_eq!(tasks.len(), 5);
    tasks.sort();
    tasks.dedup();
    assert_eq!(tasks.len(), 5);
    let task = server
        .admin
        .get(&format!("/api/v1/tasks/{}", tasks[0]))
        .await;
    assert_eq!(task.body["origin"], "schedule", "{}", task.body);
    server.stop().await;
}

async fn overlap_policies_decide_against_the_previous_run(backend: Backend) {
    let server = held_server(backend).await;
    let m = Manual::new(&server, "2027-06-01T09:30:00Z").await;
    let mut ids = Vec::new();
    for policy in [
        "skip",
        "buffer_one",
        "buffer_all",
        "cancel_other",
        "allow_all",
    ] {
        let id = m
            .create(json!({ "name": policy, "trigger": { "type": "interval", "every_secs": 3600, "start_at": "2027-06-01T10:00:00Z" },
                            "task": exec("true"), "overlap": policy }))
            .await;
        ids.push(id);
    }
    assert_eq!(m.tick("2027-06-01T10:00:00Z").await, 5);
    // The first runs never start (max_running = 0): they are still running.
    assert_eq!(
        m.tick("2027-06-01T11:00:00Z").await,
        2,
        "cancel_other and allow_all start"
    );
    assert_eq!(m.tick("2027-06-01T12:00:00Z").await, 2);
    let states = |runs: Vec<switchyard::schedules::Run>| {
        runs.into_iter().map(|r| r.state).collect::<Vec<_>>()
    };
    assert_eq!(
        states(m.runs(&ids[0]).await),
        ["started", "skipped", "skipped"]
    );
    assert_eq!(
        states(m.runs(&ids[1]).await),
        ["started", "buffered", "skipped"]
    );
    assert_eq!(
        states(m.runs(&ids[2]).await),
        ["started", "buffered", "buffered"]
    );
    assert_eq!(
        states(m.runs(&ids[3]).await),
        ["started", "started", "started"]
    );
    assert_eq!(
        states(m.runs(&ids[4]).await),
        ["started", "started", "started"]
    );
    let status = |id: Option<String>| {
        let admin = server.admin.clone();
        async move {
            admin
                .get(&format!("/api/v1/tasks/{}", id.unwrap()))
                .await
                .body["status"]
                .clone()
        }
    };
    let cancel_other = m.runs(&ids[3]).await;
    assert_eq!(status(cancel_other[0].task_id.clone()).await, "canceled");
    assert_eq!(status(cancel_other[1].task_id.clone()).await, "canceled");
    assert_eq!(status(cancel_other[2].task_id.clone()).await, "pending");
    let allow_all = m.runs(&ids[4]).await;
    assert_eq!(status(allow_all[0].task_id.clone()).await, "pending");
    // When the run before a buffered one ends, the buffered one starts.
    for id in &ids[1..3] {
        let first = m.runs(id).await[0].task_id.clone().unwrap();
        let r = server
            .admin
            .post(&format!("/api/v1/tasks/{first}/cancel"), json!({}))
            .await;
        assert_eq!(r.status, 202, "{}", r.body);
    }
    // Either scheduler (the server's own hears the task end) starts them.
    let settled = |id: String, want: &'static [&'static str]| {
        let m = &m;
        async move {
            for _ in 0..100 {
                m.tick("2027-06-01T12:10:00Z").await;
                if states(m.runs(&id).await) == want {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("{id}: {:?}", m.runs(&id).await);
        }
    };
    settled(ids[1].clone(), &["started", "started", "skipped"]).await;
    settled(ids[2].clone(), &["started", "started", "buffered"]).await;
    let second = m.runs(&ids[2]).await[1].task_id.clone().unwrap();
    server
        .admin
        .post(&format!("/api/v1/tasks/{second}/cancel"), json!({}))
        .await;
    settled(ids[2].clone(), &["started", "started", "started"]).await;
    let runs = m.runs(&ids[2]).await;
    assert!(
        runs.iter()
            .all(|r| r.reason.is_none() && r.task_id.is_some()),
        "{runs:?}"
    );
    server.stop().await;
}

async fn once_and_jitter_runs_start_when_due(backend: Backend) {
    let server = held_server(backend).await;
    let m = Manual::new(&server, "2027-07-01T09:00:00Z").await;
    let once = m
        .create(json!({ "name": "once", "trigger": { "type": "once", "at": "2027-07-01T12:00:00+02:00" }, "task": exec("true") }))
        .await;
    assert_eq!(m.tick("2027-07-01T09:59:59Z").await, 0);
    assert_eq!(m.tick("2027-07-01T10:00:00Z").await, 1);
    assert_eq!(m.tick("2027-07-02T10:00:00Z").await, 0);
    let view = m.schedules.get(&m.admin, &once).await.unwrap();
    assert_eq!(view.state, "done");
    assert!(view.next_runs.is_empty());
    let resumed = m.schedules.set_paused(&m.admin, &once, false).await;
    assert!(resumed.unwrap_err().to_string().contains("once"));

    m.set("2027-07-02T09:30:00Z");
    let jittered = m
        .create(json!({ "name": "jitter", "trigger": { "type": "interval", "every_secs": 3600, "start_at": "2027-07-02T10:00:00Z" },
                        "task": exec("true"), "jitter_secs": 1800 }))
        .await;
    let due = m
        .schedules
        .get(&m.admin, &jittered)
        .await
        .unwrap()
        .next_due_at
        .unwrap();
    let slot = ms("2027-07-02T10:00:00Z");
    assert!((slot..slot + 1_800_000).contains(&due), "{due}");
    m.clock.store(due - 1, Ordering::SeqCst);
    if due > slot {
        assert_eq!(
            m.schedules.tick().await.unwrap().started,
            0,
            "not before its jitter"
        );
    }
    m.clock.store(due, Ordering::SeqCst);
    assert_eq!(m.schedules.tick().await.unwrap().started, 1);
    let run = &m.runs(&jittered).await[0];
    assert_eq!((run.slot_ms, run.due_at), (slot, due));
    server.stop().await;
}

async fn schedules_over_rest_with_two_tenants_and_bad_input(backend: Backend) {
    let server = Server::start(backend).await;
    let (alice, _) = server.user("alice", "user").await;
    let (bob, _) = server.user("bob", "user").await;
    let spec = json!({
        "name": "weekday standup",
        "trigger": { "type": "cron", "expression": "0 9 * * MON-FRI", "timezone": "America/New_York" },
        "task": { "kind": "agent", "input": { "content": "Summarize yesterday's work" } },
        "catchup": "none", "jitter_secs": 30
    });
    let created = alice.post("/api/v1/schedules", spec.clone()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(created.body["state"], "active");
    assert_eq!(created.body["overlap"], "skip");
    assert_eq!(created.body["next_runs"].as_array().unwrap().len(), 5);
    let first = created.body["next_runs"][0].as_str().unwrap();
    assert!(first.contains("T09:00:00-0"), "{first}");
    assert!(
        created.body["description"]
            .as_str()
            .unwrap()
            .contains("America/New_York")
    );
    assert_eq!(
        alice.post("/api/v1/schedules", spec.clone()).await.status,
        409
    );

    let preview = alice
        .post("/api/v1/schedules/preview", json!({ "trigger": { "type": "cron", "expression": "@daily", "timezone": "Asia/Tokyo" }, "count": 3 }))
        .await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert_eq!(preview.body["next_runs"].as_array().unwrap().len(), 3);
    assert!(
        preview.body["next_runs"][0]
            .as_str()
            .unwrap()
            .ends_with("T00:00:00+09:00")
    );

    // Two tenants: bob neither sees nor touches alice's schedule.
    assert_eq!(
        bob.get(&format!("/api/v1/schedules/{id}")).await.status,
        404
    );
    assert_eq!(
        bob.delete(&format!("/api/v1/schedules/{id}")).await.status,
        404
    );
    assert_eq!(
        bob.post(&format!("/api/v1/schedules/{id}/pause"), json!({}))
            .await
            .status,
        404
    );
    assert_eq!(
        bob.get(&format!("/api/v1/schedules/{id}/runs"))
            .await
            .status,
        404
    );
    assert!(
        bob.get("/api/v1/schedules").await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        bob.get("/api/v1/schedules?all=true").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        server.admin.get("/api/v1/schedules?all=true").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(server.anon().get("/api/v1/schedules").await.status, 401);
    let session = alice.post("/api/v1/sessions", json!({})).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut into_alices = spec.clone();
    into_alices["name"] = "intruder".into();
    into_alices["session_id"] = session.clone().into();
    assert_eq!(bob.post("/api/v1/schedules", into_alices).await.status, 404);

    let patched = alice
        .patch(&format!("/api/v1/schedules/{id}"), json!({ "trigger": { "type": "interval", "every_secs": 7200 }, "overlap": "buffer_one" }))
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["overlap"], "buffer_one");
    assert_eq!(patched.body["description"], "Every 2 hour(s)");
    let paused = alice
        .post(&format!("/api/v1/schedules/{id}/pause"), json!({}))
        .await;
    assert_eq!(
        (paused.status, paused.body["state"].as_str()),
        (200, Some("paused"))
    );
    assert!(paused.body["next_runs"].as_array().unwrap().is_empty());
    assert!(paused.body["next_due_at"].is_null());
    let resumed = alice
        .post(&format!("/api/v1/schedules/{id}/resume"), json!({}))
        .await;
    assert_eq!(
        (resumed.status, resumed.body["state"].as_str()),
        (200, Some("active"))
    );
    let runs = alice.get(&format!("/api/v1/schedules/{id}/runs")).await;
    assert_eq!(
        (runs.status, runs.body["items"].as_array().map(Vec::len)),
        (200, Some(0))
    );

    // Bad input: a clear 4xx each, and nothing stored.
    let bad = |trigger: Value| json!({ "name": "bad", "trigger": trigger, "task": { "kind": "exec", "input": { "command": "true" } } });
    for (body, status, needle) in [
        (
            bad(json!({ "type": "cron", "expression": "61 * * * *", "timezone": "UTC" })),
            422,
            "not a cron expression",
        ),
        (
            bad(json!({ "type": "cron", "expression": "* * * * * *", "timezone": "UTC" })),
            422,
            "five fields",
        ),
        (
            bad(json!({ "type": "cron", "expression": "0 9 * * *", "timezone": "Mars/Base" })),
            422,
            "IANA",
        ),
        (
            bad(json!({ "type": "cron", "expression": "0 9 * * *" })),
            400,
            "timezone",
        ),
        (
            bad(json!({ "type": "interval", "every_secs": 59 })),
            422,
            "below 60",
        ),
        (
            bad(json!({ "type": "interval", "every_secs": 1.5 })),
            400,
            "whole number",
        ),
        (
            bad(json!({ "type": "once", "at": "2020-01-01T00:00:00Z" })),
            422,
            "past",
        ),
        (
            bad(json!({ "type": "once", "at": "next tuesday" })),
            422,
            "RFC 3339",
        ),
        (bad(json!({ "type": "weekly" })), 400, "unknown variant"),
        (
            json!({ "name": "", "trigger": { "type": "interval", "every_secs": 60 }, "task": exec("true") }),
            422,
            "name",
        ),
        (
            json!({ "name": "x".repeat(101), "trigger": { "type": "interval", "every_secs": 60 }, "task": exec("true") }),
            422,
            "name",
        ),
        (
            json!({ "name": "t", "trigger": { "type": "interval", "every_secs": 60 }, "task": { "kind": "agent", "input": { "content": " " } } }),
            400,
            "content",
        ),
        (
            json!({ "name": "t", "trigger": { "type": "interval", "every_secs": 60 }, "task": exec("true"), "jitter_secs": 99999 }),
            422,
            "jitter_secs",
        ),
        (
            json!({ "name": "t", "trigger": { "type": "interval", "every_secs": 60 }, "task": exec("true"), "session_id": session.clone(), "agent_id": "a" }),
            422,
            "not both",
        ),
        (
            json!({ "name": "t", "trigger": { "type": "interval", "every_secs": 60 }, "task": exec("true"), "colour": "red" }),
            400,
            "unknown field",
        ),
    ] {
        let r = alice.post("/api/v1/schedules", body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert!(r.body.to_string().contains(needle), "{needle}: {}", r.body);
    }
    let too_big = crate::bad_input::raw_http(
        &server.base,
        &format!(
            "POST /api/v1/schedules HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            alice.token.as_deref().unwrap(),
            3 << 20
        ),
    )
    .await;
    assert!(too_big.starts_with("HTTP/1.1 413"), "{too_big}");
    let big_input = json!({ "name": "big", "trigger": { "type": "interval", "every_secs": 60 },
                            "task": { "kind": "agent", "input": { "content": "x".repeat(1 << 20) } } });
    assert_eq!(
        alice.post("/api/v1/schedules", big_input).await.status,
        413,
        "above [tasks] max_input_bytes"
    );
    assert_eq!(
        alice.get("/api/v1/schedules").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        alice
            .get(&format!("/api/v1/schedules/{}", "z".repeat(300)))
            .await
            .status,
        404
    );

    assert_eq!(
        alice
            .delete(&format!("/api/v1/schedules/{id}"))
            .await
            .status,
        204
    );
    assert_eq!(
        alice.get(&format!("/api/v1/schedules/{id}")).await.status,
        404
    );
    let audit = server
        .admin
        .get("/api/v1/audit?action=schedule.create")
        .await;
    assert!(
        audit.body.to_string().contains("schedule.create"),
        "{}",
        audit.body
    );
    server.stop().await;
}

async fn a_schedule_runs_an_exec_task_in_the_sandbox(backend: Backend) {
    let server = Server::start_with(backend, |c| {
        c.schedules.min_interval_secs = 1;
        c.schedules.poll_secs = 1;
    })
    .await;
    let session = server.admin.post("/api/v1/sessions", json!({})).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let created = server
        .admin
        .post("/api/v1/schedules", json!({ "name": "tick", "trigger": { "type": "interval", "every_secs": 1 },
                                            "task": exec("echo scheduled-run"), "session_id": session }))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let task = loop {
        let runs = server
            .admin
            .get(&format!("/api/v1/schedules/{id}/runs"))
            .await;
        let done = runs.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["task_status"] == "completed")
            .cloned();
        if let Some(run) = done {
            break run["task_id"].as_str().unwrap().to_string();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no run completed: {}",
            runs.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    server
        .admin
        .post(&format!("/api/v1/schedules/{id}/pause"), json!({}))
        .await;
    let t = server.admin.get(&format!("/api/v1/tasks/{task}")).await;
    assert_eq!(t.body["session_id"], session.as_str());
    assert_eq!(t.body["origin"], "schedule");
    let events = server
        .admin
        .get(&format!("/api/v1/tasks/{task}/events"))
        .await;
    assert!(
        events.body.to_string().contains("scheduled-run"),
        "{}",
        events.body
    );
    // Runs that fell due while one ran were skipped (overlap `skip`), never doubled.
    let runs = server
        .admin
        .get(&format!("/api/v1/schedules/{id}/runs?limit=500"))
        .await;
    let items = runs.body["items"].as_array().unwrap();
    let mut slots: Vec<i64> = items
        .iter()
        .map(|r| r["slot_ms"].as_i64().unwrap())
        .collect();
    slots.dedup();
    assert_eq!(slots.len(), items.len());
    server.stop().await;
}
