//! Task pipeline benchmarks, in one run on a real server (SQLite, the real
//! Docker engine and worker image, the scripted fake LLM for agent tasks):
//!
//! 1. dispatch overhead: `Tasks::create` returns → a follower sees the
//!    `running` event (the claim, its commit and the fan-out); target p50
//!    ≤ 5 ms, p99 ≤ 20 ms;
//! 2. REST `POST /api/v1/tasks` (exec `echo`) → first `output` frame on a
//!    WebSocket subscribed to the session, warm sandbox; target p50 ≤ 25 ms,
//!    beside a direct `Sandboxes::exec` to the first stdout chunk on the same
//!    sandbox (the floor); rounds are `BENCH_PAUSE_MS` (default 50) apart, so
//!    the sandbox's standby shell is ready for each command, as between a
//!    person's or an agent's commands;
//! 3. throughput: trivial exec tasks (`true`) completed per second with 8
//!    sessions in parallel; agent tasks per second against the fake LLM with
//!    zero think time (8 sessions, one step each: the orchestration alone);
//! 4. fan-out: one task's events to 100 WebSocket subscribers, delivery
//!    latency from the event's commit time (ms clock) to each subscriber's
//!    receipt; target p99 ≤ 10 ms.
//!
//! Needs the engine and the worker image (scripts/docker). Run with
//! `cargo bench -p switchyard --bench tasks`. `BENCH_ROUNDS` (default 200)
//! and `BENCH_SECS` (default 10, per throughput run). Writes
//! `target/bench-tasks.json`.

#![allow(missing_docs)]

mod common;

use common::{BoxError, Latency, env_number, target_dir};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use switchyard::agent::config::{ApiKey, ProviderKind};
use switchyard::sandbox::driver::Chunk;
use switchyard::sandbox::exec::{ExecEvent, ExecRequest};
use switchyard::server::Services;
use switchyard::store::TaskKind;
use switchyard::tasks::{Caller, NewTask, Origin};
use switchyard_fake_llm::{FakeLlm, Reply};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn ms(l: &Latency) -> Value {
    json!({ "p50_ms": (l.p50 / 10.0).round() / 100.0, "p90_ms": (l.p90 / 10.0).round() / 100.0,
            "p99_ms": (l.p99 / 10.0).round() / 100.0, "n": l.n })
}

async fn ws(base: &str, token: &str) -> Result<Ws, BoxError> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("{}/api/v1/ws", base.replacen("http", "ws", 1)).into_client_request()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(tokio_tungstenite::connect_async(req).await?.0)
}

async fn frame(ws: &mut Ws) -> Result<Value, BoxError> {
    loop {
        match tokio::time::timeout(Duration::from_secs(60), ws.next()).await? {
            Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t)?),
            Some(Ok(_)) => {}
            _ => return Err("the socket closed".into()),
        }
    }
}

fn exec(command: &str, session: Option<String>) -> NewTask {
    NewTask {
        kind: TaskKind::Exec,
        session_id: session,
        input: json!({ "command": command }),
    }
}

/// Wait for a task's `done` through a follower.
async fn until_done(s: &Services, caller: &Caller, id: &str) -> Result<(), BoxError> {
    let mut f = s.tasks.follow(caller, id, 0).await?;
    while let Some(e) = f.next().await? {
        if e.is_done() {
            return Ok(());
        }
    }
    Ok(())
}

async fn dispatch(s: &Services, caller: &Caller, rounds: usize) -> Result<Latency, BoxError> {
    let first = s
        .tasks
        .create(caller, exec("true", None), Origin::Rest)
        .await?;
    until_done(s, caller, &first.id).await?;
    let session = Some(first.session_id);
    let mut samples = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let t = s
            .tasks
            .create(caller, exec("true", session.clone()), Origin::Rest)
            .await?;
        let mut f = s.tasks.follow(caller, &t.id, 0).await?;
        let mut seen = None;
        while let Some(e) = f.next().await? {
            if seen.is_none() && e.kind == "status" && e.data["status"] == "running" {
                seen = Some(started.elapsed());
            }
            if e.is_done() {
                break;
            }
        }
        samples.push(seen.ok_or("never running")?);
    }
    Ok(Latency::of(&mut samples))
}

async fn first_output(
    s: &Services,
    caller: &Caller,
    base: &str,
    token: &str,
    rounds: usize,
) -> Result<(Latency, Latency), BoxError> {
    let http = reqwest::Client::new();
    let warm = s
        .tasks
        .create(caller, exec("true", None), Origin::Rest)
        .await?;
    until_done(s, caller, &warm.id).await?;
    let session = warm.session_id.clone();
    let mut socket = ws(base, token).await?;
    socket
        .send(Message::text(
            json!({ "type": "subscribe", "session_id": session }).to_string(),
        ))
        .await?;
    let pause = Duration::from_millis(env_number("BENCH_PAUSE_MS", 50));
    let mut samples = Vec::new();
    for _ in 0..rounds {
        tokio::time::sleep(pause).await;
        let started = Instant::now();
        let r = http
            .post(format!("{base}/api/v1/tasks"))
            .bearer_auth(token)
            .json(&json!({ "kind": "exec", "session_id": session, "input": { "command": "echo hi" } }))
            .send()
            .await?;
        if r.status() != 202 {
            return Err(format!("create answered {}", r.status()).into());
        }
        let id = r.json::<Value>().await?["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut got = None;
        loop {
            let f = frame(&mut socket).await?;
            if f["task_id"] != id.as_str() {
                continue;
            }
            if got.is_none() && f["type"] == "output" {
                got = Some(started.elapsed());
            }
            if f["type"] == "done" {
                break;
            }
        }
        samples.push(got.ok_or("no output")?);
    }
    // The floor: a direct exec on the same sandbox, to its first stdout chunk.
    let sandbox = s
        .tasks
        .session(caller, &session)
        .await?
        .sandbox_id
        .ok_or("no sandbox")?;
    let sc = Caller {
        user_id: caller.user_id.clone(),
        admin: true,
    };
    let mut direct = Vec::new();
    for _ in 0..rounds {
        tokio::time::sleep(pause).await;
        let started = Instant::now();
        let req = ExecRequest {
            command: Some("echo hi".into()),
            ..ExecRequest::default()
        };
        let mut rx = s.sandboxes.exec(&sc, &sandbox, req).await?;
        let mut got = None;
        while let Some(e) = rx.recv().await {
            if got.is_none() && matches!(e, ExecEvent::Output(Chunk::Stdout(_))) {
                got = Some(started.elapsed());
            }
        }
        direct.push(got.ok_or("no output")?);
    }
    Ok((Latency::of(&mut samples), Latency::of(&mut direct)))
}

/// Tasks completed per second: `sessions` loops, each queueing one task and
/// waiting for it, for `secs`.
async fn throughput(
    s: &Arc<Services>,
    caller: &Caller,
    kind: TaskKind,
    sessions: usize,
    secs: u64,
) -> Result<f64, BoxError> {
    let mut ids = Vec::new();
    for _ in 0..sessions {
        let sess = s
            .tasks
            .create_session(caller, switchyard::tasks::sessions::NewSession::default())
            .await?;
        ids.push(sess.id);
    }
    let input = match kind {
        TaskKind::Exec => json!({ "command": "true" }),
        TaskKind::Agent => json!({ "content": "hi" }),
    };
    // Warm up: every session gets its sandbox (exec) or history (agent).
    for id in &ids {
        let t = s
            .tasks
            .create(
                caller,
                NewTask {
                    kind,
                    session_id: Some(id.clone()),
                    input: input.clone(),
                },
                Origin::Rest,
            )
            .await?;
        until_done(s, caller, &t.id).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut loops = Vec::new();
    for id in ids {
        let (s, caller, input) = (s.clone(), caller.clone(), input.clone());
        loops.push(tokio::spawn(async move {
            let mut done = 0u64;
            while Instant::now() < deadline {
                let t = s
                    .tasks
                    .create(
                        &caller,
                        NewTask {
                            kind,
                            session_id: Some(id.clone()),
                            input: input.clone(),
                        },
                        Origin::Rest,
                    )
                    .await?;
                until_done(&s, &caller, &t.id).await?;
                done += 1;
            }
            Ok::<_, BoxError>(done)
        }));
    }
    let mut total = 0;
    for l in loops {
        total += l.await??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

async fn fan_out(
    s: &Services,
    caller: &Caller,
    base: &str,
    token: &str,
    subscribers: usize,
) -> Result<Latency, BoxError> {
    let warm = s
        .tasks
        .create(caller, exec("true", None), Origin::Rest)
        .await?;
    until_done(s, caller, &warm.id).await?;
    // The task waits for its subscribers before printing.
    let t = s
        .tasks
        .create(
            caller,
            exec(
                "sleep 3; for i in $(seq 1 100); do echo $i; sleep 0.02; done",
                Some(warm.session_id),
            ),
            Origin::Rest,
        )
        .await?;
    let mut sockets = Vec::new();
    for _ in 0..subscribers {
        let mut w = ws(base, token).await?;
        w.send(Message::text(
            json!({ "type": "subscribe", "task_id": t.id }).to_string(),
        ))
        .await?;
        sockets.push(w);
    }
    let mut readers = Vec::new();
    for mut w in sockets {
        let id = t.id.clone();
        readers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let f = frame(&mut w).await?;
                if f["task_id"] != id.as_str() || f.get("snapshot").is_some() {
                    continue;
                }
                let now_us = SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros() as i64;
                if f["type"] == "output" {
                    let sent_us = f["time"].as_i64().unwrap_or(0) * 1000;
                    lat.push(Duration::from_micros((now_us - sent_us).max(0) as u64));
                }
                if f["type"] == "done" {
                    if lat.is_empty() {
                        return Err(format!("no output events before done: {f}").into());
                    }
                    return Ok::<_, BoxError>(lat);
                }
            }
        }));
    }
    let mut all = Vec::new();
    for r in readers {
        all.extend(r.await??);
    }
    Ok(Latency::of(&mut all))
}

fn main() -> Result<(), BoxError> {
    let rounds = env_number("BENCH_ROUNDS", 200) as usize;
    let secs = env_number("BENCH_SECS", 10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let llm = rt.block_on(FakeLlm::start());
    llm.set_responder(|_, _| Reply::text("ok"));
    let dir = tempfile::TempDir::new()?;
    let mut config = switchyard::config::Config::new(dir.path());
    config.cache_dir = target_dir().join("bench-artifact-cache");
    config.sandbox.quota = 1000;
    config.sandbox.storage_quota_mb = 1 << 30;
    config.sandbox.warm_pool = 0;
    config.tasks.max_running_per_user = 16;
    config.tasks.max_queued_per_user = 10_000;
    config.llm.provider = Some(ProviderKind::OpenAi);
    config.llm.base_url = Some(llm.base_url_openai());
    config.llm.model = Some("fake".into());
    config.llm.api_key = Some(ApiKey::new("bench"));
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
    let base = format!("http://{}", server.addr);
    let report = rt.block_on(async {
        let http = reqwest::Client::new();
        let token = common::login(&http, &base).await?;
        let (user, _) = services.store.user_for_login("admin").await?;
        let caller = Caller {
            user_id: user.id,
            admin: true,
        };
        println!("dispatch overhead: {rounds} tasks…");
        let d = dispatch(&services, &caller, rounds).await?;
        println!(
            "  p50 {:.2} ms, p99 {:.2} ms",
            d.p50 / 1000.0,
            d.p99 / 1000.0
        );
        println!("REST create → first output over WebSocket (warm sandbox): {rounds} tasks…");
        let (o, direct) = first_output(&services, &caller, &base, &token, rounds).await?;
        println!(
            "  p50 {:.2} ms (direct exec {:.2} ms)",
            o.p50 / 1000.0,
            direct.p50 / 1000.0
        );
        println!("throughput: exec tasks, 8 sessions, {secs} s…");
        let exec_tps = throughput(&services, &caller, TaskKind::Exec, 8, secs).await?;
        println!("  {exec_tps:.1} tasks/s");
        println!("throughput: agent tasks against the fake LLM, 8 sessions, {secs} s…");
        let agent_tps = throughput(&services, &caller, TaskKind::Agent, 8, secs).await?;
        println!("  {agent_tps:.1} tasks/s");
        println!("fan-out: one task's events to 100 WebSocket subscribers…");
        let f = fan_out(&services, &caller, &base, &token, 100).await?;
        println!(
            "  p50 {:.2} ms, p99 {:.2} ms",
            f.p50 / 1000.0,
            f.p99 / 1000.0
        );
        let all = services
            .sandboxes
            .list(
                &Caller {
                    user_id: caller.user_id.clone(),
                    admin: true,
                },
                true,
                None,
                500,
            )
            .await?;
        for sb in all.0 {
            let _ = services
                .sandboxes
                .delete(
                    &Caller {
                        user_id: caller.user_id.clone(),
                        admin: true,
                    },
                    &sb.id,
                    true,
                )
                .await;
        }
        Ok::<_, BoxError>(json!({
            "dispatch_overhead": ms(&d),
            "rest_to_first_ws_output": ms(&o),
            "direct_exec_first_output": ms(&direct),
            "exec_tasks_per_sec_8_sessions": (exec_tps * 10.0).round() / 10.0,
            "agent_tasks_per_sec_8_sessions_fake_llm": (agent_tps * 10.0).round() / 10.0,
            "fan_out_100_subscribers": ms(&f),
        }))
    })?;
    server.stop(&rt);
    let text = serde_json::to_string_pretty(&report)?;
    println!("{text}");
    std::fs::write(target_dir().join("bench-tasks.json"), text)?;
    Ok(())
}
