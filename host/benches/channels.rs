//! Channel benchmarks, in one run on a real server (SQLite, the real GitHub
//! channel plugin verifying every signature; tasks are queued, not run):
//!
//! 1. latency: a signed GitHub `issue_comment` webhook sent → the new task's
//!    first event on a WebSocket subscribed to the conversation's session;
//!    target p50 ≤ 5 ms;
//! 2. throughput: signed webhooks per second, each with a new delivery id (so
//!    each queues a task), 8 keep-alive connections in closed loops; target
//!    ≥ 2,000/s on 2 cores, beside the floor in the same run: a bare warp route
//!    that only checks the HMAC in Rust.
//!
//! Run with `cargo bench -p switchyard --bench channels`. `BENCH_ROUNDS`
//! (default 200), `BENCH_SECS` (default 10). Writes `target/bench-channels.json`.

#![allow(missing_docs)]

mod common;

use common::{BoxError, Latency, cpu_seconds, env_number, target_dir};
use futures_util::{SinkExt, StreamExt};
use hmac::Mac;
use hyper::{Method, Request, StatusCode};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use switchyard::server::Services;
use tokio_tungstenite::tungstenite::Message;
use warp::{Filter, Reply};

const SECRET: &str = "bench-webhook-secret";

fn sign(body: &[u8]) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(SECRET.as_bytes())
        .expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn comment(issue: u64) -> String {
    json!({
        "action": "created",
        "issue": { "number": issue, "title": "Bench" },
        "comment": { "id": 1, "body": "@switchyard please look", "user": { "login": "bench", "type": "User" } },
        "repository": { "full_name": "acme/bench" }
    })
    .to_string()
}

/// The floor: verify the signature in Rust and answer 202.
fn floor()
-> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone + Send + Sync + 'static
{
    warp::path!("hook")
        .and(warp::post())
        .and(warp::header::<String>("x-hub-signature-256"))
        .and(warp::body::bytes())
        .map(|sig: String, body: bytes::Bytes| {
            if sig == sign(&body) {
                StatusCode::ACCEPTED.into_response()
            } else {
                StatusCode::UNAUTHORIZED.into_response()
            }
        })
        .recover(|_| async { Ok::<_, Infallible>(StatusCode::NOT_FOUND.into_response()) })
        .unify()
}

/// One signed webhook over a keep-alive connection; the status.
async fn send(
    c: &mut common::Client,
    path: &str,
    delivery: u64,
    body: &str,
) -> Result<StatusCode, BoxError> {
    c.sender.ready().await?;
    let req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("host", c.host.clone())
        .header("content-type", "application/json")
        .header("x-github-event", "issue_comment")
        .header("x-github-delivery", delivery.to_string())
        .header("x-hub-signature-256", sign(body.as_bytes()))
        .body(body.to_string())?;
    let response = c.sender.send_request(req).await?;
    let status = response.status();
    common::read_body(response.into_body()).await?;
    Ok(status)
}

/// Webhooks per second from `connections` closed loops for `secs`.
async fn throughput(
    addr: std::net::SocketAddr,
    path: &'static str,
    connections: usize,
    secs: u64,
) -> Result<f64, BoxError> {
    let ids = Arc::new(AtomicU64::new(1_000_000));
    let body = Arc::new(comment(1));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let mut c = common::Client::connect(addr, None).await?;
        let (ids, body) = (ids.clone(), body.clone());
        tasks.spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let status = send(&mut c, path, ids.fetch_add(1, Ordering::Relaxed), &body).await?;
                if status != StatusCode::ACCEPTED {
                    return Err::<u64, BoxError>(format!("{path} answered {status}").into());
                }
                n += 1;
            }
            Ok(n)
        });
    }
    let mut total = 0;
    while let Some(r) = tasks.join_next().await {
        total += r??;
    }
    Ok(total as f64 / secs as f64)
}

fn main() -> Result<(), BoxError> {
    let rounds = env_number("BENCH_ROUNDS", 200);
    let secs = env_number("BENCH_SECS", 10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = tempfile::TempDir::new()?;
    let mut config = switchyard::config::Config::new(dir.path());
    config.cache_dir = target_dir().join("bench-artifact-cache");
    config.tasks.max_running = 0;
    config.tasks.max_queued_per_user = u32::MAX;
    config.channels.default_rate_per_minute = 600_000;
    let services = rt.block_on(async {
        let services = Services::open(config).await?;
        let hash = switchyard::auth::password::hash("benchpass1")?;
        services
            .store
            .create_user("admin", &hash, switchyard::store::Role::Admin)
            .await?;
        Ok::<_, BoxError>(services)
    })?;
    let routes = {
        let _runtime = rt.enter();
        switchyard::api::routes(services.clone())
    };
    let server = common::Running::start(&rt, routes)?;
    let floor_server = common::Running::start(&rt, floor())?;
    let base = format!("http://{}", server.addr);
    let report = rt.block_on(async {
        let http = reqwest::Client::new();
        let token = common::login(&http, &base).await?;
        setup(&http, &base, &token).await?;
        println!("signed webhook → first WebSocket event: {rounds} webhooks…");
        let l = latency(&base, &token, server.addr, rounds).await?;
        println!(
            "  p50 {:.2} ms, p99 {:.2} ms",
            l.p50 / 1000.0,
            l.p99 / 1000.0
        );
        println!("throughput: signed webhooks, 8 connections, {secs} s (tasks queued, not run)…");
        let cpu = cpu_seconds("/proc/self/stat");
        let hooks = throughput(server.addr, "/api/v1/channels/github/webhook", 8, secs).await?;
        let hook_cpu = cpu_per_request(cpu, hooks, secs);
        let batch = mean_batch(&services);
        println!(
            "  {hooks:.0}/s ({batch:.1} messages per intake transaction on average, \
             {hook_cpu:.0} µs CPU per webhook with the client)"
        );
        let cpu = cpu_seconds("/proc/self/stat");
        let floor_rate = throughput(floor_server.addr, "/hook", 8, secs).await?;
        let floor_cpu = cpu_per_request(cpu, floor_rate, secs);
        println!(
            "  floor (bare warp + HMAC): {floor_rate:.0}/s ({floor_cpu:.0} µs CPU per request)"
        );
        Ok::<_, BoxError>(json!({
            "webhook_to_first_ws_event": l.json(),
            "webhooks_per_sec": hooks.round(),
            "messages_per_intake_transaction": (batch * 10.0).round() / 10.0,
            "cpu_us_per_webhook": hook_cpu.round(),
            "floor_per_sec": floor_rate.round(),
            "cpu_us_per_floor_request": floor_cpu.round(),
        }))
    })?;
    server.stop(&rt);
    floor_server.stop(&rt);
    let out = target_dir().join("bench-channels.json");
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    println!("wrote {}", out.display());
    Ok(())
}

/// Process CPU µs (server and client together) per request of a phase that
/// began at `since` CPU seconds and ran `secs` at `rate` requests per second.
fn cpu_per_request(since: f64, rate: f64, secs: u64) -> f64 {
    (cpu_seconds("/proc/self/stat") - since) * 1e6 / (rate * secs as f64).max(1.0)
}

/// The mean size of the store's intake batches so far (from the metrics).
fn mean_batch(services: &Services) -> f64 {
    services.metrics.run_upkeep();
    let text = services.metrics.render();
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    value("switchyard_channel_intake_batch_sum")
        / value("switchyard_channel_intake_batch_count").max(1.0)
}

async fn setup(http: &reqwest::Client, base: &str, token: &str) -> Result<(), BoxError> {
    let package = std::fs::read(target_dir().join("packages/github-0.1.0.tar.gz"))
        .map_err(|e| format!("build the plugins first (scripts/build-plugins): {e}"))?;
    let r = http
        .post(format!("{base}/api/v1/plugins?grant=true"))
        .bearer_auth(token)
        .header("content-type", "application/gzip")
        .body(package)
        .send()
        .await?;
    if !r.status().is_success() {
        return Err(format!("install: {}", r.text().await?).into());
    }
    let r = http
        .post(format!("{base}/api/v1/channels"))
        .bearer_auth(token)
        .json(&json!({ "plugin": "github", "secrets": { "webhook_secret": SECRET, "token": "t" } }))
        .send()
        .await?;
    if !r.status().is_success() {
        return Err(format!("channel: {}", r.text().await?).into());
    }
    Ok(())
}

async fn latency(
    base: &str,
    token: &str,
    addr: std::net::SocketAddr,
    rounds: u64,
) -> Result<Latency, BoxError> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let body = comment(2);
    let mut c = common::Client::connect(addr, None).await?;
    // The first webhook makes the conversation's session.
    if send(&mut c, "/api/v1/channels/github/webhook", 1, &body).await? != StatusCode::ACCEPTED {
        return Err("the first webhook was not accepted".into());
    }
    let http = reqwest::Client::new();
    let tasks: Value = http
        .get(format!("{base}/api/v1/tasks?origin=webhook&limit=1"))
        .bearer_auth(token)
        .send()
        .await?
        .json()
        .await?;
    let session = tasks["items"][0]["session_id"]
        .as_str()
        .ok_or("no task")?
        .to_string();
    let mut req = format!("{}/api/v1/ws", base.replacen("http", "ws", 1)).into_client_request()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let mut ws = tokio_tungstenite::connect_async(req).await?.0;
    ws.send(Message::text(
        json!({ "type": "subscribe", "session_id": session }).to_string(),
    ))
    .await?;
    let mut seen = std::collections::HashSet::from([tasks["items"][0]["id"]
        .as_str()
        .ok_or("no task id")?
        .to_string()]);
    let mut samples = Vec::new();
    for round in 0..rounds {
        let t = Instant::now();
        if send(&mut c, "/api/v1/channels/github/webhook", 10 + round, &body).await?
            != StatusCode::ACCEPTED
        {
            return Err("a webhook was not accepted".into());
        }
        loop {
            let f = match tokio::time::timeout(Duration::from_secs(30), ws.next()).await? {
                Some(Ok(Message::Text(t))) => serde_json::from_str::<Value>(&t)?,
                Some(Ok(_)) => continue,
                _ => return Err("the socket closed".into()),
            };
            if f["seq"] == 1
                && f["type"] == "status"
                && let Some(id) = f["task_id"].as_str()
                && seen.insert(id.to_string())
            {
                samples.push(t.elapsed());
                break;
            }
        }
    }
    Ok(Latency::of(&mut samples))
}
