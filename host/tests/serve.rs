//! `switchyard serve` as a process: first admin from the CLI, the start banner,
//! `migrate`, and graceful shutdown on SIGTERM with a request in flight.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

fn switchyard(data: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.arg("--data-dir")
        .arg(data)
        .env_remove("SWITCHYARD_DATABASE_URL");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_on_defaults_and_stops_gracefully() {
    let data = tempfile::TempDir::new().unwrap();
    let migrate = switchyard(data.path()).arg("migrate").output().unwrap();
    assert!(migrate.status.success());
    assert!(String::from_utf8_lossy(&migrate.stdout).contains("up to date"));

    let mut create = switchyard(data.path())
        .args(["user", "create", "root", "--admin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    create
        .stdin
        .take()
        .unwrap()
        .write_all(b"root-password\n")
        .unwrap();
    let out = create.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dup = switchyard(data.path())
        .args(["user", "create", "root"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!dup.status.success());

    let mut server = switchyard(data.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--shutdown-grace", "10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let base = first.rsplit(' ').next().unwrap().to_string();
    assert!(first.contains("listening on http://127.0.0.1:"), "{first}");
    let banner: Vec<String> = lines.by_ref().take(4).map(Result::unwrap).collect();
    assert!(
        banner.iter().any(|l| l.contains("/api/v1/docs")),
        "{banner:?}"
    );
    assert!(banner.iter().any(|l| l.contains("/metrics")), "{banner:?}");

    let http = reqwest::Client::new();
    let login: serde_json::Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({ "username": "root", "password": "root-password" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_string();
    let upload = http
        .post(format!("{base}/api/v1/plugins?grant=true"))
        .bearer_auth(&token)
        .header("content-type", "application/gzip")
        .body(std::fs::read(common::archive("hostile")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 201);

    let in_flight = {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        tokio::spawn(async move {
            http.post(format!("{base}/api/v1/tools/hostile/spin:call"))
                .bearer_auth(token)
                .json(&serde_json::json!({ "arguments": {} }))
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(sigterm(server.id()), "kill -TERM");
    let status = in_flight
        .await
        .unwrap()
        .expect("the request in flight got its answer");
    assert_eq!(status, 504, "it ran to its own deadline");
    let exit = tokio::task::spawn_blocking(move || server.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit}");
    assert!(
        http.get(format!("{base}/api/v1/health"))
            .send()
            .await
            .is_err(),
        "no longer listening"
    );
}

/// Send SIGTERM with the `kill` command (the workspace denies unsafe code).
fn sigterm(pid: u32) -> bool {
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}
