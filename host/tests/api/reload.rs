//! Hot reload: API changes apply to the next call, calls in flight finish on the
//! version they started with, `switchyard plugin install` against the server's
//! data dir is picked up live, and upgrades asking for more stay pending.

use crate::harness::{Backend, Server, package_bytes};
use serde_json::json;
use std::time::{Duration, Instant};

crate::on_both_backends!(
    changes_apply_live_without_breaking_calls_in_flight,
    upgrades_with_new_capabilities_stay_pending
);

async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn changes_apply_live_without_breaking_calls_in_flight(backend: Backend) {
    let server = Server::start(backend).await;
    let admin = server.admin.clone();
    assert_eq!(
        admin
            .upload("?grant=true", package_bytes("hostile"))
            .await
            .status,
        201
    );

    let spinning = {
        let admin = admin.clone();
        tokio::spawn(async move { admin.call("hostile", "spin", json!({})).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        admin
            .patch("/api/v1/plugins/hostile", json!({ "enabled": false }))
            .await
            .status,
        200
    );
    let finished = spinning.await.unwrap();
    assert_eq!(
        finished.status, 504,
        "the call in flight ran to its own deadline: {}",
        finished.body
    );
    assert_eq!(
        admin
            .call("hostile", "echo", json!({ "text": "x" }))
            .await
            .status,
        409,
        "the next call sees the change"
    );
    assert_eq!(
        admin
            .patch("/api/v1/plugins/hostile", json!({ "enabled": true }))
            .await
            .status,
        200
    );

    let data_dir = server.data.path().to_path_buf();
    let mut cli = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cli.args(["--data-dir"]).arg(&data_dir);
    if let Some(url) = &server.services.config.database_url {
        cli.args(["--database-url", url]);
    }
    let out = cli
        .args(["plugin", "install", "--grant"])
        .arg(crate::common::package("echo"))
        .env("SWITCHYARD_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("the CLI install to go live", async || {
        admin
            .call("echo", "echo", json!({ "text": "live" }))
            .await
            .status
            == 200
    })
    .await;

    let mut cli = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cli.args(["--data-dir"]).arg(&data_dir);
    if let Some(url) = &server.services.config.database_url {
        cli.args(["--database-url", url]);
    }
    assert!(
        cli.args(["plugin", "disable", "echo"])
            .output()
            .unwrap()
            .status
            .success()
    );
    wait_for("the CLI disable to go live", async || {
        admin
            .call("echo", "echo", json!({ "text": "x" }))
            .await
            .status
            == 409
    })
    .await;
    server.stop().await;
}

async fn upgrades_with_new_capabilities_stay_pending(backend: Backend) {
    let server = Server::start(backend).await;
    let admin = &server.admin;
    let v1 = crate::common::package_variant("echo", |m| m);
    let v2 = crate::common::package_variant("echo", |m| {
        m.replace("version = \"0.1.0\"", "version = \"0.2.0\"") + "\n[capabilities]\nkv = true\n"
    });
    let tgz = |dir: &std::path::Path| {
        let toml = std::fs::read(dir.join("plugin.toml")).unwrap();
        let wasm = std::fs::read(dir.join("echo.wasm")).unwrap();
        crate::common::tar_gz(&[
            ("plugin.toml", tar::EntryType::Regular, &toml),
            ("echo.wasm", tar::EntryType::Regular, &wasm),
        ])
    };
    assert_eq!(
        admin.upload("?grant=true", tgz(v1.path())).await.status,
        201
    );
    let up = admin.upload("", tgz(v2.path())).await;
    assert_eq!(up.status, 200, "{}", up.body);
    assert_eq!(up.body["replaced"], "0.1.0");
    assert_eq!(up.body["plugin"]["version"], "0.2.0");
    assert_eq!(up.body["plugin"]["pending"]["kv"], true);
    assert!(up.body["plugin"]["granted"].get("kv").is_none());
    assert_eq!(
        admin
            .call("echo", "echo", json!({ "text": "v2" }))
            .await
            .status,
        200,
        "runs with what is granted"
    );
    let granted = admin
        .post("/api/v1/plugins/echo/grants", json!({ "kv": true }))
        .await;
    assert_eq!(granted.status, 200, "{}", granted.body);
    assert_eq!(granted.body["pending"], json!({}));
    let unrequested = admin
        .post(
            "/api/v1/plugins/echo/grants",
            json!({ "secrets": ["nope"] }),
        )
        .await;
    assert_eq!(unrequested.status, 409);
    assert_eq!(unrequested.code(), "not_requested");
    let audit = admin.get("/api/v1/audit?action=plugin.grant").await;
    assert_eq!(
        audit.body["items"][0]["outcome"], "error",
        "the refused grant"
    );
    assert_eq!(audit.body["items"][1]["outcome"], "ok");
    server.stop().await;
}
