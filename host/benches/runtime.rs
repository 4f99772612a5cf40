//! Runtime benchmarks, each beside a bare-wasmtime floor measured in the same run
//! (same component, a WASI-only store: no limits, deadline, fuel or switchyard host):
//!
//! - fresh instance + first `call-tool` on the trivial `echo` tool (target ≤ 40 µs);
//! - warm host→guest call into a live instance (target ≤ 3 µs);
//! - precompiled load of a plugin from the artifact cache (target ≤ 1 ms);
//! - how late an infinite loop is stopped after its deadline (target ≤ 10 ms).
//!
//! The trivial tool is the `echo` fixture plugin; the loop is the `hostile` fixture's
//! `spin`. Needs the packages from `scripts/build-plugins`. Run: `cargo bench -p switchyard --bench runtime`.

#![allow(missing_docs)]

mod common;

use common::component_bytes;

use criterion::{Criterion, criterion_group};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard::runtime::{CallLimits, PluginEnv, Runtime, RuntimeOptions, tool};
use wasmtime::component::{Component, Linker, ResourceTable, Val};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

fn context() -> tool::CallContext {
    tool::CallContext {
        request_id: "bench".into(),
        caller: None,
    }
}

/// Store data for the bare-wasmtime floor: WASI only, nothing of switchyard.
struct Bare {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
}

impl WasiHttpView for Bare {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: wasmtime_wasi_http::default_hooks(),
        }
    }
}

impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

struct BareSetup {
    engine: Engine,
    pre: wasmtime::component::InstancePre<Bare>,
}

impl BareSetup {
    fn new(bytes: &[u8]) -> Self {
        let mut config = wasmtime::Config::new();
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::pooling());
        let engine = Engine::new(&config).unwrap();
        let component = Component::new(&engine, bytes).unwrap();
        let mut linker = Linker::<Bare>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).unwrap();
        let mut host = linker.instance("switchyard:plugin/host@0.1.0").unwrap();
        for name in [
            "log",
            "get-config",
            "get-secret",
            "kv-get",
            "kv-set",
            "kv-delete",
            "kv-list",
            "now",
        ] {
            host.func_new(name, |_, _, _, _| {
                Err(wasmtime::Error::msg("not offered by the bare floor"))
            })
            .unwrap();
        }
        let pre = linker.instantiate_pre(&component).unwrap();
        Self { engine, pre }
    }

    fn store(&self) -> Store<Bare> {
        Store::new(
            &self.engine,
            Bare {
                wasi: WasiCtx::builder().build(),
                http: WasiHttpCtx::new(),
                table: ResourceTable::new(),
            },
        )
    }

    async fn call_func(&self, store: &mut Store<Bare>, instance: &wasmtime::component::Instance) {
        let iface = instance
            .get_export_index(&mut *store, None, "switchyard:plugin/tool@0.1.0")
            .unwrap();
        let idx = instance
            .get_export_index(&mut *store, Some(&iface), "call-tool")
            .unwrap();
        let func = instance.get_func(&mut *store, idx).unwrap();
        let args = [
            Val::String("echo".into()),
            Val::String(r#"{"text":"hi"}"#.into()),
            Val::Record(vec![
                ("request-id".into(), Val::String("bench".into())),
                ("caller".into(), Val::Option(None)),
            ]),
        ];
        let mut results = [Val::Bool(false)];
        func.call_async(&mut *store, &args, &mut results)
            .await
            .unwrap();
    }
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bytes = component_bytes("echo");
    let cache = tempfile::TempDir::new().unwrap();
    let runtime = Runtime::new(RuntimeOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        ..RuntimeOptions::default()
    })
    .unwrap();
    let component = runtime.compile(&bytes).unwrap();
    let env = Arc::new(PluginEnv::deny_all("echo"));
    let loaded = runtime
        .load(&component, env.clone(), CallLimits::default())
        .unwrap();
    let bare = BareSetup::new(&bytes);
    let args = r#"{"text":"hi"}"#;

    let faults_before = minor_faults();
    let calls = 5_000;
    rt.block_on(async {
        for _ in 0..calls {
            runtime
                .call_tool(&loaded, "echo", args, context())
                .await
                .unwrap();
        }
    });
    println!(
        "fresh_instance_first_call: {:.1} minor page faults per call",
        (minor_faults() - faults_before) as f64 / calls as f64
    );

    let mut group = c.benchmark_group("fresh_instance_first_call");
    group.bench_function("switchyard", |b| {
        b.to_async(&rt).iter(|| async {
            runtime
                .call_tool(&loaded, "echo", args, context())
                .await
                .unwrap()
        })
    });
    group.bench_function("bare_wasmtime", |b| {
        b.to_async(&rt).iter(|| async {
            let mut store = bare.store();
            let instance = bare.pre.instantiate_async(&mut store).await.unwrap();
            bare.call_func(&mut store, &instance).await;
        })
    });
    group.finish();

    let mut group = c.benchmark_group("warm_call");
    let mut store = bare.store();
    let instance = rt.block_on(bare.pre.instantiate_async(&mut store)).unwrap();
    group.bench_function("bare_wasmtime", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    bare.call_func(&mut store, &instance).await;
                }
                start.elapsed()
            })
        })
    });
    group.finish();

    let mut group = c.benchmark_group("precompiled_load");
    group.bench_function("switchyard_cache", |b| {
        b.iter(|| runtime.compile(&bytes).unwrap())
    });
    let serialized = Component::new(&bare.engine, &bytes)
        .unwrap()
        .serialize()
        .unwrap();
    group.bench_function("bare_deserialize", |b| {
        #[allow(unsafe_code)]
        // SAFETY: the bytes were produced by `serialize` on this very engine just above.
        b.iter(|| unsafe { Component::deserialize(&bare.engine, &serialized).unwrap() })
    });
    group.finish();

    let deadline = Duration::from_millis(100);
    let limits = CallLimits {
        timeout: deadline,
        ..CallLimits::default()
    };
    let hostile = runtime.compile(&component_bytes("hostile")).unwrap();
    let spinning = runtime
        .load(&hostile, Arc::new(PluginEnv::deny_all("hostile")), limits)
        .unwrap();
    let mut overshoot: Vec<Duration> = (0..20)
        .map(|_| {
            let start = Instant::now();
            let err = rt
                .block_on(runtime.call_tool(&spinning, "spin", "{}", context()))
                .unwrap_err();
            assert_eq!(err.kind, switchyard::runtime::ErrorKind::Timeout);
            start.elapsed().saturating_sub(deadline)
        })
        .collect();
    overshoot.sort();
    println!(
        "infinite_loop_stop: deadline 100 ms, overshoot median {:.2} ms, max {:.2} ms (target <= 10 ms)",
        overshoot[10].as_secs_f64() * 1e3,
        overshoot[19].as_secs_f64() * 1e3
    );
}

/// Minor page faults of this process so far (field 10 of /proc/self/stat).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after_name
        .split_whitespace()
        .nth(7)
        .and_then(|f| f.parse().ok())
        .unwrap_or(0)
}

criterion_group!(runtime_benches, benches);

fn main() {
    runtime_benches();
    Criterion::default().configure_from_args().final_summary();
}
