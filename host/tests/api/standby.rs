//! Standby shells: after a sandbox's first command, the next one runs on a
//! shell the engine started earlier, with the same results as an engine exec.

use crate::harness::{Backend, Server};
use crate::sandboxes::{cleanup, create, exec};
use serde_json::json;
use std::time::Duration;

/// Prints how long ago (seconds) the command's grandparent (the wrapper,
/// which took over the process the engine started; `timeout` is its child) began.
const PARENT_AGE: &str = r#"read -r up _ < /proc/uptime; g=$(cut -d' ' -f4 /proc/$PPID/stat); st=$(cut -d' ' -f22 /proc/$g/stat); echo "$up $st $(getconf CLK_TCK)" | awk '{ printf "%.2f", $1 - $2 / $3 }'"#;

async fn parent_age(client: &crate::harness::Client, id: &str) -> f64 {
    let r = exec(client, id, json!({ "command": PARENT_AGE })).await;
    assert_eq!(r.body["exit_code"], 0, "{}", r.text);
    r.body["stdout"].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_after_the_first_run_on_a_standby_shell() {
    let server = Server::start(Backend::Sqlite).await;
    let admin = &server.admin;
    let id = create(admin, json!({})).await;
    // A fresh container has no standby: the engine starts the first command.
    assert!(parent_age(admin, &id).await < 0.9);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        parent_age(admin, &id).await >= 1.0,
        "the second command ran on the shell prepared after the first"
    );

    // Exact words, environment, directory, standard input and exit code.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tricky = "it's \"quoted\" $HOME `id` \\ \n next; line *";
    exec(admin, &id, json!({ "command": "mkdir -p 'a b'" })).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = exec(
        admin,
        &id,
        json!({
            "argv": ["sh", "-c", "printf '%s|' \"$@\" \"$V\"; pwd; cat; exit 7", "sy", tricky, ""],
            "env": { "V": tricky },
            "workdir": "a b",
            "stdin": "the rest\n",
        }),
    )
    .await;
    assert_eq!(r.body["exit_code"], 7, "{}", r.text);
    assert_eq!(
        r.body["stdout"],
        format!("{tricky}||{tricky}|/workspace/a b\nthe rest\n")
    );

    // A command too long for the standby's line takes an engine exec; the
    // standby stays for the next one.
    let long = format!("echo long #{}", "x".repeat(65_000));
    let r = exec(admin, &id, json!({ "command": long })).await;
    assert_eq!(r.body["stdout"], "long\n", "{}", r.text);

    // A missing directory is a clear exit 126.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = exec(
        admin,
        &id,
        json!({ "command": "true", "workdir": "nowhere" }),
    )
    .await;
    assert_eq!(r.body["exit_code"], 126, "{}", r.text);
    assert!(r.text.contains("does not exist"), "{}", r.text);

    // Deadlines and the output cap still kill what the standby became.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = exec(
        admin,
        &id,
        json!({ "command": "sleep 60", "timeout_secs": 1 }),
    )
    .await;
    assert_eq!(r.body["timed_out"], true, "{}", r.text);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = exec(admin, &id, json!({ "command": "cat /dev/zero" })).await;
    assert_eq!(r.body["truncated"], true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = exec(
        admin,
        &id,
        json!({ "command": "ps -eo args | grep -c '^cat /dev/zero' || true" }),
    )
    .await;
    assert_eq!(r.body["stdout"], "0\n", "{}", r.text);

    // Concurrent commands: one takes the standby, the rest start normally.
    let runs = (0..4).map(|i| exec(admin, &id, json!({ "command": format!("echo {i}") })));
    for (i, r) in futures_util::future::join_all(runs)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(r.body["stdout"], format!("{i}\n"), "{}", r.text);
    }

    // A container killed from outside takes its standby with it; the next
    // command still runs (on a new container).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let container = server
        .services
        .store
        .sandbox(&id)
        .await
        .unwrap()
        .unwrap()
        .container_id
        .unwrap();
    let out = std::process::Command::new("docker")
        .args(["kill", &container])
        .output()
        .unwrap();
    assert!(out.status.success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = exec(admin, &id, json!({ "command": "echo back" })).await;
    assert_eq!(r.body["stdout"], "back\n", "{}", r.text);

    // Operators see how commands started and ended, and the sandboxes by state.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let metrics = admin.get("/metrics").await.text;
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
    };
    assert!(value(r#"switchyard_sandbox_commands_total{start="standby",outcome="ok"}"#) >= 2.0);
    assert!(value(r#"switchyard_sandbox_commands_total{start="exec",outcome="ok"}"#) >= 1.0);
    assert!(
        value(r#"switchyard_sandbox_commands_total{start="standby",outcome="timed_out"}"#) >= 1.0
    );
    assert!(
        value(r#"switchyard_sandbox_commands_total{start="standby",outcome="truncated"}"#) >= 1.0
    );
    assert!(metrics.contains("switchyard_sandbox_command_start_seconds_bucket{start=\"standby\""));
    assert!(value(r#"switchyard_sandboxes{state="idle"}"#) >= 1.0);
    assert!(value("switchyard_sandbox_standby_ready") >= 1.0);
    assert!(value(r#"switchyard_sandbox_creates_total{from="cold"}"#) >= 1.0);
    cleanup(&server).await;
    server.stop().await;
}
