//! MCP benchmarks: `tools/call` of the trivial echo tool over streamable HTTP
//! (`POST /mcp` in an initialized session, as MCP clients send it), beside
//! the REST call of the same tool and the bare warp JSON echo (the floor),
//! served by the same accept loop and measured in the same run:
//!
//! 1. sequential latency, p50/p90/p99 over 5,000 calls after 500 warm-up calls,
//!    the three routes interleaved in rounds; ratio p50(MCP)/p50(floor) (target ≤ 1.5);
//! 2. closed-loop throughput with 1 and 32 clients (each MCP client its own
//!    session and connection), ~10 s each;
//! 3. with 20 plugins installed (the echo package under 20 names): `initialize`
//!    (a new session each, then DELETE) and `tools/list` latency.
//!
//! Needs the packages from `scripts/build-plugins`. Run with
//! `RUST_BACKTRACE=0 cargo bench -p switchyard --bench mcp`. Optional environment:
//! `BENCH_CALLS` (default 5000), `BENCH_SECS` (default 10). Writes
//! `target/bench-mcp.json`.

#![allow(missing_docs)]
// The served routes nest deeper than the default limit.
#![recursion_limit = "256"]

mod common;

use common::{
    BoxError, Client, Latency, MCP_PATH, Running, Throughput, closed_loop, connect_many,
    env_number, floor_filter, initialize, install_echo, login, mcp_connect, mcp_session, round1,
    serve_api, target_dir,
};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Instant;
use switchyard::server::Services;

const MCP_CALL: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo__echo","arguments":{"text":"hi"}}}"#;
const MCP_LIST: &str = r#"{"jsonrpc":"2.0","id":8,"method":"tools/list"}"#;
const REST_PATH: &str = "/api/v1/tools/echo/echo:call";
const REST_CALL: &str = r#"{"arguments":{"text":"hi"}}"#;
const FLOOR_PATH: &str = "/echo";
const WARMUP_CALLS: usize = 500;
const PLUGIN_COUNT: usize = 20;
const SESSION_RUNS: usize = 300;

struct Sequential {
    mcp: Latency,
    rest: Latency,
    floor: Latency,
}

/// Sequential latencies of the three routes, interleaved in rounds.
async fn sequential(
    api: SocketAddr,
    floor: SocketAddr,
    token: &str,
    calls: usize,
) -> Result<Sequential, BoxError> {
    let mut mcp = mcp_session(api, token).await?;
    let mut rest = Client::connect(api, Some(token)).await?;
    let mut fl = Client::connect(floor, None).await?;
    let (status, body) = mcp.post(MCP_PATH, MCP_CALL).await?;
    let text = String::from_utf8_lossy(&body);
    if status != StatusCode::OK || !text.contains(r#""text":"hi""#) {
        return Err(format!("the MCP call answered {status}: {text}").into());
    }
    println!("MCP tools/call answer: {}", text.trim());
    for _ in 0..WARMUP_CALLS {
        mcp.call(MCP_PATH, MCP_CALL).await?;
        rest.call(REST_PATH, REST_CALL).await?;
        fl.call(FLOOR_PATH, REST_CALL).await?;
    }
    let rounds = 5;
    let per_round = calls.div_ceil(rounds);
    let mut samples = [(); 3].map(|_| Vec::with_capacity(per_round * rounds));
    for _ in 0..rounds {
        for (i, (client, path, body)) in [
            (&mut fl, FLOOR_PATH, REST_CALL),
            (&mut rest, REST_PATH, REST_CALL),
            (&mut mcp, MCP_PATH, MCP_CALL),
        ]
        .into_iter()
        .enumerate()
        {
            for _ in 0..per_round {
                let t = Instant::now();
                client.call(path, body).await?;
                samples[i].push(t.elapsed());
            }
        }
    }
    let [mut f, mut r, mut m] = samples;
    Ok(Sequential {
        mcp: Latency::of(&mut m),
        rest: Latency::of(&mut r),
        floor: Latency::of(&mut f),
    })
}

struct Session {
    initialize: Latency,
    list: Latency,
    tools: usize,
}

/// `initialize` (fresh session, closed again) and `tools/list` latency.
async fn sessions(addr: SocketAddr, token: &str) -> Result<Session, BoxError> {
    let mut c = mcp_connect(addr, token).await?;
    let mut init = Vec::with_capacity(SESSION_RUNS);
    for _ in 0..SESSION_RUNS {
        let t = Instant::now();
        initialize(&mut c).await?;
        init.push(t.elapsed());
        let (status, _, _) = c.exchange(Method::DELETE, MCP_PATH, "").await?;
        if !status.is_success() {
            return Err(format!("DELETE /mcp answered {status}").into());
        }
    }
    initialize(&mut c).await?;
    let (_, body) = c.post(MCP_PATH, MCP_LIST).await?;
    let tools = String::from_utf8_lossy(&body)
        .matches("\"inputSchema\"")
        .count();
    let mut list = Vec::with_capacity(SESSION_RUNS);
    for _ in 0..SESSION_RUNS {
        let t = Instant::now();
        c.call(MCP_PATH, MCP_LIST).await?;
        list.push(t.elapsed());
    }
    Ok(Session {
        initialize: Latency::of(&mut init),
        list: Latency::of(&mut list),
        tools,
    })
}

/// A server with a fresh data dir and an admin; returns it, its services and a token.
fn serve(
    rt: &tokio::runtime::Runtime,
    client_rt: &tokio::runtime::Runtime,
    data: &std::path::Path,
    installs: usize,
) -> Result<(Running, std::sync::Arc<Services>, String), BoxError> {
    let (api, services) = serve_api(rt, data)?;
    let base = format!("http://{}", api.addr);
    let package = target_dir().join("packages/echo-0.1.0.tar.gz");
    let token = client_rt.block_on(async {
        let http = reqwest::Client::new();
        let token = login(&http, &base).await?;
        if installs == 1 {
            install_echo(&http, &base, &token, &package).await?;
        } else {
            install_renamed(&http, &base, &token, &package, installs).await?;
        }
        Ok::<_, BoxError>(token)
    })?;
    Ok((api, services, token))
}

/// Install the echo package `n` times as `echo-01`… through the REST API.
async fn install_renamed(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    package: &std::path::Path,
    n: usize,
) -> Result<(), BoxError> {
    let scratch = tempfile::TempDir::new()?;
    tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(package)?))
        .unpack(scratch.path())?;
    let dir = scratch.path().join("echo");
    let manifest = std::fs::read_to_string(dir.join("plugin.toml"))?;
    let component = std::fs::read(dir.join("echo.wasm"))?;
    for i in 1..=n {
        let name = format!("echo-{i:02}");
        let renamed = manifest.replacen("name = \"echo\"", &format!("name = \"{name}\""), 1);
        let form = reqwest::multipart::Form::new()
            .text("manifest", renamed)
            .part(
                "component",
                reqwest::multipart::Part::bytes(component.clone()).file_name("echo.wasm"),
            );
        let response = http
            .post(format!("{base}/api/v1/plugins?grant=true"))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(format!("installing {name}: {}", response.text().await?).into());
        }
    }
    Ok(())
}

fn line(name: &str, l: &Latency, target: &str) {
    println!(
        "{:<46} {:>9.1} {:>9.1} {:>9.1} {:>9.1}  {target}",
        format!("{name} ({} calls)", l.n),
        l.p50,
        l.p90,
        l.p99,
        l.mean
    );
}

fn main() -> Result<(), BoxError> {
    let calls = env_number("BENCH_CALLS", 5_000).max(100) as usize;
    let secs = env_number("BENCH_SECS", 10).max(1) as f64;
    let backtrace = std::env::var("RUST_BACKTRACE").unwrap_or_default();
    if !matches!(backtrace.as_str(), "" | "0") {
        eprintln!("warning: RUST_BACKTRACE={backtrace} slows wasmtime; run with RUST_BACKTRACE=0");
    }
    if !target_dir().join("packages/echo-0.1.0.tar.gz").exists() {
        return Err("the echo package is missing; run scripts/build-plugins first".into());
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    let data = tempfile::TempDir::new()?;
    let (api, services, token) = serve(&server_rt, &client_rt, data.path(), 1)?;
    let floor = Running::start(&server_rt, floor_filter())?;
    let (seq, loops) = client_rt.block_on(async {
        println!("sequential: {WARMUP_CALLS} warm-up + {calls} calls per route…");
        let seq = sequential(api.addr, floor.addr, &token, calls).await?;
        let mut loops: Vec<(Throughput, Throughput)> = Vec::new();
        for clients in [1, 32] {
            println!("closed loop: {clients} client(s), {secs} s per route…");
            let f = closed_loop(
                connect_many(floor.addr, None, clients).await?,
                FLOOR_PATH,
                REST_CALL,
                secs,
            )
            .await?;
            let mut sessions = Vec::with_capacity(clients);
            for _ in 0..clients {
                sessions.push(mcp_session(api.addr, &token).await?);
            }
            let m = closed_loop(sessions, MCP_PATH, MCP_CALL, secs).await?;
            loops.push((m, f));
        }
        Ok::<_, BoxError>((seq, loops))
    })?;
    api.stop(&server_rt);
    floor.stop(&server_rt);
    server_rt.block_on(services.store.close());
    drop(services);

    println!("installing {PLUGIN_COUNT} plugins, timing initialize and tools/list…");
    let many = tempfile::TempDir::new()?;
    let (api, services, token) = serve(&server_rt, &client_rt, many.path(), PLUGIN_COUNT)?;
    let session = client_rt.block_on(sessions(api.addr, &token))?;
    api.stop(&server_rt);
    server_rt.block_on(services.store.close());
    drop(services);

    let ratio = seq.mcp.p50 / seq.floor.p50;
    println!();
    println!("switchyard MCP benchmark — {cpus} CPUs, streamable HTTP in a session");
    println!(
        "{:<46} {:>9} {:>9} {:>9} {:>9}  target",
        "sequential latency (µs)", "p50", "p90", "p99", "mean"
    );
    line("MCP tools/call echo__echo", &seq.mcp, "");
    line("REST POST /tools/echo/echo:call", &seq.rest, "");
    line("floor: bare warp JSON echo", &seq.floor, "");
    println!(
        "{:<46} {:>9.2} {:>39}  ≤ 1.5 {}",
        "ratio p50 MCP tools/call / floor",
        ratio,
        "",
        if ratio <= 1.5 { "ok" } else { "MISSED" }
    );
    println!();
    println!(
        "{:<46} {:>9} {:>9} {:>9} {:>9}",
        format!("closed loop, {secs} s each"),
        "calls/s",
        "p50 µs",
        "p99 µs",
        "srv CPU µs"
    );
    let mut loops_json = Vec::new();
    for (m, f) in &loops {
        for (name, x) in [("MCP tools/call", m), ("floor", f)] {
            println!(
                "{:<46} {:>9.0} {:>9.1} {:>9.1} {:>9.1}",
                format!("{name} @ {} client(s)", x.connections),
                x.calls_per_sec,
                x.latency.p50,
                x.latency.p99,
                x.server_cpu_us_per_call
            );
        }
        loops_json.push(
            json!({ "clients": m.connections, "mcp_tools_call": m.json(), "floor": f.json() }),
        );
    }
    println!();
    line(
        &format!("initialize, {PLUGIN_COUNT} plugins (new session)"),
        &session.initialize,
        "",
    );
    line(
        &format!(
            "tools/list, {PLUGIN_COUNT} plugins ({} tools)",
            session.tools
        ),
        &session.list,
        "",
    );
    let report: Value = json!({
        "cpus": cpus,
        "sequential": {
            "mcp_tools_call": seq.mcp.json(), "rest_tool_call": seq.rest.json(), "floor": seq.floor.json(),
            "p50_ratio_mcp_floor": round1(ratio * 10.0) / 10.0, "p50_ratio_target": 1.5,
        },
        "throughput": loops_json,
        "plugins_20": {
            "initialize": session.initialize.json(), "tools_list": session.list.json(), "tools": session.tools,
        },
    });
    let out = target_dir().join("bench-mcp.json");
    std::fs::write(&out, serde_json::to_string_pretty(&report)? + "\n")?;
    println!("\nwrote {}", out.display());
    Ok(())
}
