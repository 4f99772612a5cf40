//! Sandbox benchmarks against the real Docker engine, side by side with the
//! raw engine in the same run:
//!
//! 1. warm-pool acquire → first byte of `echo` output (create from the pool,
//!    then exec, timed to the first stdout chunk; each round starts
//!    `BENCH_SETTLE_MS`, default 1000, after the previous sandbox was removed,
//!    since the engine's teardown of it competes for the 2 cores); target p50
//!    ≤ 50 ms;
//! 2. cold create → first output (no pool: volume, container, start, exec)
//!    beside `docker run --rm IMAGE echo` (the CLI, same image); target ≤ 1.2×;
//! 3. exec round trip on a running sandbox (`echo`, collected to the exit code)
//!    on its standby shell, and on a second sandbox with standby shells off
//!    (every command an engine exec), beside `docker exec CONTAINER echo` (the
//!    CLI) and a bare bollard exec on the same container (the engine's own
//!    cost); target ≤ 1.2× `docker exec`.
//!
//! Needs the engine and the worker image (scripts/docker). Run with
//! `RUST_BACKTRACE=0 cargo bench -p switchyard --bench sandbox`. Optional
//! environment: `BENCH_ROUNDS` (default 30; exec rounds are 10× that). Writes
//! `target/bench-sandbox.json`.

#![allow(missing_docs)]
// The served routes nest deeper than the default limit.
#![recursion_limit = "256"]

mod common;

use common::{BoxError, Latency, env_number, target_dir};
use futures_util::StreamExt;
use serde_json::json;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard::config::Config;
use switchyard::sandbox::driver::{Chunk, ExecSpec};
use switchyard::sandbox::exec::{ExecEvent, ExecRequest};
use switchyard::sandbox::{Caller, CreateSandbox, Driver, Sandboxes};
use switchyard::server::Services;
use switchyard::store::Role;

fn echo() -> ExecRequest {
    ExecRequest {
        command: Some("echo hi".into()),
        ..ExecRequest::default()
    }
}

/// Create a sandbox and exec `echo`, timed to the first stdout byte.
async fn create_to_first_byte(
    s: &Arc<Sandboxes>,
    caller: &Caller,
) -> Result<(Duration, String), BoxError> {
    let started = Instant::now();
    let sandbox = s.create(caller, CreateSandbox::default()).await?;
    let mut events = s.exec(caller, &sandbox.id, echo()).await?;
    let mut first = None;
    while let Some(event) = events.recv().await {
        if first.is_none() && matches!(event, ExecEvent::Output(Chunk::Stdout(_))) {
            first = Some(started.elapsed());
        }
    }
    Ok((first.ok_or("no output")?, sandbox.id))
}

fn cli(args: &[&str]) -> Result<Duration, BoxError> {
    let started = Instant::now();
    let out = Command::new("docker").args(args).output()?;
    if !out.status.success() || out.stdout != b"hi\n" {
        return Err(format!("docker {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(started.elapsed())
}

fn ms(l: &Latency) -> serde_json::Value {
    json!({ "p50_ms": (l.p50 / 100.0).round() / 10.0, "p90_ms": (l.p90 / 100.0).round() / 10.0,
            "p99_ms": (l.p99 / 100.0).round() / 10.0, "n": l.n })
}

async fn open(
    dir: &std::path::Path,
    pool: u32,
    standby: bool,
) -> Result<(Arc<Services>, Caller), BoxError> {
    let mut config = Config::new(dir);
    config.cache_dir = target_dir().join("bench-artifact-cache");
    config.sandbox.warm_pool = pool;
    config.sandbox.standby = standby;
    config.sandbox.quota = 1000;
    let services = Services::open(config).await?;
    let user = services
        .store
        .create_user("bench", "x", Role::Admin)
        .await?;
    let caller = Caller {
        user_id: user.id,
        admin: true,
    };
    Ok((services, caller))
}

async fn run(rounds: usize) -> Result<serde_json::Value, BoxError> {
    let image = switchyard::sandbox::limits::DEFAULT_IMAGE;
    // 1. Warm pool.
    let dir = tempfile::TempDir::new()?;
    let (services, caller) = open(dir.path(), 1, true).await?;
    let s = services.sandboxes.clone();
    s.start_background();
    let mut warm = Vec::new();
    let settle = env_number("BENCH_SETTLE_MS", 1000);
    println!("warm pool: {rounds} acquisitions, {settle} ms after the last one's removal…");
    for _ in 0..rounds + 2 {
        let deadline = Instant::now() + Duration::from_secs(30);
        while s.pool_size() == 0 {
            if Instant::now() > deadline {
                return Err("the warm pool did not fill".into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Let the engine finish tearing down the previous round's container.
        tokio::time::sleep(Duration::from_millis(settle)).await;
        let (t, id) = create_to_first_byte(&s, &caller).await?;
        warm.push(t);
        s.delete(&caller, &id, true).await?;
    }
    let warm = Latency::of(&mut warm[2..]);
    s.drain_pool().await;

    // 2. Cold create beside docker run, interleaved.
    let cold_dir = tempfile::TempDir::new()?;
    let (cold_services, caller) = open(cold_dir.path(), 0, true).await?;
    let c = cold_services.sandboxes.clone();
    let (mut cold, mut run_cli) = (Vec::new(), Vec::new());
    println!("cold create: {rounds} rounds beside `docker run --rm`…");
    for _ in 0..rounds + 2 {
        let (t, id) = create_to_first_byte(&c, &caller).await?;
        cold.push(t);
        c.delete(&caller, &id, true).await?;
        run_cli.push(tokio::task::block_in_place(|| {
            cli(&["run", "--rm", "--network", "none", image, "echo", "hi"])
        })?);
    }
    let cold = Latency::of(&mut cold[2..]);
    let run_cli = Latency::of(&mut run_cli[2..]);

    // 3. Exec round trips on one running sandbox.
    let sandbox = c.create(&caller, CreateSandbox::default()).await?;
    let container = cold_services
        .store
        .sandbox(&sandbox.id)
        .await?
        .and_then(|r| r.container_id)
        .ok_or("no container")?;
    let driver = c.driver().clone();
    let plain_dir = tempfile::TempDir::new()?;
    let (plain_services, plain_caller) = open(plain_dir.path(), 0, false).await?;
    let p = plain_services.sandboxes.clone();
    let plain_sandbox = p.create(&plain_caller, CreateSandbox::default()).await?;
    let execs = rounds * 10;
    let (mut ours, mut plain, mut exec_cli, mut bare) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    println!("exec: {execs} rounds beside `docker exec` and a bare bollard exec…");
    for i in 0..execs + 5 {
        let started = Instant::now();
        let r = c.exec_collect(&caller, &sandbox.id, echo()).await?;
        let t = started.elapsed();
        let started = Instant::now();
        let q = p
            .exec_collect(&plain_caller, &plain_sandbox.id, echo())
            .await?;
        let plain_t = started.elapsed();
        if r.stdout != "hi\n" || q.stdout != "hi\n" {
            return Err(format!("unexpected output {:?} {:?}", r.stdout, q.stdout).into());
        }
        let cli_t = tokio::task::block_in_place(|| cli(&["exec", &container, "echo", "hi"]))?;
        let b = bare_exec(&driver, &container).await?;
        if i >= 5 {
            ours.push(t);
            plain.push(plain_t);
            exec_cli.push(cli_t);
            bare.push(b);
        }
    }
    c.delete(&caller, &sandbox.id, true).await?;
    p.delete(&plain_caller, &plain_sandbox.id, true).await?;
    let ours = Latency::of(&mut ours);
    let plain = Latency::of(&mut plain);
    let exec_cli = Latency::of(&mut exec_cli);
    let bare = Latency::of(&mut bare);
    Ok(json!({
        "warm_acquire_to_first_byte": ms(&warm),
        "cold_create_to_first_byte": ms(&cold),
        "docker_run_rm_echo": ms(&run_cli),
        "cold_ratio_p50": (cold.p50 / run_cli.p50 * 100.0).round() / 100.0,
        "exec_round_trip": ms(&ours),
        "exec_round_trip_without_standby": ms(&plain),
        "docker_exec_echo": ms(&exec_cli),
        "bollard_exec_echo": ms(&bare),
        "exec_ratio_p50_vs_docker_exec": (ours.p50 / exec_cli.p50 * 100.0).round() / 100.0,
        "exec_ratio_p50_vs_bollard": (ours.p50 / bare.p50 * 100.0).round() / 100.0,
    }))
}

async fn bare_exec(driver: &Arc<dyn Driver>, container: &str) -> Result<Duration, BoxError> {
    let started = Instant::now();
    let spec = ExecSpec {
        argv: vec!["echo".into(), "hi".into()],
        workdir: "/workspace".into(),
        ..ExecSpec::default()
    };
    let mut session = driver.exec(container, &spec).await?;
    while session.output.next().await.is_some() {}
    let mut code = driver.exec_exit(&session.id).await?;
    while code.is_none() {
        tokio::time::sleep(Duration::from_millis(1)).await;
        code = driver.exec_exit(&session.id).await?;
    }
    Ok(started.elapsed())
}

fn main() -> Result<(), BoxError> {
    let rounds = env_number("BENCH_ROUNDS", 30).max(5) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let results = rt.block_on(run(rounds))?;
    println!("{}", serde_json::to_string_pretty(&results)?);
    let out = target_dir().join("bench-sandbox.json");
    std::fs::write(&out, serde_json::to_vec_pretty(&results)?)?;
    println!("wrote {}", out.display());
    Ok(())
}
