//! Guest languages side by side: for the same `word_count` tool written in Rust
//! (the SDK), Python (componentize-py), JavaScript (jco) and C (wit-bindgen c),
//! the component's
//! size, its compile time on install (no cache), its load time from the
//! artifact cache, and a fresh instance + first call (p50 and p95 of 300), next
//! to the trivial `echo` tool as the floor in the same run. The Rust tool built
//! with plain wit-bindgen against the frozen `@0.1.0` contract runs too (its
//! `word_count` also counts calls in the local operator's key-value space).
//!
//! Needs the packages from `scripts/build-plugins`. Run (release host):
//! `cargo bench -p switchyard --bench guests`.

#![allow(missing_docs)]

mod common;

use common::component_bytes;

use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard::config::Config;
use switchyard::runtime::{
    CallHooks, CallLimits, KvNamespace, KvStore, PluginEnv, Runtime, RuntimeOptions, tool,
};
use switchyard::store::{PluginRow, SqlKv, Store};

const GUESTS: &[(&str, &str)] = &[
    ("echo (floor)", "echo"),
    ("Rust (SDK)", "guest-rust"),
    ("Rust (wit-bindgen, frozen 0.1.0 WIT)", "guest-wit-0-1-0"),
    ("C", "guest-c"),
    ("JavaScript", "guest-js"),
    ("Python", "guest-python"),
];

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let data = tempfile::TempDir::new().unwrap();
    let store = rt
        .block_on(Store::open(&Config::new(data.path()).database_url()))
        .unwrap();
    for (_, name) in GUESTS {
        // Key-value rows belong to an installed plugin: register each one.
        let row = PluginRow {
            name: name.to_string(),
            version: "0.1.0".into(),
            owner_id: None,
            enabled: true,
            granted: "{}".into(),
            config: "{}".into(),
            installed_at: 0,
            updated_at: 0,
            revision: 0,
        };
        rt.block_on(store.put_plugin(&row)).unwrap();
    }
    let kv: Arc<dyn KvStore> = Arc::new(SqlKv::new(store));
    println!(
        "| guest | component | compile (install, no cache) | load from cache | fresh instance + first call p50 / p95 |"
    );
    println!("|---|---|---|---|---|");
    for (label, name) in GUESTS {
        let bytes = component_bytes(name);
        let cold = Runtime::new(RuntimeOptions::default()).unwrap();
        let started = Instant::now();
        cold.compile(&bytes).unwrap();
        let compile = started.elapsed();
        let cache = tempfile::TempDir::new().unwrap();
        let cached = Runtime::new(RuntimeOptions {
            cache_dir: Some(cache.path().to_path_buf()),
            ..RuntimeOptions::default()
        })
        .unwrap();
        cached.compile(&bytes).unwrap();
        let started = Instant::now();
        let component = cached.compile(&bytes).unwrap();
        let load = started.elapsed();
        let limits = CallLimits {
            memory_bytes: 64 << 20,
            ..CallLimits::default()
        };
        let mut env = PluginEnv::deny_all(name);
        env.kv = Some(kv.clone());
        let loaded = cached.load(&component, Arc::new(env), limits).unwrap();
        let (tool_name, args) = if *name == "echo" {
            ("echo", r#"{"text":"one two three"}"#)
        } else {
            ("word_count", r#"{"text":"one two three"}"#)
        };
        let context = || tool::CallContext {
            request_id: "bench".into(),
            caller: Some("bench".into()),
        };
        let call = || async {
            let hooks = CallHooks {
                kv: Some(KvNamespace::Local),
                ..CallHooks::default()
            };
            let (output, _) = cached
                .call_tool_traced(&loaded, tool_name, args, context(), hooks)
                .await;
            output.unwrap();
        };
        let mut calls: Vec<Duration> = rt.block_on(async {
            for _ in 0..20 {
                call().await;
            }
            let mut out = Vec::new();
            for _ in 0..300 {
                let started = Instant::now();
                call().await;
                out.push(started.elapsed());
            }
            out
        });
        calls.sort();
        println!(
            "| {label} | {:.2} MB | {:.0} ms | {:.2} ms | {:.1} / {:.1} µs |",
            bytes.len() as f64 / 1e6,
            ms(compile),
            ms(load),
            percentile(&calls, 0.5).as_secs_f64() * 1e6,
            percentile(&calls, 0.95).as_secs_f64() * 1e6,
        );
    }
}
