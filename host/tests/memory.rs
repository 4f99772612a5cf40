//! Memory per request: a server nobody scrapes keeps nothing per tool call.
//! Every allocation of this test process is counted (a capped global
//! allocator), so growth over tens of thousands of calls through MCP (the
//! direct JSON path) and REST shows up as bytes per call, whatever the
//! allocator's page reuse would hide from RSS. The soak benchmark
//! (`benches/soak.rs`) measures the same on a release build over 1M calls.

#[path = "common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "api/harness.rs"]
mod harness;

use harness::{Backend, Client, Server, package_bytes};
use serde_json::{Value, json};
use std::time::Duration;

#[global_allocator]
static ALLOC: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

/// Calls measured after the warm-up, per face.
const CALLS: usize = 15_000;

/// Longer than the metrics upkeep period, so pending samples are folded.
const SETTLE: Duration = Duration::from_millis(2500);

/// An MCP session's id, after initialize and initialized.
async fn mcp_session(client: &Client) -> String {
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"memory","version":"1"}}});
    let r = mcp_post(client, None, &init).await;
    let session = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let done = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
    assert_eq!(mcp_post(client, Some(&session), &done).await.status(), 202);
    session
}

async fn mcp_post(client: &Client, session: Option<&str>, body: &Value) -> reqwest::Response {
    let mut req = client
        .request(reqwest::Method::POST, "/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string());
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    req.send().await.expect("MCP request")
}

/// `n` echo calls through MCP and `n` through REST, each checked.
async fn calls(client: &Client, session: &str, first_id: usize, n: usize) {
    for i in 0..n {
        let id = first_id + i;
        let body = json!({"jsonrpc":"2.0","id":id,"method":"tools/call",
            "params":{"name":"echo__echo","arguments":{"text":"x"}}});
        let r = mcp_post(client, Some(session), &body).await;
        assert_eq!(r.status(), 200);
        let answer: Value = r.json().await.expect("a JSON answer (the direct path)");
        assert_eq!(answer["id"], json!(id), "{answer}");
        assert!(answer["result"]["content"].is_array(), "{answer}");
        let r = client.call("echo", "echo", json!({"text": "x"})).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_calls_keep_nothing_per_call() {
    let server = Server::start(Backend::Sqlite).await;
    let r = server
        .admin
        .upload("?grant=true", package_bytes("echo"))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let (alice, _) = server.user("alice", "user").await;
    let session = mcp_session(&alice).await;

    // Warm-up: connection pools, caches and the allocator's free lists settle.
    calls(&alice, &session, 1, 3_000).await;
    tokio::time::sleep(SETTLE).await;
    let before = ALLOC.allocated();
    calls(&alice, &session, 10_000, CALLS).await;
    tokio::time::sleep(SETTLE).await;
    let after = ALLOC.allocated();

    let grown = after.saturating_sub(before);
    let per_call = grown as f64 / (2 * CALLS) as f64;
    eprintln!(
        "live heap {before} → {after} bytes over {} calls: {per_call:.2} bytes per call",
        2 * CALLS
    );
    // A leak of one 8-byte sample per call is 240 KB here; caches that fill
    // once stay far below it.
    assert!(
        per_call < 4.0,
        "the live heap grew by {grown} bytes over {} tool calls ({per_call:.2} per call): something is kept per call",
        2 * CALLS
    );
    server.stop().await;
}
