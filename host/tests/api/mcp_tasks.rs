//! MCP tasks (protocol 2025-11-25) over `/mcp`, backed by the durable queue:
//! the capability and `taskSupport`, a task-augmented `task_run` followed with
//! `tasks/get`, `tasks/result` and `tasks/list`, status notifications,
//! `tasks/cancel`, tasks bound to their creator, restart safety, bad params.

use crate::harness::{Backend, Client, Server};
use crate::mcp::{Mcp, messages};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;

crate::on_both_backends!(a_task_run_task_is_created_followed_and_listed);

/// Queue `command` as a task-augmented `task_run`; its MCP task id.
async fn run_task(m: &Mcp, command: &str) -> String {
    let r = m
        .rpc(
            "tools/call",
            json!({ "name": "task_run", "task": { "ttl": 60000 },
                "arguments": { "kind": "exec", "command": command } }),
        )
        .await;
    let task = &r["result"]["task"];
    assert_eq!(task["status"], "working", "{r}");
    assert_eq!(task["pollInterval"], 1000, "{r}");
    assert!(task["ttl"].is_null(), "tasks are kept: {r}");
    task["taskId"].as_str().expect("taskId").to_string()
}

/// The JSON-RPC error code of a response (panics on a result).
fn code(r: &Value) -> i64 {
    r["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error: {r}"))
}

/// `tasks/result` of `id`, checked to carry its related-task `_meta`.
async fn result_of(m: &Mcp, id: &str) -> Value {
    let r = m.rpc("tasks/result", json!({ "taskId": id })).await;
    let result = r["result"].clone();
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/related-task"]["taskId"], id,
        "{r}"
    );
    result
}

/// The `initialize` result of a fresh session.
async fn initialize(client: &Client) -> Value {
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"test","version":"1"}}});
    let r = Mcp::post(client, None, &init.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    messages(&r.text).remove(0)
}

fn is_iso8601(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 24 && s.ends_with('Z') && s.as_bytes()[10] == b'T')
}

async fn a_task_run_task_is_created_followed_and_listed(backend: Backend) {
    let server = Server::start(backend).await;
    let init = initialize(&server.admin).await;
    assert_eq!(
        init["result"]["capabilities"]["tasks"],
        json!({ "list": {}, "cancel": {}, "requests": { "tools": { "call": {} } } }),
        "{init}"
    );
    let m = Mcp::open(&server.admin).await;
    let tools = m.rpc("tools/list", json!({})).await;
    for tool in tools["result"]["tools"].as_array().unwrap() {
        let support = &tool["execution"]["taskSupport"];
        if tool["name"] == "task_run" {
            assert_eq!(support, "optional", "{tool}");
        } else {
            assert!(support.is_null(), "only task_run runs as a task: {tool}");
        }
    }

    // Status notifications reach the session's standalone stream.
    let stream = server
        .admin
        .request(reqwest::Method::GET, "/mcp")
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &m.session)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut notes = stream.bytes_stream();

    let id = run_task(&m, "echo hello-task").await;
    let got = m.rpc("tasks/get", json!({ "taskId": id })).await;
    assert_eq!(got["result"]["taskId"], id.as_str(), "{got}");
    assert!(is_iso8601(&got["result"]["createdAt"]), "{got}");
    assert!(is_iso8601(&got["result"]["lastUpdatedAt"]), "{got}");

    let result = result_of(&m, &id).await;
    assert_eq!(result["isError"], false, "{result}");
    assert_eq!(result["structuredContent"]["id"], id.as_str(), "{result}");
    assert_eq!(result["structuredContent"]["status"], "completed");
    assert_eq!(result["structuredContent"]["result"]["exit_code"], 0);
    let text = result["content"][0]["text"].as_str().unwrap();
    assert!(text.contains(&id), "{text}");
    let got = m.rpc("tasks/get", json!({ "taskId": id })).await;
    assert_eq!(got["result"]["status"], "completed", "{got}");

    let mut seen = String::new();
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(chunk)) = notes.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("notifications/tasks/status") && seen.contains("\"completed\"") {
                return;
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "no completed status notification: {seen}");

    // A failing command: the task fails, and its result is an error result.
    let failing = run_task(&m, "exit 3").await;
    let result = result_of(&m, &failing).await;
    assert_eq!(result["isError"], true, "{result}");
    let got = m.rpc("tasks/get", json!({ "taskId": failing })).await;
    assert_eq!(got["result"]["status"], "failed", "{got}");
    assert!(got["result"]["statusMessage"].is_string(), "{got}");

    // tasks/list: newest first; the cursor is the REST API's `after`.
    let listed = m.rpc("tasks/list", json!({})).await;
    let ids: Vec<&str> = listed["result"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["taskId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [failing.as_str(), id.as_str()], "{listed}");
    assert!(listed["result"]["nextCursor"].is_null(), "{listed}");
    let first = server.admin.get("/api/v1/tasks?limit=1").await;
    let cursor = first.body["next"]
        .as_str()
        .or(first.body["next_after"].as_str())
        .unwrap_or_else(|| panic!("no REST cursor: {}", first.body))
        .to_string();
    let rest = m.rpc("tasks/list", json!({ "cursor": cursor })).await;
    assert_eq!(
        rest["result"]["tasks"].as_array().unwrap().len(),
        1,
        "{rest}"
    );
    assert_eq!(rest["result"]["tasks"][0]["taskId"], id.as_str(), "{rest}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_working_task_and_refuses_a_finished_one() {
    let server = Server::start(Backend::Sqlite).await;
    let m = Mcp::open(&server.admin).await;
    let id = run_task(&m, "sleep 60").await;
    crate::tasks::wait_for(&server.admin, &id, &["running"]).await;
    let canceled = m.rpc("tasks/cancel", json!({ "taskId": id })).await;
    assert_eq!(canceled["result"]["taskId"], id.as_str(), "{canceled}");
    assert_eq!(canceled["result"]["status"], "cancelled", "{canceled}");
    let result = result_of(&m, &id).await;
    assert_eq!(result["isError"], true, "{result}");
    assert_eq!(result["structuredContent"]["status"], "canceled");
    let again = m.rpc("tasks/cancel", json!({ "taskId": id })).await;
    assert_eq!(code(&again), -32602, "{again}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = m.rpc("tasks/get", json!({ "taskId": id })).await;
    assert_eq!(
        got["result"]["status"], "cancelled",
        "it never changes: {got}"
    );

    let done = run_task(&m, "true").await;
    assert_eq!(result_of(&m, &done).await["isError"], false);
    let late = m.rpc("tasks/cancel", json!({ "taskId": done })).await;
    assert_eq!(code(&late), -32602, "{late}");
    let got = m.rpc("tasks/get", json!({ "taskId": done })).await;
    assert_eq!(got["result"]["status"], "completed", "{got}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_task_is_not_found() {
    let server = Server::start(Backend::Sqlite).await;
    let (alice, _) = server.user("alice", "user").await;
    let (bob, _) = server.user("bob", "user").await;
    let a = Mcp::open(&alice).await;
    let b = Mcp::open(&bob).await;
    let admin = Mcp::open(&server.admin).await;
    let id = run_task(&a, "sleep 30").await;
    let unknown = "0".repeat(id.len());
    for m in [&b, &admin] {
        for method in ["tasks/get", "tasks/result", "tasks/cancel"] {
            let theirs = m.rpc(method, json!({ "taskId": id })).await;
            let none = m.rpc(method, json!({ "taskId": unknown })).await;
            assert_eq!(code(&theirs), -32602, "{method}: {theirs}");
            assert_eq!(
                theirs["error"]["message"]
                    .as_str()
                    .unwrap()
                    .replace(&id, "ID"),
                none["error"]["message"]
                    .as_str()
                    .unwrap()
                    .replace(&unknown, "ID"),
                "{method}: the same answer as for an unknown id"
            );
        }
        let listed = m.rpc("tasks/list", json!({})).await;
        assert_eq!(listed["result"]["tasks"], json!([]), "{listed}");
    }
    let got = a.rpc("tasks/get", json!({ "taskId": id })).await;
    assert_eq!(
        got["result"]["status"], "working",
        "bob's cancel did nothing: {got}"
    );
    let canceled = a.rpc("tasks/cancel", json!({ "taskId": id })).await;
    assert_eq!(canceled["result"]["status"], "cancelled", "{canceled}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_outlives_a_host_restart() {
    let server = Server::start(Backend::Sqlite).await;
    let m = Mcp::open(&server.admin).await;
    let done = run_task(&m, "echo before-restart").await;
    assert_eq!(result_of(&m, &done).await["isError"], false);
    let queued = run_task(&m, "echo queued").await;
    drop(m);
    let (data, config) = server.into_data().await;
    let server = Server::resume(data, config).await;
    let m = Mcp::open(&server.admin).await;
    let got = m.rpc("tasks/get", json!({ "taskId": done })).await;
    assert_eq!(got["result"]["status"], "completed", "{got}");
    let result = result_of(&m, &done).await;
    assert_eq!(result["isError"], false, "{result}");
    assert_eq!(result["structuredContent"]["result"]["exit_code"], 0);
    // The task queued (or interrupted) at the stop ends too, and says how.
    let result = result_of(&m, &queued).await;
    let status = result["structuredContent"]["status"].as_str().unwrap();
    assert!(["completed", "failed"].contains(&status), "{result}");
    let listed = m.rpc("tasks/list", json!({})).await;
    assert_eq!(listed["result"]["tasks"].as_array().unwrap().len(), 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_mode_serves_tasks_without_sessions() {
    let server = Server::start_with(Backend::Sqlite, |c| c.mcp.stateless = true).await;
    let init = initialize(&server.admin).await;
    assert!(init["result"]["capabilities"]["tasks"]["requests"]["tools"]["call"].is_object());
    let rpc = |id: u64, method: &str, params: Value| {
        json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }).to_string()
    };
    let call = rpc(
        1,
        "tools/call",
        json!({ "name": "task_run", "task": {}, "arguments": { "kind": "exec", "command": "echo x" } }),
    );
    let r = Mcp::post(&server.admin, None, &call).await;
    let id = r.body["result"]["task"]["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("no task: {}", r.text))
        .to_string();
    let r = Mcp::post(
        &server.admin,
        None,
        &rpc(2, "tasks/result", json!({ "taskId": id })),
    )
    .await;
    assert_eq!(r.body["result"]["isError"], false, "{}", r.text);
    assert_eq!(r.body["result"]["structuredContent"]["status"], "completed");
    let r = Mcp::post(&server.admin, None, &rpc(3, "tools/list", json!({}))).await;
    let tools = r.body["result"]["tools"].as_array().unwrap();
    let run = tools.iter().find(|t| t["name"] == "task_run").unwrap();
    assert_eq!(run["execution"]["taskSupport"], "optional", "{run}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_task_params_get_protocol_errors() {
    let server = Server::start(Backend::Sqlite).await;
    let m = Mcp::open(&server.admin).await;
    let exec = json!({ "kind": "exec", "command": "true" });
    let cases = [
        (
            "tools/call",
            json!({ "name": "task_run", "arguments": exec, "task": 5 }),
            -32602,
        ),
        (
            "tools/call",
            json!({ "name": "task_run", "arguments": exec, "task": { "ttl": "x" } }),
            -32602,
        ),
        (
            "tools/call",
            json!({ "name": "task_run", "arguments": 7, "task": {} }),
            -32602,
        ),
        (
            "tools/call",
            json!({ "name": "task_run", "arguments": { "kind": "exec" }, "task": {} }),
            -32602,
        ),
        (
            "tools/call",
            json!({ "name": "task_run", "arguments": { "kind": "nope" }, "task": {} }),
            -32602,
        ),
        (
            "tools/call",
            json!({ "arguments": exec, "task": {} }),
            -32602,
        ),
        (
            "tools/call",
            json!({ "name": "sandbox_list", "arguments": {}, "task": {} }),
            -32601,
        ),
        (
            "tools/call",
            json!({ "name": "task_status", "arguments": { "task_id": "x" }, "task": {} }),
            -32601,
        ),
        ("tasks/get", json!({}), -32602),
        ("tasks/get", json!({ "taskId": 42 }), -32602),
        ("tasks/get", json!({ "taskId": "no-such-task" }), -32602),
        ("tasks/result", json!({ "taskId": "" }), -32602),
        ("tasks/cancel", json!({ "taskId": "x".repeat(100) }), -32602),
        ("tasks/list", json!({ "cursor": 5 }), -32602),
    ];
    for (method, params, expected) in cases {
        let r = m.rpc(method, params.clone()).await;
        assert_eq!(code(&r), expected, "{method} {params}: {r}");
    }
    let listed = m.rpc("tasks/list", json!({})).await;
    assert_eq!(
        listed["result"]["tasks"],
        json!([]),
        "nothing was queued: {listed}"
    );
    // The same tool without `task` runs as a plain call; the session is healthy.
    let plain = m.call("task_run", json!({ "kind": "nope" })).await;
    assert_eq!(plain["result"]["isError"], true, "{plain}");
    assert!(m.tool_names().await.contains(&"task_run".to_string()));
    server.stop().await;
}
