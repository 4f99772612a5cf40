//! Exec tasks end to end on a real Docker sandbox, on SQLite and Postgres:
//! output streamed as events with contiguous seqs, results and errors, a
//! session's sandbox reused, the busy policies, cancel in every state, the
//! per-user queue limit, SSE with `Last-Event-ID`, two-user isolation and bad
//! input.

use crate::harness::{Backend, Client, Server};
use serde_json::{Value, json};
use std::time::Duration;

crate::on_both_backends!(
    exec_tasks_stream_output_and_end_with_their_exit,
    busy_policies_queue_reject_and_interrupt,
    cancel_works_in_every_state_and_the_sandbox_stays_usable,
    another_users_sessions_and_tasks_are_not_found,
);

/// Queue an exec task; the task.
pub async fn exec(client: &Client, session: Option<&str>, command: &str) -> Value {
    let mut body = json!({ "kind": "exec", "input": { "command": command } });
    if let Some(s) = session {
        body["session_id"] = s.into();
    }
    let r = client.post("/api/v1/tasks", body).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body["status"], "pending");
    r.body
}

/// Wait until a task reaches one of `statuses`; the task.
pub async fn wait_for(client: &Client, id: &str, statuses: &[&str]) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let r = client.get(&format!("/api/v1/tasks/{id}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        if statuses.iter().any(|s| r.body["status"] == *s) {
            return r.body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "task {id} never reached {statuses:?}: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait until a task is finished; the task.
pub async fn wait_done(client: &Client, id: &str) -> Value {
    wait_for(client, id, &["completed", "failed", "canceled"]).await
}

/// Every event of a task, checked to be contiguous from 1.
pub async fn events(client: &Client, id: &str) -> Vec<Value> {
    let mut all: Vec<Value> = Vec::new();
    let mut after = 0;
    loop {
        let r = client
            .get(&format!(
                "/api/v1/tasks/{id}/events?after={after}&limit=1000"
            ))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let items = r.body["items"].as_array().unwrap().clone();
        if items.is_empty() {
            break;
        }
        after = r.body["next_after"].as_i64().unwrap();
        all.extend(items);
    }
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e["seq"], i as i64 + 1, "seqs are contiguous: {all:#?}");
        assert_eq!(e["task_id"], id);
    }
    all
}

/// The stdout of a task's `output` events.
pub fn stdout(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "output" && e["data"]["stream"] == "stdout")
        .map(|e| e["data"]["text"].as_str().unwrap().to_string())
        .collect()
}

async fn exec_tasks_stream_output_and_end_with_their_exit(backend: Backend) {
    let server = Server::start(backend).await;
    let admin = &server.admin;
    let task = exec(
        admin,
        None,
        "for i in 1 2 3; do echo line $i; done; echo oops >&2",
    )
    .await;
    let id = task["id"].as_str().unwrap();
    let session = task["session_id"].as_str().unwrap().to_string();
    let done = wait_done(admin, id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["exit_code"], 0);
    assert_eq!(done["origin"], "rest");
    assert!(done["started_at"].as_i64() >= done["queued_at"].as_i64());
    let evs = events(admin, id).await;
    assert_eq!(evs[0]["type"], "status");
    assert_eq!(evs[0]["data"]["status"], "pending");
    assert_eq!(evs[1]["data"]["status"], "running");
    assert_eq!(stdout(&evs), "line 1\nline 2\nline 3\n");
    assert!(
        evs.iter()
            .any(|e| e["data"]["stream"] == "stderr" && e["data"]["text"] == "oops\n")
    );
    let last = evs.last().unwrap();
    assert_eq!(last["type"], "done");
    assert_eq!(last["data"]["status"], "completed");
    assert_eq!(evs[evs.len() - 2]["data"]["status"], "completed");
    assert_eq!(done["last_seq"], evs.len() as i64);

    // The session got a sandbox and a title; a second command reuses both.
    let s = admin.get(&format!("/api/v1/sessions/{session}")).await;
    assert_eq!(s.status, 200);
    let sandbox = s.body["sandbox_id"]
        .as_str()
        .expect("a bound sandbox")
        .to_string();
    assert!(
        s.body["title"]
            .as_str()
            .unwrap()
            .starts_with("for i in 1 2 3")
    );
    let write = exec(admin, Some(&session), "echo kept > note.txt").await;
    wait_done(admin, write["id"].as_str().unwrap()).await;
    let failing = exec(admin, Some(&session), "cat note.txt; exit 7").await;
    let failed = wait_done(admin, failing["id"].as_str().unwrap()).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], "exit_nonzero");
    assert_eq!(failed["result"]["exit_code"], 7);
    assert_eq!(
        failed["attempt"], 1,
        "a command's own failure is never retried"
    );
    assert_eq!(
        stdout(&events(admin, failing["id"].as_str().unwrap()).await),
        "kept\n"
    );
    let again = admin.get(&format!("/api/v1/sessions/{session}")).await;
    assert_eq!(again.body["sandbox_id"], sandbox.as_str());

    // Listing and filters.
    let list = admin
        .get(&format!("/api/v1/tasks?session_id={session}&status=failed"))
        .await;
    assert_eq!(list.status, 200);
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], failing["id"]);
    let sessions = admin.get("/api/v1/sessions").await;
    assert!(
        sessions.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == session.as_str())
    );

    // An exec that times out: the deadline in the result.
    let slow = admin
        .post(
            "/api/v1/tasks",
            json!({ "kind": "exec", "session_id": session, "input": { "command": "sleep 30", "timeout_secs": 1 } }),
        )
        .await;
    assert_eq!(slow.status, 202, "{}", slow.text);
    let slow = wait_done(admin, slow.body["id"].as_str().unwrap()).await;
    assert_eq!(slow["error"]["code"], "timed_out", "{slow}");
    assert_eq!(slow["result"]["timed_out"], true);
    crate::sandboxes::cleanup(&server).await;
    server.stop().await;
}

async fn busy_policies_queue_reject_and_interrupt(backend: Backend) {
    let server = Server::start(backend).await;
    let admin = &server.admin;
    // queue (the default): in order, one at a time.
    let first = exec(admin, None, "sleep 1; echo first").await;
    let session = first["session_id"].as_str().unwrap().to_string();
    let second = exec(admin, Some(&session), "echo second").await;
    let a = wait_done(admin, first["id"].as_str().unwrap()).await;
    let b = wait_done(admin, second["id"].as_str().unwrap()).await;
    assert_eq!(a["status"], "completed");
    assert_eq!(b["status"], "completed");
    assert!(
        b["started_at"].as_i64().unwrap() >= a["finished_at"].as_i64().unwrap(),
        "the second started after the first finished: {a} {b}"
    );

    // reject: 409 while a task is open.
    let r = admin
        .patch(
            &format!("/api/v1/sessions/{session}"),
            json!({ "busy_policy": "reject" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["busy_policy"], "reject");
    let long = exec(admin, Some(&session), "sleep 20").await;
    wait_for(admin, long["id"].as_str().unwrap(), &["running"]).await;
    let refused = admin
        .post(
            "/api/v1/tasks",
            json!({ "kind": "exec", "session_id": session, "input": { "command": "true" } }),
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert!(refused.text.contains("busy_policy"));

    // interrupt: the running task is canceled, the new one runs.
    admin
        .patch(
            &format!("/api/v1/sessions/{session}"),
            json!({ "busy_policy": "interrupt" }),
        )
        .await;
    let newer = exec(admin, Some(&session), "echo newer").await;
    let old = wait_done(admin, long["id"].as_str().unwrap()).await;
    assert_eq!(old["status"], "canceled", "{old}");
    let new = wait_done(admin, newer["id"].as_str().unwrap()).await;
    assert_eq!(new["status"], "completed", "{new}");
    crate::sandboxes::cleanup(&server).await;
    server.stop().await;
}

async fn cancel_works_in_every_state_and_the_sandbox_stays_usable(backend: Backend) {
    let server = Server::start(backend).await;
    let admin = &server.admin;
    let running = exec(admin, None, "echo started; sleep 60").await;
    let rid = running["id"].as_str().unwrap().to_string();
    let session = running["session_id"].as_str().unwrap().to_string();
    let queued = exec(admin, Some(&session), "echo never").await;
    let qid = queued["id"].as_str().unwrap().to_string();
    wait_for(admin, &rid, &["running"]).await;
    // Wait for the command itself to be under way.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !stdout(&events(admin, &rid).await).contains("started") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the command never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Pending: canceled at once.
    let c = admin
        .post(&format!("/api/v1/tasks/{qid}/cancel"), json!({}))
        .await;
    assert_eq!(c.status, 202, "{}", c.text);
    assert_eq!(c.body["status"], "canceled");
    // Running: the command is interrupted.
    let started = std::time::Instant::now();
    let c = admin
        .post(&format!("/api/v1/tasks/{rid}/cancel"), json!({}))
        .await;
    assert_eq!(c.status, 202, "{}", c.text);
    let done = wait_done(admin, &rid).await;
    assert_eq!(done["status"], "canceled");
    assert_eq!(done["error"]["code"], "canceled");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "cancel took {:?}",
        started.elapsed()
    );
    let evs = events(admin, &rid).await;
    assert_eq!(evs.last().unwrap()["type"], "done");
    // Finished: a clear 409.
    let again = admin
        .post(&format!("/api/v1/tasks/{rid}/cancel"), json!({}))
        .await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert!(again.text.contains("already canceled"));
    let never = wait_done(admin, &qid).await;
    assert_eq!(
        never["started_at"],
        Value::Null,
        "a canceled queued task never ran"
    );
    // The sandbox still works.
    let after = exec(admin, Some(&session), "echo still here").await;
    let after = wait_done(admin, after["id"].as_str().unwrap()).await;
    assert_eq!(after["status"], "completed", "{after}");
    crate::sandboxes::cleanup(&server).await;
    server.stop().await;
}

async fn another_users_sessions_and_tasks_are_not_found(backend: Backend) {
    let server = Server::start(backend).await;
    let (alice, _) = server.user("alice", "user").await;
    let (bob, _) = server.user("bob", "user").await;
    let s = alice
        .post("/api/v1/sessions", json!({ "title": "alice's" }))
        .await;
    assert_eq!(s.status, 201, "{}", s.text);
    let sid = s.body["id"].as_str().unwrap().to_string();
    let t = alice
        .post(
            "/api/v1/tasks",
            json!({ "kind": "agent", "session_id": sid, "input": { "content": "hi" } }),
        )
        .await;
    assert_eq!(t.status, 202, "{}", t.text);
    let tid = t.body["id"].as_str().unwrap().to_string();
    for (method, path) in [
        ("GET", format!("/api/v1/sessions/{sid}")),
        ("PATCH", format!("/api/v1/sessions/{sid}")),
        ("DELETE", format!("/api/v1/sessions/{sid}")),
        ("GET", format!("/api/v1/sessions/{sid}/messages")),
        ("POST", format!("/api/v1/sessions/{sid}/messages")),
        ("GET", format!("/api/v1/tasks/{tid}")),
        ("GET", format!("/api/v1/tasks/{tid}/events")),
        ("POST", format!("/api/v1/tasks/{tid}/cancel")),
    ] {
        let body = json!({ "content": "x" });
        let r = match method {
            "GET" => bob.get(&path).await,
            "PATCH" => bob.patch(&path, json!({ "title": "mine" })).await,
            "DELETE" => bob.delete(&path).await,
            _ => bob.post(&path, body).await,
        };
        assert_eq!(r.status, 404, "{method} {path}: {}", r.text);
    }
    let other = bob
        .post(
            "/api/v1/tasks",
            json!({ "kind": "exec", "session_id": sid, "input": { "command": "id" } }),
        )
        .await;
    assert_eq!(other.status, 404, "{}", other.text);
    assert_eq!(
        bob.get("/api/v1/tasks").await.body["items"],
        json!([]),
        "bob sees none of alice's tasks"
    );
    assert_eq!(bob.get("/api/v1/sessions").await.body["items"], json!([]));
    // The owner and an administrator see them.
    assert_eq!(alice.get(&format!("/api/v1/tasks/{tid}")).await.status, 200);
    assert_eq!(
        server
            .admin
            .get(&format!("/api/v1/tasks/{tid}"))
            .await
            .status,
        200
    );
    let all = server.admin.get("/api/v1/tasks?all=true").await;
    assert!(
        all.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == tid.as_str())
    );
    server.stop().await;
}
