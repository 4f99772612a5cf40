//! Process trees against the real Docker engine: what a command started ends
//! with it (fork bombs included, and processes that left its group), unless
//! it detached; a deadline kills the tree; after a host restart, commands the
//! old host lost are killed on re-attach while detached ones live on.

use crate::harness::{Backend, Client, Server};
use crate::sandboxes::{cleanup, create, exec};
use serde_json::json;
use std::time::{Duration, Instant};
use switchyard::sandbox::driver::ExecSpec;

/// Processes of sandbox `id` whose command line is exactly `line`.
async fn count(client: &Client, id: &str, line: &str) -> usize {
    let r = exec(
        client,
        id,
        json!({ "command": format!("ps -eo args | grep -cx '{line}' || true") }),
    )
    .await;
    r.body["stdout"]
        .as_str()
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{}", r.text))
}

async fn stats(client: &Client, id: &str) -> (u64, u64) {
    let s = client.get(&format!("/api/v1/sandboxes/{id}/stats")).await;
    (
        s.body["pids"].as_u64().unwrap(),
        s.body["cpu_total_ns"].as_u64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_bomb_dies_with_its_command() {
    let server = Server::start(Backend::Sqlite).await;
    let admin = server.admin.clone();
    let id = create(&admin, json!({ "limits": { "pids": 64 } })).await;
    let bomb = exec(
        &admin,
        &id,
        json!({ "command": "bomb(){ bomb | bomb & }; bomb; sleep 3", "timeout_secs": 30 }),
    )
    .await;
    assert_eq!(bomb.status, 200, "{}", bomb.text);
    let r = exec(&admin, &id, json!({ "command": "echo ok" })).await;
    assert_eq!(
        r.body["stdout"], "ok\n",
        "the next command runs: {}",
        r.text
    );
    // Calm: a handful of processes (init, the keeper, a standby shell), no CPU burnt.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (pids, _) = stats(&admin, &id).await;
        if pids <= 6 {
            break;
        }
        assert!(Instant::now() < deadline, "{pids} processes are left");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, cpu0) = stats(&admin, &id).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, cpu1) = stats(&admin, &id).await;
    assert!(
        cpu1 - cpu0 < 300_000_000,
        "{} ns of CPU in a second",
        cpu1 - cpu0
    );
    cleanup(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_processes_end_with_the_command_unless_detached() {
    let server = Server::start(Backend::Sqlite).await;
    let admin = server.admin.clone();
    let id = create(&admin, json!({})).await;
    let r = exec(
        &admin,
        &id,
        json!({ "command": "sleep 101 & setsid sleep 102 & echo started" }),
    )
    .await;
    assert_eq!(r.body["stdout"], "started\n", "{}", r.text);
    assert_eq!(
        count(&admin, &id, "sleep 101").await,
        0,
        "a background child is gone"
    );
    assert_eq!(
        count(&admin, &id, "sleep 102").await,
        0,
        "one that left the group too"
    );

    let started = Instant::now();
    let r = exec(
        &admin,
        &id,
        json!({ "command": "sleep 103 >/dev/null 2>&1 &", "detach": true }),
    )
    .await;
    assert_eq!(r.body["exit_code"], 0, "{}", r.text);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        count(&admin, &id, "sleep 103").await,
        1,
        "a detached command lives on"
    );
    let refused = exec(
        &admin,
        &id,
        json!({ "command": "true", "env": { "SY_DETACH": "1" } }),
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.text);

    // A deadline kills the whole tree.
    let r = exec(
        &admin,
        &id,
        json!({ "command": "sleep 104 & setsid sleep 105 & sleep 60", "timeout_secs": 1 }),
    )
    .await;
    assert_eq!(r.body["timed_out"], true, "{}", r.text);
    assert_eq!(count(&admin, &id, "sleep 104").await, 0);
    assert_eq!(count(&admin, &id, "sleep 105").await, 0);
    cleanup(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_attaching_kills_the_commands_the_old_host_lost() {
    let server = Server::start(Backend::Sqlite).await;
    let id = create(&server.admin, json!({})).await;
    let container = server
        .services
        .store
        .sandbox(&id)
        .await
        .unwrap()
        .unwrap()
        .container_id
        .unwrap();
    // Commands of an earlier host process: one it was waiting for, one detached.
    let driver = server.services.sandboxes.driver().clone();
    let mut sessions = Vec::new();
    for (line, env) in [
        ("sleep 106", vec!["SY_EXEC=0ldb00t1".to_string()]),
        (
            "sleep 107",
            vec!["SY_EXEC=0ldb00t2".to_string(), "SY_DETACH=1".to_string()],
        ),
    ] {
        // The engine kills an exec's first process when its client goes: what
        // outlives the host is what that process started.
        let spec = ExecSpec {
            argv: vec!["sh".into(), "-c".into(), format!("{line} & wait")],
            env,
            workdir: "/workspace".into(),
            ..ExecSpec::default()
        };
        sessions.push(driver.exec(&container, &spec).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count(&server.admin, &id, "sleep 106").await, 1);
    let (data, config) = server.into_data().await;
    // The old host's connections to the engine go with it.
    drop(sessions);
    let again = Server::resume(data, config).await;
    again.services.sandboxes.reattach().await.unwrap();
    assert_eq!(
        count(&again.admin, &id, "sleep 106").await,
        0,
        "the lost command was killed"
    );
    assert_eq!(
        count(&again.admin, &id, "sleep 107").await,
        1,
        "the detached one lives on"
    );
    cleanup(&again).await;
    again.stop().await;
}
