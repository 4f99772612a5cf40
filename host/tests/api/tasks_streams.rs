//! Following tasks live: SSE with `Last-Event-ID`, the `/api/v1/ws` protocol
//! with a real client (exec over the socket, two subscribers seeing the same
//! events, a reconnect with `after`, a status snapshot on subscribe, bad
//! frames answered with an error while the connection stays), and bad input
//! over REST (malformed, oversized, a flood beyond the per-user queue limit).

use crate::harness::{Backend, Server};
use crate::tasks::{events, exec, wait_done};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(server: &Server, token: &str) -> Ws {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("{}/api/v1/ws", server.base.replacen("http", "ws", 1));
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(req)
        .await
        .expect("websocket")
        .0
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// The next JSON frame.
async fn next(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .expect("a frame within 60 s")
            .expect("the socket stays open")
            .expect("a frame");
        if let Message::Text(t) = m {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

/// Frames until `done` for `task`, the task events among them.
async fn until_done(ws: &mut Ws, task: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let f = next(ws).await;
        if f["task_id"] == task && f["seq"].is_i64() && f.get("snapshot").is_none() {
            seen.push(f.clone());
        }
        if f["type"] == "done" && f["task_id"] == task {
            return seen;
        }
    }
}

/// [`until_done`], noting whether a `session_title` came by.
async fn until_done_titled(ws: &mut Ws, task: &str) -> (Vec<Value>, bool) {
    let mut seen = Vec::new();
    let mut titled = false;
    loop {
        let f = next(ws).await;
        titled |= f["type"] == "session_title";
        if f["task_id"] == task && f["seq"].is_i64() && f.get("snapshot").is_none() {
            seen.push(f.clone());
        }
        if f["type"] == "done" && f["task_id"] == task {
            return (seen, titled);
        }
    }
}

crate::on_both_backends!(websocket_exec_streams_and_resumes_without_gaps);

async fn websocket_exec_streams_and_resumes_without_gaps(backend: Backend) {
    let server = Server::start(backend).await;
    let token = server.admin.token.clone().unwrap();
    let mut ws = connect(&server, &token).await;
    // Ping, then garbage: an error each time, the connection stays.
    send(&mut ws, json!({ "type": "ping", "id": 7 })).await;
    assert_eq!(next(&mut ws).await, json!({ "type": "pong", "id": 7 }));
    ws.send(Message::text("{not json")).await.unwrap();
    let e = next(&mut ws).await;
    assert_eq!(e["type"], "error");
    assert_eq!(e["code"], "invalid_request");
    send(&mut ws, json!({ "type": "launch_missiles" })).await;
    assert_eq!(next(&mut ws).await["type"], "error");
    ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(next(&mut ws).await["type"], "error");
    let big = "x".repeat(300 << 10);
    send(&mut ws, json!({ "type": "chat", "content": big })).await;
    let e = next(&mut ws).await;
    assert_eq!(e["code"], "payload_too_large", "{e}");
    send(&mut ws, json!({ "type": "subscribe", "task_id": "nope" })).await;
    assert_eq!(next(&mut ws).await["code"], "not_found");

    // Exec with no session: session_created, message, the snapshot, then events.
    send(
        &mut ws,
        json!({ "type": "exec", "command": "for i in $(seq 1 20); do echo $i; done", "request_id": "r1" }),
    )
    .await;
    let created = next(&mut ws).await;
    assert_eq!(created["type"], "session_created", "{created}");
    let session = created["session_id"].as_str().unwrap().to_string();
    // The session's title may come before or after the task's acknowledgment.
    let mut queued = next(&mut ws).await;
    let mut titled = false;
    while queued["type"] == "session_title" {
        assert_eq!(queued["session_id"], session.as_str());
        titled = true;
        queued = next(&mut ws).await;
    }
    assert_eq!(queued["type"], "message", "{queued}");
    assert_eq!(queued["request_id"], "r1");
    let task = queued["task_id"].as_str().unwrap().to_string();
    // A second subscriber on another connection.
    let mut other = connect(&server, &token).await;
    send(&mut other, json!({ "type": "subscribe", "task_id": task })).await;
    let (live, title) = until_done_titled(&mut ws, &task).await;
    assert!(
        titled || title,
        "the new session's title reached the socket"
    );
    let twin = until_done(&mut other, &task).await;
    let stored = events(&server.admin, &task).await;
    let strip = |v: &Vec<Value>| -> Vec<(i64, String)> {
        v.iter()
            .map(|e| {
                (
                    e["seq"].as_i64().unwrap(),
                    e["type"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(
        strip(&live),
        strip(&stored),
        "the socket saw exactly the stored events"
    );
    assert_eq!(
        strip(&twin),
        strip(&stored),
        "both subscribers saw the same events"
    );
    let text: String = live
        .iter()
        .filter(|e| e["type"] == "output")
        .map(|e| e["data"]["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(text, (1..=20).map(|i| format!("{i}\n")).collect::<String>());

    // Reconnect with `after`: exactly the missed events, after a snapshot.
    drop(other);
    let mut again = connect(&server, &token).await;
    send(
        &mut again,
        json!({ "type": "subscribe", "task_id": task, "after": 3 }),
    )
    .await;
    let snap = next(&mut again).await;
    assert_eq!(snap["type"], "status");
    assert_eq!(snap["snapshot"], true);
    assert_eq!(snap["data"]["status"], "completed");
    let rest = until_done(&mut again, &task).await;
    assert_eq!(strip(&rest), strip(&stored)[3..].to_vec());

    // A task queued in the session over REST reaches the watching socket.
    let t = exec(&server.admin, Some(&session), "echo from rest").await;
    let tid = t["id"].as_str().unwrap();
    let seen = until_done(&mut ws, tid).await;
    assert_eq!(seen.first().unwrap()["seq"], 1);

    // SSE: the whole log, then a resume from Last-Event-ID.
    let url = format!("{}/api/v1/tasks/{task}/events", server.base);
    let sse = |last: Option<&str>| {
        let mut r = reqwest::Client::new()
            .get(&url)
            .bearer_auth(&token)
            .header("accept", "text/event-stream");
        if let Some(l) = last {
            r = r.header("last-event-id", l);
        }
        r
    };
    let body = sse(None).send().await.unwrap();
    assert_eq!(body.status(), 200);
    assert!(
        body.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = body.text().await.unwrap();
    let ids: Vec<i64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("id:"))
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(ids, (1..=stored.len() as i64).collect::<Vec<_>>());
    let resumed = sse(Some("5")).send().await.unwrap().text().await.unwrap();
    let ids: Vec<i64> = resumed
        .lines()
        .filter_map(|l| l.strip_prefix("id:"))
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(ids, (6..=stored.len() as i64).collect::<Vec<_>>());
    let bad = sse(Some("five")).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    wait_done(&server.admin, tid).await;
    crate::sandboxes::cleanup(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_task_input_gets_clear_errors() {
    let server = Server::start_with(Backend::Sqlite, |c| {
        c.tasks.max_queued_per_user = 3;
        c.tasks.max_input_bytes = 4096;
    })
    .await;
    let admin = &server.admin;
    for (body, status, needle) in [
        (json!({ "kind": "exec" }), 400, "input"),
        (json!({ "kind": "shell", "input": {} }), 400, "shell"),
        (json!({ "kind": "exec", "input": {} }), 400, "command"),
        (
            json!({ "kind": "exec", "input": { "command": "a", "argv": ["b"] } }),
            400,
            "not both",
        ),
        (
            json!({ "kind": "exec", "input": { "command": "a", "rm": true } }),
            400,
            "unknown field",
        ),
        (
            json!({ "kind": "exec", "input": { "command": "a\u{0}b" } }),
            400,
            "NUL",
        ),
        (
            json!({ "kind": "agent", "input": { "content": "  " } }),
            400,
            "empty",
        ),
        (
            json!({ "kind": "agent", "input": { "content": "x".repeat(5000) } }),
            413,
            "max_input_bytes",
        ),
        (
            json!({ "kind": "exec", "session_id": "missing", "input": { "command": "true" } }),
            404,
            "session",
        ),
    ] {
        let r = admin.post("/api/v1/tasks", body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
        assert!(r.text.contains(needle), "{body}: {}", r.text);
    }
    let r = admin.get("/api/v1/tasks?status=sleeping").await;
    assert_eq!(r.status, 400);
    let r = admin.get("/api/v1/tasks/x/events?after=-1").await;
    assert_eq!(r.status, 400);
    let r = admin
        .get(&format!("/api/v1/tasks/{}", "x".repeat(500)))
        .await;
    assert_eq!(r.status, 404);
    let r = server.anon().get("/api/v1/tasks").await;
    assert_eq!(r.status, 401);
    // A flood beyond the per-user queue limit: 429 with Retry-After. Agent
    // tasks fail at once without a provider, so queue behind a busy session.
    let s = admin.post("/api/v1/sessions", json!({})).await;
    let sid = s.body["id"].as_str().unwrap();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..6 {
        let r = admin
            .post(
                "/api/v1/tasks",
                json!({ "kind": "exec", "session_id": sid, "input": { "command": "sleep 5" } }),
            )
            .await;
        if r.status == 429 {
            retry_after = r.headers.get("retry-after").cloned();
        }
        statuses.push(r.status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        3,
        "{statuses:?}"
    );
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(retry_after.is_some(), "429 carries Retry-After");
    let list = admin.get(&format!("/api/v1/tasks?session_id={sid}")).await;
    for t in list.body["items"].as_array().unwrap() {
        let id = t["id"].as_str().unwrap();
        let _ = admin
            .post(&format!("/api/v1/tasks/{id}/cancel"), json!({}))
            .await;
    }
    crate::sandboxes::cleanup(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_does_not_read_is_let_go_and_resumes() {
    let server = Server::start_with(Backend::Sqlite, |c| {
        c.sandbox.max_output_bytes = 64 << 20;
        c.tasks.slow_subscriber_secs = 1;
    })
    .await;
    let token = server.admin.token.clone().unwrap();
    let mut ws = connect(&server, &token).await;
    send(
        &mut ws,
        json!({ "type": "exec", "command": "head -c 40000000 /dev/zero | tr '\\0' a" }),
    )
    .await;
    // Read nothing while the task pours out output.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (mut task, mut last, mut reason) = (None::<String>, 0i64, None::<String>);
    loop {
        match tokio::time::timeout(Duration::from_secs(60), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let f: Value = serde_json::from_str(&t).unwrap();
                if f["type"] == "message" {
                    task = f["task_id"].as_str().map(str::to_string);
                }
                if f["seq"].is_i64() && f.get("snapshot").is_none() {
                    last = f["seq"].as_i64().unwrap();
                }
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                let frame = frame.expect("a close reason");
                assert_eq!(u16::from(frame.code), 4008);
                reason = Some(frame.reason.to_string());
                break;
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => break,
            Err(_) => panic!("the slow socket was never closed"),
        }
    }
    let task = task.expect("the task was acknowledged");
    let reason = reason.expect("closed with a reason");
    let after: i64 = reason.rsplit("after=").next().unwrap().parse().unwrap();
    assert!(
        after <= last,
        "resume point {after} within what was seen ({last})"
    );
    // The task was not slowed down by the stuck socket: it finished on its own.
    let done = wait_done(&server.admin, &task).await;
    assert_eq!(done["status"], "completed", "{done}");
    // A new socket picks up exactly after the resume point.
    let mut again = connect(&server, &token).await;
    send(
        &mut again,
        json!({ "type": "subscribe", "task_id": task, "after": after }),
    )
    .await;
    let rest = until_done(&mut again, &task).await;
    assert_eq!(rest.first().unwrap()["seq"], after + 1);
    assert_eq!(rest.last().unwrap()["seq"], done["last_seq"]);
    crate::sandboxes::cleanup(&server).await;
    server.stop().await;
}
