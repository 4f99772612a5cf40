//! Memory per request: a server nobody scrapes keeps nothing per tool call.
//! Every allocation of this test process is counted (a capped global
//! allocator), so growth over tens of thousands of calls through MCP (the
//! direct JSON path) and REST shows up as bytes per call, whatever the
//! allocator's page reuse would hide from RSS. The soak benchmark
//! (`benches/soak.rs`) measures the same on a release build over 1M calls.

// The server future of the harness nests deeper than the default limit.
#![recursion_limit = "256"]

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

/// Rounds of calls after the warm-up; the live heap is sampled after each.
const ROUNDS: usize = 10;

/// Calls per face in a round.
const PER_ROUND: usize = 2_500;

/// Samples at each end whose lowest value is compared.
const ENDS: usize = 3;

/// Longer than the metrics upkeep period, so pending samples are folded.
const SETTLE: Duration = Duration::from_millis(1200);

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
        let text = r.text().await.expect("an MCP answer");
        // JSON from the direct path; SSE while rmcp still attaches the session.
        let answer: Value = serde_json::from_str(&text)
            .ok()
            .or_else(|| {
                text.lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .find_map(|d| serde_json::from_str(d.trim()).ok())
            })
            .unwrap_or_else(|| panic!("not an MCP answer: {text}"));
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
    // Freed memory comes back in steps (metric samples are reclaimed in
    // batches), so the live heap saws up and down by a few hundred KB; its
    // troughs are what the server really keeps. A leak lifts them round by
    // round.
    let mut samples = Vec::new();
    for round in 0..ROUNDS {
        calls(&alice, &session, 10_000 + round * PER_ROUND, PER_ROUND).await;
        tokio::time::sleep(SETTLE).await;
        // Fold the pending histogram samples into their buckets now rather
        // than whenever the upkeep thread next runs, so every trough is taken
        // with none of them outstanding.
        server.services.metrics.run_upkeep();
        samples.push(ALLOC.allocated());
    }
    let first = samples[..ENDS].iter().min().copied().unwrap_or_default();
    let last = samples[ROUNDS - ENDS..]
        .iter()
        .min()
        .copied()
        .unwrap_or_default();
    let between = 2 * PER_ROUND * (ROUNDS - ENDS);
    let per_call = last.saturating_sub(first) as f64 / between as f64;
    eprintln!("live heap after each round: {samples:?}; {per_call:.2} bytes kept per call");
    // The saw moves a trough by at most ~200 KB (under 6 bytes per call here);
    // two 8-byte metric samples kept per call would lift it by 560 KB.
    assert!(
        per_call < 8.0,
        "the live heap's low point rose by {} bytes over {between} tool calls ({per_call:.2} per call): something is kept per call; samples {samples:?}",
        last.saturating_sub(first)
    );
    server.stop().await;
}
