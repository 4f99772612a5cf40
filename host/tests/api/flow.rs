//! The newcomer's path: health, log in, upload a plugin, call it, disable it
//! (calls fail clearly), enable it again, read the audit trail and the metrics.

use crate::harness::{Backend, Server, package_bytes};
use serde_json::json;

crate::on_both_backends!(
    newcomer_flow,
    openapi_and_docs_describe_every_route,
    skills_come_from_plugins_and_the_skills_dir
);

async fn newcomer_flow(backend: Backend) {
    let server = Server::start(backend).await;
    let anon = crate::harness::Client::anonymous(&server.base);
    let health = anon.get("/api/v1/health").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.body["status"], "ok");
    assert!(health.headers.contains_key("x-request-id"));

    let admin = &server.admin;
    let me = admin.get("/api/v1/auth/me").await;
    assert_eq!(me.body["user"]["role"], "admin");
    assert!(me.body["user"].get("password_hash").is_none());

    let installed = admin.upload("?grant=true", package_bytes("echo")).await;
    assert_eq!(installed.status, 201, "{}", installed.body);
    assert_eq!(installed.body["plugin"]["name"], "echo");
    let tools = admin.get("/api/v1/tools").await;
    assert!(
        tools.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["plugin"] == "echo" && t["input_schema"]["type"] == "object"),
        "{}",
        tools.body
    );

    let call = admin.call("echo", "echo", json!({ "text": "hello" })).await;
    assert_eq!(call.status, 200, "{}", call.body);
    assert_eq!(call.body["content"][0]["text"], "hello");
    assert_eq!(
        call.body["request_id"],
        call.headers["x-request-id"].to_str().unwrap()
    );

    let disabled = admin
        .patch("/api/v1/plugins/echo", json!({ "enabled": false }))
        .await;
    assert_eq!(disabled.status, 200);
    assert_eq!(disabled.body["enabled"], false);
    let refused = admin.call("echo", "echo", json!({ "text": "hello" })).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(refused.code(), "plugin_disabled");
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("disabled")
    );
    assert!(!admin.get("/api/v1/tools").await.text.contains("\"echo\""));

    assert_eq!(
        admin
            .patch("/api/v1/plugins/echo", json!({ "enabled": true }))
            .await
            .status,
        200
    );
    let again = admin.call("echo", "echo", json!({ "text": "back" })).await;
    assert_eq!(again.body["content"][0]["text"], "back");

    let audit = admin.get("/api/v1/audit?action=plugin.").await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["plugin.enable", "plugin.disable", "plugin.install"],
        "newest first"
    );
    let entry = &audit.body["items"][2];
    assert_eq!(entry["actor"], "admin");
    assert_eq!(entry["target"], "plugin:echo");
    assert_eq!(entry["outcome"], "ok");
    let logins = admin
        .get("/api/v1/audit?action=auth.login&outcome=ok")
        .await;
    assert_eq!(logins.body["items"].as_array().unwrap().len(), 1);

    let metrics = anon.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    for needle in [
        "switchyard_http_requests_total{",
        "route=\"/api/v1/tools/{plugin}/{tool}:call\"",
        "switchyard_plugin_calls_total{plugin=\"echo\",tool=\"echo\",outcome=\"ok\"}",
        "switchyard_plugin_call_duration_seconds_bucket",
        "switchyard_http_request_duration_seconds_bucket",
        "switchyard_plugin_instances_in_use",
    ] {
        assert!(
            metrics.text.contains(needle),
            "metrics lack {needle}:\n{}",
            metrics.text
        );
    }

    let removed = admin.delete("/api/v1/plugins/echo").await;
    assert_eq!(removed.status, 204);
    assert_eq!(
        admin
            .call("echo", "echo", json!({ "text": "x" }))
            .await
            .status,
        404
    );
    server.stop().await;
}

async fn openapi_and_docs_describe_every_route(backend: Backend) {
    let server = Server::start(backend).await;
    let anon = crate::harness::Client::anonymous(&server.base);
    let doc = anon.get("/api/v1/openapi.json").await;
    assert_eq!(doc.status, 200);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc.body["paths"].as_object().unwrap();
    for path in [
        "/api/v1/health",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/auth/me",
        "/api/v1/users",
        "/api/v1/users/{id}",
        "/api/v1/tokens",
        "/api/v1/tokens/{id}",
        "/api/v1/plugins",
        "/api/v1/plugins/from-url",
        "/api/v1/plugins/from-path",
        "/api/v1/plugins/{name}",
        "/api/v1/plugins/{name}/grants",
        "/api/v1/plugins/{name}/config/{key}",
        "/api/v1/plugins/{name}/secrets/{secret}",
        "/api/v1/tools",
        "/api/v1/tools/{plugin}/{tool}:call",
        "/api/v1/skills",
        "/api/v1/skills/{source}/{name}",
        "/api/v1/audit",
    ] {
        assert!(paths.contains_key(path), "OpenAPI lacks {path}");
    }
    assert!(doc.body["components"]["securitySchemes"]["bearer"].is_object());
    let docs = anon.get("/api/v1/docs").await;
    assert_eq!(docs.status, 200);
    assert!(docs.text.contains("/api/v1/tools/{plugin}/{tool}:call"));
    server.stop().await;
}

async fn skills_come_from_plugins_and_the_skills_dir(backend: Backend) {
    let server = Server::start(backend).await;
    let local = server.data.path().join("skills/release-notes");
    std::fs::create_dir_all(local.join("references")).unwrap();
    std::fs::write(
        local.join("SKILL.md"),
        "---\nname: release-notes\ndescription: Write release notes.\n---\n# Release notes\nGroup by kind.\n",
    )
    .unwrap();
    std::fs::write(local.join("references/style.md"), "Short lines.").unwrap();
    let admin = &server.admin;
    assert_eq!(
        admin
            .upload("?grant=true", package_bytes("starter-skills"))
            .await
            .status,
        201
    );
    let list = admin.get("/api/v1/skills").await;
    let names: Vec<String> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}/{}",
                s["plugin"].as_str().unwrap(),
                s["name"].as_str().unwrap()
            )
        })
        .collect();
    for expected in [
        "starter-skills/code-review",
        "starter-skills/commit-messages",
        "_local/release-notes",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    assert!(
        !list.text.contains(server.data.path().to_str().unwrap()),
        "no server paths"
    );
    let review = admin.get("/api/v1/skills/starter-skills/code-review").await;
    assert_eq!(review.status, 200, "{}", review.body);
    assert!(!review.body["instructions"].as_str().unwrap().is_empty());
    let notes = admin.get("/api/v1/skills/_local/release-notes").await;
    assert_eq!(
        notes.body["instructions"],
        "# Release notes\nGroup by kind.\n"
    );
    assert_eq!(notes.body["files"][0]["path"], "references/style.md");
    assert_eq!(notes.body["files"][0]["text"], "Short lines.");
    assert_eq!(admin.get("/api/v1/skills/_local/nope").await.status, 404);
    assert_eq!(admin.get("/api/v1/skills/nope/nope").await.status, 404);
    server.stop().await;
}
