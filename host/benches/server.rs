//! Server benchmarks: the whole HTTP path of a tool call, beside a bare warp JSON
//! echo (the floor) served by the same accept loop, measured in the same run:
//!
//! 1. sequential REST tool-call latency (`POST /api/v1/tools/echo/echo:call`),
//!    p50/p90/p99 over 5,000 calls after 500 warm-up calls;
//! 2. the floor: the same body to a bare warp JSON echo route on the same
//!    [`serve`](switchyard::api::serve::serve) loop; ratio p50(tool)/p50(floor) (target ≤ 1.5);
//! 3. closed-loop throughput with 8 and 32 keep-alive connections, ~10 s each
//!    (target ≥ 10,000 calls/s on 2 cores), tool call and floor;
//! 4. `Services::open` with 20 installed plugins and a warm artifact cache (target ≤ 300 ms):
//!    the echo package under the names `echo-01`…`echo-20` (so 20 identical components
//!    sharing one cached artifact), installed with `open_manager` + `install`, the cache
//!    in the data dir (`<data>/cache`, where part 5's binary looks too);
//! 5. idle RSS of the real `switchyard serve` over that data dir, 1 s after it printed
//!    `listening on` (target ≤ 40 MB), beside the same with no plugin; also PSS, since
//!    RSS counts a file page once per mapping.
//!
//! The servers run on their own multi-threaded tokio runtime (as `switchyard serve`
//! does); the load client is a raw hyper HTTP/1.1 connection per client task
//! (keep-alive, TCP_NODELAY) on a separate single-threaded runtime, so the client
//! costs one thread. Both share the machine's cores.
//!
//! Needs the packages from `scripts/build-plugins`. Run with
//! `RUST_BACKTRACE=0 cargo bench -p switchyard --bench server`
//! (RUST_BACKTRACE=1 makes wasmtime instantiation slower). Optional environment:
//! `BENCH_CALLS` (sequential calls per route, default 5000), `BENCH_SECS` (seconds
//! per throughput run, default 10). Writes the figures to `target/bench-server.json`.

#![allow(missing_docs)]
// The served routes nest deeper than the default limit.
#![recursion_limit = "256"]

mod common;

use common::{
    BoxError, Client, Latency, Running, closed_loop, connect_many, env_number, floor_filter,
    install_echo, login, round1, serve_api, status_field_kb, target_dir,
};
use hyper::StatusCode;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use switchyard::config::Config;
use switchyard::server::Services;

const TOOL_PATH: &str = "/api/v1/tools/echo/echo:call";
const FLOOR_PATH: &str = "/echo";
const CALL_BODY: &str = r#"{"arguments":{"text":"hi"}}"#;
const WARMUP_CALLS: usize = 500;
const PLUGIN_COUNT: usize = 20;
const OPEN_RUNS: usize = 5;

// ---------------------------------------------------------------------------
// Measurements.

/// Sequential latencies of both routes, interleaved in rounds so that machine
/// noise hits both alike.
async fn sequential(
    tool: SocketAddr,
    floor: SocketAddr,
    token: &str,
    calls: usize,
) -> Result<(Latency, Latency), BoxError> {
    let mut tool_client = Client::connect(tool, Some(token)).await?;
    let mut floor_client = Client::connect(floor, None).await?;
    let (status, body) = tool_client.post(TOOL_PATH, CALL_BODY).await?;
    let text = String::from_utf8_lossy(&body);
    if status != StatusCode::OK || !text.contains("\"hi\"") {
        return Err(format!("the tool call answered {status}: {text}").into());
    }
    println!("tool call answer: {text}");
    let (status, body) = floor_client.post(FLOOR_PATH, CALL_BODY).await?;
    if status != StatusCode::OK || body != CALL_BODY.as_bytes() {
        return Err(format!(
            "the floor answered {status}: {}",
            String::from_utf8_lossy(&body)
        )
        .into());
    }
    for _ in 0..WARMUP_CALLS {
        tool_client.call(TOOL_PATH, CALL_BODY).await?;
        floor_client.call(FLOOR_PATH, CALL_BODY).await?;
    }
    let rounds = 5;
    let per_round = calls.div_ceil(rounds);
    let mut tool_samples = Vec::with_capacity(per_round * rounds);
    let mut floor_samples = Vec::with_capacity(per_round * rounds);
    for _ in 0..rounds {
        for _ in 0..per_round {
            let t = Instant::now();
            floor_client.call(FLOOR_PATH, CALL_BODY).await?;
            floor_samples.push(t.elapsed());
        }
        for _ in 0..per_round {
            let t = Instant::now();
            tool_client.call(TOOL_PATH, CALL_BODY).await?;
            tool_samples.push(t.elapsed());
        }
    }
    Ok((
        Latency::of(&mut tool_samples),
        Latency::of(&mut floor_samples),
    ))
}

/// Unpack the echo package and install it `PLUGIN_COUNT` times under distinct
/// names (`echo-01`…) into `config`'s data dir, warming its artifact cache.
async fn install_many(config: &Config, package: &Path, scratch: &Path) -> Result<(), BoxError> {
    let unpacked = scratch.join("unpacked");
    tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(package)?))
        .unpack(&unpacked)?;
    let source = unpacked.join("echo");
    let manifest = std::fs::read_to_string(source.join("plugin.toml"))?;
    if !manifest.contains("name = \"echo\"") {
        return Err("the echo package's plugin.toml has no `name = \"echo\"` line".into());
    }
    let manager = switchyard::server::open_manager(config).await?;
    for i in 1..=PLUGIN_COUNT {
        let name = format!("echo-{i:02}");
        let dir = scratch.join(&name);
        std::fs::create_dir_all(&dir)?;
        for entry in std::fs::read_dir(&source)? {
            let entry = entry?;
            std::fs::copy(entry.path(), dir.join(entry.file_name()))?;
        }
        std::fs::write(
            dir.join("plugin.toml"),
            manifest.replacen("name = \"echo\"", &format!("name = \"{name}\""), 1),
        )?;
        manager
            .install(
                &dir,
                &switchyard::plugins::InstallOptions {
                    grant_all: true,
                    owner_id: None,
                },
            )
            .await?;
    }
    manager.store().close().await;
    Ok(())
}

struct OpenTimes {
    median_ms: f64,
    min_ms: f64,
    max_ms: f64,
    manager_ms: f64,
    plugins_ms: f64,
}

/// Time `Services::open` over the 20-plugin data dir, plus its two main parts.
async fn time_open(config: &Config) -> Result<OpenTimes, BoxError> {
    // One untimed open: page cache and anything done on first open.
    let services = Services::open(config.clone()).await?;
    let live = services.plugins.snapshot().len();
    if live != PLUGIN_COUNT {
        return Err(format!("{live} plugins live, expected {PLUGIN_COUNT}").into());
    }
    services.store.close().await;
    drop(services);
    // Each round: a timed `Services::open`, then the breakdown of the same work
    // (store + runtime in `open_manager`, then loading the plugins).
    let mut runs = Vec::with_capacity(OPEN_RUNS);
    let mut manager_ms = Vec::with_capacity(OPEN_RUNS);
    let mut plugins_ms = Vec::with_capacity(OPEN_RUNS);
    for _ in 0..OPEN_RUNS {
        let t = Instant::now();
        let services = Services::open(config.clone()).await?;
        runs.push(t.elapsed().as_secs_f64() * 1e3);
        services.store.close().await;
        drop(services);

        let t = Instant::now();
        let manager = switchyard::server::open_manager(config).await?;
        manager_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let store = manager.store().clone();
        let t = Instant::now();
        let host = switchyard::plugins::live::PluginHost::start(manager).await?;
        plugins_ms.push(t.elapsed().as_secs_f64() * 1e3);
        store.close().await;
        drop(host);
    }
    runs.sort_by(f64::total_cmp);
    manager_ms.sort_by(f64::total_cmp);
    plugins_ms.sort_by(f64::total_cmp);
    Ok(OpenTimes {
        median_ms: runs[OPEN_RUNS / 2],
        min_ms: runs[0],
        max_ms: runs[OPEN_RUNS - 1],
        manager_ms: manager_ms[OPEN_RUNS / 2],
        plugins_ms: plugins_ms[OPEN_RUNS / 2],
    })
}

struct Rss {
    start_ms: f64,
    rss_mb: f64,
    hwm_mb: f64,
    /// Proportional set size: pages shared between mappings counted once.
    pss_mb: f64,
    anon_mb: f64,
    file_mb: f64,
    plugins_line: String,
}

impl Rss {
    fn json(&self) -> Value {
        json!({
            "rss": round1(self.rss_mb), "peak": round1(self.hwm_mb), "pss": round1(self.pss_mb),
            "anon": round1(self.anon_mb), "file": round1(self.file_mb), "start_ms": round1(self.start_ms),
        })
    }
}

/// A `Field:   N kB` line of `/proc/<pid>/smaps_rollup`.
fn rollup_field_kb(pid: u32, field: &str) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    rollup
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Start `switchyard serve` over `data_dir`, wait for its "listening on" line,
/// sleep 1 s and read its resident set.
fn idle_rss(binary: &Path, data_dir: &Path) -> Result<Rss, BoxError> {
    use std::io::BufRead;
    let mut command = std::process::Command::new(binary);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SWITCHYARD_") {
            command.env_remove(key);
        }
    }
    let t = Instant::now();
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("RUST_BACKTRACE", "0")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()?;
    let pid = child.id();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let result = (|| {
        let mut start_ms = None;
        let mut plugins_line = String::new();
        let give_up = Instant::now() + Duration::from_secs(60);
        while Instant::now() < give_up {
            match lines_rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    if line.contains("listening on") && start_ms.is_none() {
                        start_ms = Some(t.elapsed().as_secs_f64() * 1e3);
                    }
                    if line.contains("plugins loaded") {
                        plugins_line = line.trim().to_string();
                        break;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        return Err(format!("switchyard serve exited early: {status}").into());
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let start_ms = start_ms.ok_or("switchyard serve never printed `listening on`")?;
        std::thread::sleep(Duration::from_secs(1));
        let rss = status_field_kb(pid, "VmRSS:").ok_or("cannot read VmRSS")?;
        let mb = |kb: Option<u64>| kb.unwrap_or(0) as f64 / 1024.0;
        Ok::<_, BoxError>(Rss {
            start_ms,
            rss_mb: rss as f64 / 1024.0,
            hwm_mb: mb(status_field_kb(pid, "VmHWM:")),
            pss_mb: mb(rollup_field_kb(pid, "Pss:")),
            anon_mb: mb(status_field_kb(pid, "RssAnon:")),
            file_mb: mb(status_field_kb(pid, "RssFile:")),
            plugins_line,
        })
    })();
    let _ = child.kill();
    let _ = child.wait();
    drop(lines_rx);
    let _ = reader.join();
    result
}

fn release_binary() -> PathBuf {
    option_env!("CARGO_BIN_EXE_switchyard")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("release/switchyard"))
}

// ---------------------------------------------------------------------------

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

fn main() -> Result<(), BoxError> {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    let calls = env_number("BENCH_CALLS", 5_000).max(100) as usize;
    let secs = env_number("BENCH_SECS", 10).max(1) as f64;
    let backtrace = std::env::var("RUST_BACKTRACE").unwrap_or_default();
    if !matches!(backtrace.as_str(), "" | "0") {
        eprintln!(
            "warning: RUST_BACKTRACE={backtrace} makes wasmtime instantiation slower; run with RUST_BACKTRACE=0"
        );
    }
    let target = target_dir();
    let package = target.join("packages/echo-0.1.0.tar.gz");
    if !package.exists() {
        return Err(format!(
            "{} is missing; run scripts/build-plugins first",
            package.display()
        )
        .into());
    }
    let binary = release_binary();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());

    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    // 1-3: the real server and the floor.
    let data = tempfile::TempDir::new()?;
    let (api, services) = serve_api(&server_rt, data.path())?;
    let floor = Running::start(&server_rt, floor_filter())?;
    let base = format!("http://{}", api.addr);

    let (seq, loops) = client_rt.block_on(async {
        let http = reqwest::Client::new();
        let token = login(&http, &base).await?;
        install_echo(&http, &base, &token, &package).await?;
        println!("sequential: {WARMUP_CALLS} warm-up + {calls} calls per route…");
        let seq = sequential(api.addr, floor.addr, &token, calls).await?;
        let mut loops = Vec::new();
        for connections in [8, 32] {
            println!("closed loop: {connections} connections, {secs} s per route…");
            let clients = connect_many(floor.addr, None, connections).await?;
            let f = closed_loop(clients, FLOOR_PATH, CALL_BODY, secs).await?;
            let clients = connect_many(api.addr, Some(&token), connections).await?;
            let t = closed_loop(clients, TOOL_PATH, CALL_BODY, secs).await?;
            loops.push((t, f));
        }
        Ok::<_, BoxError>((seq, loops))
    })?;
    api.stop(&server_rt);
    floor.stop(&server_rt);
    server_rt.block_on(services.store.close());
    drop(services);

    // 4: start with 20 plugins.
    println!("installing {PLUGIN_COUNT} plugins and timing Services::open…");
    let many = tempfile::TempDir::new()?;
    let many_config = Config::new(many.path().join("data"));
    let open = server_rt.block_on(async {
        install_many(&many_config, &package, many.path()).await?;
        time_open(&many_config).await
    })?;
    drop(server_rt);

    // 5: idle RSS of the real binary over the 20-plugin data dir.
    // The same with no plugin, to tell the base from the per-plugin cost.
    let rss = if binary.exists() {
        println!("starting {} serve…", binary.display());
        let empty = tempfile::TempDir::new()?;
        let base = idle_rss(&binary, &empty.path().join("data"))?;
        Some((idle_rss(&binary, many_config.data_dir())?, base))
    } else {
        eprintln!(
            "error: the release binary {} is missing: build it with `cargo build --release -p switchyard`; idle RSS not measured",
            binary.display()
        );
        None
    };

    // Report.
    let (tool, fl) = seq;
    let ratio = tool.p50 / fl.p50;
    println!();
    println!(
        "switchyard server benchmark — {cpus} CPUs, RUST_BACKTRACE={}",
        if backtrace.is_empty() {
            "unset"
        } else {
            &backtrace
        }
    );
    println!(
        "{:<44} {:>10} {:>10} {:>10} {:>10}  target",
        "sequential latency (µs)", "p50", "p90", "p99", "mean"
    );
    for (name, l, target) in [
        ("REST tool call echo/echo", &tool, ""),
        ("floor: bare warp JSON echo", &fl, ""),
    ] {
        println!(
            "{:<44} {:>10.1} {:>10.1} {:>10.1} {:>10.1}  {target}",
            format!("{name} ({} calls)", l.n),
            l.p50,
            l.p90,
            l.p99,
            l.mean
        );
    }
    println!(
        "{:<44} {:>10.2} {:>43}  ≤ 1.5 {}",
        "ratio p50 tool call / floor",
        ratio,
        "",
        verdict(ratio <= 1.5)
    );
    println!();
    println!(
        "{:<44} {:>10} {:>10} {:>10} {:>10}  target",
        format!("closed loop, {secs} s each"),
        "calls/s",
        "p50 µs",
        "p99 µs",
        "srv CPU µs"
    );
    let mut loops_json = Vec::new();
    for (t, f) in &loops {
        for (name, x, target) in [("REST tool call", t, Some(10_000.0)), ("floor", f, None)] {
            let target_text = target.map_or(String::new(), |v: f64| {
                format!("≥ {v:.0} {}", verdict(x.calls_per_sec >= v))
            });
            println!(
                "{:<44} {:>10.0} {:>10.1} {:>10.1} {:>10.1}  {target_text}",
                format!("{name} @ {} connections", x.connections),
                x.calls_per_sec,
                x.latency.p50,
                x.latency.p99,
                x.server_cpu_us_per_call
            );
        }
        loops_json.push(
            json!({ "connections": t.connections, "tool_call": t.json(), "floor": f.json() }),
        );
    }
    println!(
        "  (srv CPU = process CPU minus the client thread's, per call; client thread per call: {})",
        loops
            .iter()
            .flat_map(|(t, f)| [t.client_cpu_us_per_call, f.client_cpu_us_per_call])
            .map(|c| format!("{c:.1}"))
            .collect::<Vec<_>>()
            .join(" / ")
    );
    println!();
    println!(
        "{:<44} {:>10.1} ms (min {:.1}, max {:.1})  ≤ 300 ms {}",
        format!("Services::open, {PLUGIN_COUNT} plugins (median of {OPEN_RUNS})"),
        open.median_ms,
        open.min_ms,
        open.max_ms,
        verdict(open.median_ms <= 300.0)
    );
    println!(
        "{:<44} {:>10.1} ms open_manager + {:.1} ms PluginHost::start",
        "  of which (medians)", open.manager_ms, open.plugins_ms
    );
    match &rss {
        Some((r, base)) => {
            println!(
                "{:<44} {:>10.1} MB (peak {:.1} MB)  ≤ 40 MB {}",
                format!("idle RSS, switchyard serve, {PLUGIN_COUNT} plugins"),
                r.rss_mb,
                r.hwm_mb,
                verdict(r.rss_mb <= 40.0)
            );
            for (name, x) in [("  with 20 plugins", r), ("  with no plugin", base)] {
                println!(
                    "{:<44} {:>10.1} MB RSS = {:.1} anon + {:.1} file; PSS {:.1} MB; start {:.0} ms ({})",
                    name, x.rss_mb, x.anon_mb, x.file_mb, x.pss_mb, x.start_ms, x.plugins_line
                );
            }
        }
        None => println!(
            "{:<44} {:>10}",
            "idle RSS", "not measured (no release binary)"
        ),
    }

    let report = json!({
        "cpus": cpus,
        "rust_backtrace": backtrace,
        "sequential": {
            "tool_call": tool.json(),
            "floor": fl.json(),
            "p50_ratio": (ratio * 100.0).round() / 100.0,
            "p50_ratio_target": 1.5,
        },
        "throughput": loops_json,
        "throughput_target_calls_per_sec": 10_000,
        "services_open_20_plugins_ms": {
            "median": round1(open.median_ms), "min": round1(open.min_ms), "max": round1(open.max_ms),
            "runs": OPEN_RUNS, "open_manager_median": round1(open.manager_ms),
            "plugin_host_start_median": round1(open.plugins_ms), "target": 300,
        },
        "idle_rss_mb": rss.as_ref().map(|(r, base)| json!({
            "plugins_20": r.json(), "no_plugin": base.json(), "target_rss_20_plugins": 40,
        })),
    });
    let out = target.join("bench-server.json");
    std::fs::write(&out, serde_json::to_string_pretty(&report)? + "\n")?;
    println!("\nwrote {}", out.display());
    drop(many);
    drop(data);
    Ok(())
}
