//! The hostile fixture plugin loops, allocates, panics, reaches for what it was not
//! granted and floods its output. Each case gets its exact error kind, and the host
//! keeps serving calls afterwards.

mod common;

use common::Host;
use serde_json::json;
use switchyard::runtime::ErrorKind;

async fn still_serving(host: &Host) {
    assert_eq!(
        host.ok("hostile/echo", json!({"text": "still here"})).await,
        "still here"
    );
}

#[tokio::test]
async fn infinite_loop_is_stopped_at_the_deadline() {
    let host = Host::with(&["hostile"]).await;
    let err = host.error("hostile/spin", json!({})).await;
    assert_eq!(err.kind, ErrorKind::Timeout, "{err}");
    assert!(err.message.contains("500 ms"), "{err}");
    still_serving(&host).await;
}

#[tokio::test]
async fn memory_bomb_hits_the_cap() {
    let host = Host::with(&["hostile"]).await;
    let err = host.error("hostile/allocate", json!({"mb": 200})).await;
    assert_eq!(err.kind, ErrorKind::MemoryLimit, "{err}");
    assert!(err.message.contains("32 MiB"), "{err}");
    assert_eq!(
        host.ok("hostile/allocate", json!({"mb": 4})).await,
        "allocated 4 MiB"
    );
    still_serving(&host).await;
}

/// Pool slots keep their pages resident between calls: each call must still
/// start from the component's initial state, with zeroed fresh memory.
#[tokio::test]
async fn each_call_starts_from_a_clean_instance() {
    let host = Host::with(&["hostile"]).await;
    assert_eq!(
        host.ok("hostile/allocate", json!({"mb": 8})).await,
        "allocated 8 MiB"
    );
    for _ in 0..3 {
        assert_eq!(
            host.ok("hostile/residue", json!({"mb": 4})).await,
            "calls before: 0, non-zero bytes: 0"
        );
    }
    still_serving(&host).await;
}

#[tokio::test]
async fn panic_becomes_a_trap_with_the_message() {
    let host = Host::with(&["hostile"]).await;
    let err = host.error("hostile/panic", json!({})).await;
    assert_eq!(err.kind, ErrorKind::Trap, "{err}");
    assert!(
        err.message.contains("hostile plugin panicked on purpose"),
        "{err}"
    );
    still_serving(&host).await;
}

#[tokio::test]
async fn huge_output_is_refused() {
    let host = Host::with(&["hostile"]).await;
    let err = host
        .error("hostile/huge_output", json!({"bytes": 8_000_000}))
        .await;
    assert_eq!(err.kind, ErrorKind::InvalidOutput, "{err}");
    assert_eq!(
        host.ok("hostile/huge_output", json!({"bytes": 1000}))
            .await
            .len(),
        1000
    );
    still_serving(&host).await;
}

#[tokio::test]
async fn http_to_a_host_not_granted_is_denied_and_recorded() {
    let host = Host::with(&["hostile"]).await;
    let err = host
        .error("hostile/fetch", json!({"url": "http://localhost:9/"}))
        .await;
    assert_eq!(err.kind, ErrorKind::Denied, "{err}");
    assert_eq!(err.denied, vec!["http localhost:9".to_string()]);
    let err = host
        .error("hostile/fetch", json!({"url": "https://example.invalid/"}))
        .await;
    assert_eq!(err.kind, ErrorKind::Denied, "{err}");
    still_serving(&host).await;
}

#[tokio::test]
async fn ungranted_capabilities_are_denied() {
    let host = Host::new().await;
    host.manager
        .install(&common::package("hostile"), &Default::default())
        .await
        .unwrap();
    for (tool, args) in [
        ("hostile/kv_put", json!({"key": "k", "value": "v"})),
        ("hostile/read_secret", json!({"name": "token"})),
        ("hostile/fetch", json!({"url": "http://127.0.0.1:9/"})),
    ] {
        let err = host.error(tool, args).await;
        assert_eq!(err.kind, ErrorKind::Denied, "{tool}: {err}");
    }
    host.manager.grant("hostile", None).await.unwrap();
    assert_eq!(
        host.ok("hostile/kv_put", json!({"key": "k", "value": "v"}))
            .await,
        "ok"
    );
    let err = host
        .error("hostile/read_secret", json!({"name": "token"}))
        .await;
    assert_eq!(err.kind, ErrorKind::NotFound, "granted but unset: {err}");
    host.manager
        .set_secret("hostile", "token", Some("s3cret"))
        .await
        .unwrap();
    assert_eq!(
        host.ok("hostile/read_secret", json!({"name": "token"}))
            .await,
        "s3cret"
    );
    let err = host
        .error("hostile/read_secret", json!({"name": "other"}))
        .await;
    assert_eq!(err.kind, ErrorKind::Denied, "{err}");
    host.manager.revoke("hostile").await.unwrap();
    let err = host
        .error("hostile/read_secret", json!({"name": "token"}))
        .await;
    assert_eq!(err.kind, ErrorKind::Denied, "after revoke: {err}");
}

#[tokio::test]
async fn fuel_limit_stops_the_loop() {
    let host = Host::new().await;
    let dir = common::package_variant("hostile", |m| {
        m.replace("timeout_ms = 500", "timeout_ms = 60000\nfuel = 5000000")
    });
    host.manager
        .install(dir.path(), &common::grant_all())
        .await
        .unwrap();
    let err = host.error("hostile/spin", json!({})).await;
    assert_eq!(err.kind, ErrorKind::FuelExhausted, "{err}");
    still_serving(&host).await;
}

#[tokio::test]
async fn key_value_spaces_are_private_per_plugin() {
    let host = Host::with(&["hostile", "notes"]).await;
    host.ok(
        "hostile/kv_put",
        json!({"key": "note:n1", "value": "planted"}),
    )
    .await;
    let listed = host.ok("notes/list", json!({})).await;
    assert!(
        listed.contains("\"count\":0"),
        "notes must not see hostile's keys: {listed}"
    );
    let oversized = "k".repeat(300);
    let err = host
        .error("hostile/kv_put", json!({"key": oversized, "value": "v"}))
        .await;
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_hostile_calls_leave_the_host_healthy() {
    // Loops hog the CPU until their 500 ms deadline; the other calls go to a copy of
    // the plugin with a long deadline, so each fails (or succeeds) for its own reason.
    let host = std::sync::Arc::new(Host::with(&["hostile"]).await);
    let patient = common::package_variant("hostile", |m| {
        m.replace("name = \"hostile\"", "name = \"patient\"")
            .replace("timeout_ms = 500", "timeout_ms = 60000")
    });
    host.manager
        .install(patient.path(), &common::grant_all())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..24 {
        let host = host.clone();
        tasks.push(tokio::spawn(async move {
            let (tool, args) = match i % 4 {
                0 => ("hostile/spin", json!({})),
                1 => ("patient/allocate", json!({"mb": 100})),
                2 => ("patient/panic", json!({})),
                _ => ("patient/echo", json!({"text": format!("call {i}")})),
            };
            (i, host.call(tool, args).await)
        }));
    }
    for task in tasks {
        let (i, result) = task.await.unwrap();
        let expected = match i % 4 {
            0 => ErrorKind::Timeout,
            1 => ErrorKind::MemoryLimit,
            2 => ErrorKind::Trap,
            _ => {
                assert_eq!(result.unwrap(), format!("call {i}"));
                continue;
            }
        };
        let err = result.unwrap_err();
        assert_eq!(err.kind, expected, "call {i}: {err}");
    }
    still_serving(&host).await;
}

#[tokio::test]
async fn a_full_instance_pool_answers_busy() {
    use switchyard::runtime::{CallLimits, PluginEnv, Runtime, RuntimeOptions, tool};
    let runtime = Runtime::new(RuntimeOptions {
        max_instances: 1,
        ..RuntimeOptions::default()
    })
    .unwrap();
    let component = runtime.compile(&common::component("hostile")).unwrap();
    let limits = CallLimits {
        timeout: std::time::Duration::from_millis(300),
        ..CallLimits::default()
    };
    let loaded = runtime
        .load(
            &component,
            std::sync::Arc::new(PluginEnv::deny_all("hostile")),
            limits,
        )
        .unwrap();
    let cx = || tool::CallContext {
        request_id: "t".into(),
        caller: None,
    };
    let spin = runtime.call_tool(&loaded, "spin", "{}", cx());
    let echo = async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        runtime
            .call_tool(&loaded, "echo", r#"{"text":"x"}"#, cx())
            .await
    };
    let (spun, echoed) = tokio::join!(spin, echo);
    assert_eq!(spun.unwrap_err().kind, ErrorKind::Timeout);
    assert_eq!(echoed.unwrap_err().kind, ErrorKind::Busy);
    let again = runtime
        .call_tool(&loaded, "echo", r#"{"text":"x"}"#, cx())
        .await
        .unwrap();
    assert!(matches!(&again.content[0], switchyard::runtime::types::Content::Text(t) if t == "x"));
}
