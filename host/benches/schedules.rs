//! Scheduler benchmark on a real server's services (SQLite; tasks are queued,
//! not run): 10,000 active schedules — 9,000 cron schedules in several
//! time zones that do not fall due during the run (the first of a month half a year away), and 1,000 hourly ones whose
//! first slots are spread over ten seconds.
//!
//! 1. idle CPU: the whole process's CPU while the 10,000 schedules are active
//!    and none is due; target < 2 % of one core;
//! 2. start lag: for each of the 1,000 due runs, its task's queued time minus
//!    its slot; target: every run started within 1 s of its time.
//!
//! Run with `cargo bench -p switchyard --bench schedules`. `BENCH_IDLE_SECS`
//! (default 20). Writes `target/bench-schedules.json`.

#![allow(missing_docs)]

mod common;

use common::{BoxError, cpu_now, env_number, round1, target_dir};
use serde_json::json;
use std::time::{Duration, Instant};
use switchyard::schedules::NewSchedule;
use switchyard::server::Services;
use switchyard::store::now_ms;
use switchyard::tasks::Caller;

const ZONES: [&str; 6] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Sao_Paulo",
];

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .expect("a time")
        .to_string()
}

fn main() -> Result<(), BoxError> {
    let idle_secs = env_number("BENCH_IDLE_SECS", 20);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = tempfile::TempDir::new()?;
    let mut config = switchyard::config::Config::new(dir.path());
    config.cache_dir = target_dir().join("bench-artifact-cache");
    config.tasks.max_running = 0;
    config.tasks.max_queued_per_user = u32::MAX;
    config.schedules.max_per_user = 20_000;
    let report = rt.block_on(async {
        let services = Services::open(config).await?;
        let hash = switchyard::auth::password::hash("benchpass1")?;
        let admin = services
            .store
            .create_user("admin", &hash, switchyard::store::Role::Admin)
            .await?;
        let caller = Caller {
            user_id: admin.id.clone(),
            admin: true,
        };
        let schedules = &services.schedules;
        // Cron schedules on the first of a month half a year away: active,
        // and not due while we measure.
        let month = (jiff::Zoned::now().month() + 5) % 12 + 1;
        println!("creating 9,000 cron schedules…");
        let started = Instant::now();
        for i in 0..9_000 {
            let spec = json!({
                "name": format!("monthly-{i}"),
                "trigger": { "type": "cron", "expression": format!("{} {} 1 {month} *", i % 60, (i / 60) % 24), "timezone": ZONES[i % ZONES.len()] },
                "task": { "kind": "exec", "input": { "command": "true" } },
            });
            schedules.create(&caller, serde_json::from_value::<NewSchedule>(spec)?).await?;
        }
        println!("  {:.1} s", started.elapsed().as_secs_f64());
        let first_slot = now_ms() + i64::try_from(idle_secs * 1000 + 20_000).unwrap_or(0);
        println!("creating 1,000 hourly schedules, first runs over 10 s from {}…", rfc3339(first_slot));
        let mut due = Vec::new();
        for i in 0..1_000i64 {
            let slot = first_slot + i * 10;
            let spec = json!({
                "name": format!("hourly-{i}"),
                "trigger": { "type": "interval", "every_secs": 3600, "start_at": rfc3339(slot) },
                "task": { "kind": "agent", "input": { "content": "report" } },
            });
            let s = schedules.create(&caller, serde_json::from_value::<NewSchedule>(spec)?).await?;
            due.push((s.id, slot));
        }
        let settle = first_slot - now_ms() - i64::try_from(idle_secs * 1000).unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(u64::try_from(settle.max(0)).unwrap_or(0))).await;
        println!("idle: 10,000 active schedules, none due, {idle_secs} s…");
        let (cpu0, _) = cpu_now();
        let wall = Instant::now();
        tokio::time::sleep(Duration::from_secs(idle_secs)).await;
        let idle_pct = (cpu_now().0 - cpu0) / wall.elapsed().as_secs_f64() * 100.0;
        println!("  {idle_pct:.2} % of one core");
        let last = first_slot + 10_000;
        tokio::time::sleep(Duration::from_millis(u64::try_from(last - now_ms() + 3_000).unwrap_or(0))).await;
        let mut lags = Vec::new();
        let mut missing = 0;
        for (id, slot) in &due {
            let runs = schedules.runs(&caller, id, None, 10).await?;
            match runs.iter().find(|r| r.slot_ms == *slot).and_then(|r| r.task_id.clone()) {
                Some(task) => {
                    let row = services.store.task(&task).await?.ok_or("no task")?;
                    lags.push(Duration::from_millis(u64::try_from(row.queued_at - slot).unwrap_or(0)));
                }
                None => missing += 1,
            }
        }
        let lag = common::Latency::of(&mut lags);
        let max_ms = lags.iter().max().map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        println!(
            "start lag of 1,000 due runs: p50 {:.1} ms, p99 {:.1} ms, max {max_ms:.1} ms, not started {missing}",
            lag.p50 / 1000.0,
            lag.p99 / 1000.0
        );
        Ok::<_, BoxError>(json!({
            "active_schedules": 10_000,
            "idle_cpu_percent": round1(idle_pct * 10.0) / 10.0,
            "start_lag": lag.json(),
            "start_lag_max_ms": round1(max_ms),
            "not_started": missing,
        }))
    })?;
    let out = target_dir().join("bench-schedules.json");
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    println!("wrote {}", out.display());
    Ok(())
}
