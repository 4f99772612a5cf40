//! Soak benchmark: does the server keep memory per call? One million plain
//! `tools/call`s of the trivial echo tool through MCP (the direct JSON path,
//! several sessions), then as many through REST, on one in-process server,
//! with the process's resident set size read after a warm-up and after every
//! quarter, and once more after the MCP sessions were DELETEd. A leak shows as
//! bytes per call that stay above zero round after round; allocator noise
//! shows as a step that does not repeat.
//!
//! Needs the packages from `scripts/build-plugins`. Run with
//! `RUST_BACKTRACE=0 cargo bench -p switchyard --bench soak`. Optional
//! environment: `BENCH_SOAK_CALLS` (per face, default 1,000,000),
//! `BENCH_SOAK_CLIENTS` (default 8). Writes `target/bench-soak.json`.

#![allow(missing_docs)]
// The served routes nest deeper than the default limit.
#![recursion_limit = "256"]

mod common;

use common::{
    BoxError, Client, MCP_PATH, env_number, install_echo, login, mcp_session, serve_api,
    status_field_kb, target_dir,
};
use hyper::Method;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Instant;

const MCP_CALL: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo__echo","arguments":{"text":"hi"}}}"#;
const REST_PATH: &str = "/api/v1/tools/echo/echo:call";
const REST_CALL: &str = r#"{"arguments":{"text":"hi"}}"#;
const WARMUP_PER_CLIENT: usize = 2_000;
const ROUNDS: usize = 4;

fn rss_kb() -> u64 {
    status_field_kb(std::process::id(), "VmRSS:").unwrap_or(0)
}

/// `per_client` calls on each client at once.
async fn drive(
    clients: Vec<Client>,
    path: &'static str,
    body: &'static str,
    per_client: usize,
) -> Result<Vec<Client>, BoxError> {
    let mut tasks = tokio::task::JoinSet::new();
    for mut c in clients {
        tasks.spawn(async move {
            for _ in 0..per_client {
                c.call(path, body).await?;
            }
            Ok::<_, BoxError>(c)
        });
    }
    let mut back = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        back.push(joined??);
    }
    Ok(back)
}

/// Warm up, then `ROUNDS` rounds of `calls` in all; RSS after each.
async fn soak(
    name: &str,
    clients: Vec<Client>,
    path: &'static str,
    body: &'static str,
    calls: usize,
) -> Result<(Vec<Client>, Value), BoxError> {
    let n = clients.len();
    let mut clients = drive(clients, path, body, WARMUP_PER_CLIENT).await?;
    let start_kb = rss_kb();
    let per_client = calls.div_ceil(ROUNDS * n);
    let mut rounds = Vec::new();
    let started = Instant::now();
    let mut last = start_kb;
    for round in 1..=ROUNDS {
        clients = drive(clients, path, body, per_client).await?;
        let kb = rss_kb();
        let per_call = (kb as f64 - last as f64) * 1024.0 / (per_client * n) as f64;
        println!(
            "{name}: round {round}: RSS {kb} kB ({:+} kB, {per_call:+.1} bytes/call)",
            kb as i64 - last as i64
        );
        rounds.push(json!({ "rss_kb": kb, "bytes_per_call": (per_call * 10.0).round() / 10.0 }));
        last = kb;
    }
    let total = per_client * n * ROUNDS;
    let secs = started.elapsed().as_secs_f64();
    let per_call = (last as f64 - start_kb as f64) * 1024.0 / total as f64;
    println!(
        "{name}: {total} calls in {secs:.1} s ({:.0}/s); RSS {start_kb} → {last} kB ({per_call:+.2} bytes/call)",
        total as f64 / secs
    );
    Ok((
        clients,
        json!({
            "calls": total,
            "clients": n,
            "calls_per_sec": (total as f64 / secs).round(),
            "rss_start_kb": start_kb,
            "rss_end_kb": last,
            "bytes_per_call": (per_call * 100.0).round() / 100.0,
            "rounds": rounds,
        }),
    ))
}

async fn run(addr: SocketAddr, token: &str, calls: usize, n: usize) -> Result<Value, BoxError> {
    let mut sessions = Vec::with_capacity(n);
    for _ in 0..n {
        sessions.push(mcp_session(addr, token).await?);
    }
    let (sessions, mcp) = soak("MCP", sessions, MCP_PATH, MCP_CALL, calls).await?;
    for mut c in sessions {
        c.exchange(Method::DELETE, MCP_PATH, "").await?;
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let after_delete = rss_kb();
    println!("MCP: RSS after DELETE of the sessions: {after_delete} kB");
    let rest = common::connect_many(addr, Some(token), n).await?;
    let (_, rest) = soak("REST", rest, REST_PATH, REST_CALL, calls).await?;
    Ok(json!({ "mcp": mcp, "mcp_after_delete_kb": after_delete, "rest": rest }))
}

fn main() -> Result<(), BoxError> {
    let calls = env_number("BENCH_SOAK_CALLS", 1_000_000) as usize;
    let clients = env_number("BENCH_SOAK_CLIENTS", 8).max(1) as usize;
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let data = tempfile::tempdir()?;
    let (api, _services) = serve_api(&server_rt, data.path())?;
    let base = format!("http://{}", api.addr);
    let package = target_dir().join("packages/echo-0.1.0.tar.gz");
    let report = client_rt.block_on(async {
        let http = reqwest::Client::new();
        let token = login(&http, &base).await?;
        install_echo(&http, &base, &token, &package).await?;
        run(api.addr, &token, calls, clients).await
    })?;
    api.stop(&server_rt);
    let out = target_dir().join("bench-soak.json");
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    println!("wrote {}", out.display());
    Ok(())
}
