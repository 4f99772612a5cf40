//! The API keeps the promises of its OpenAPI document: `Allow` on 405, schema
//! constraints enforced exactly as published, idempotent no-op updates, the
//! documented status of each failure, percent-decoded path segments.

use crate::harness::{Backend, Server, package_bytes};
use serde_json::json;

crate::on_both_backends!(
    wrong_methods_list_the_allowed_ones,
    documented_constraints_are_the_enforced_ones,
    no_op_updates_and_precise_failures,
    logout_says_what_it_cannot_end,
    url_installs_by_users_stay_off_private_networks
);

async fn wrong_methods_list_the_allowed_ones(backend: Backend) {
    let server = Server::start(backend).await;
    let admin = &server.admin;
    let doc = admin.get("/api/v1/openapi.json").await.body;
    let mut ids = std::collections::HashSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            assert!(
                ids.insert(id.to_string()),
                "{method} {path}: duplicate id {id}"
            );
        }
    }
    for (method, path, allow) in [
        (reqwest::Method::PUT, "/api/v1/health", "GET"),
        (reqwest::Method::DELETE, "/api/v1/tools", "GET"),
        (reqwest::Method::PATCH, "/api/v1/tokens", "GET, POST"),
        (
            reqwest::Method::POST,
            "/api/v1/plugins/echo/config/key",
            "DELETE, PUT",
        ),
        (reqwest::Method::DELETE, "/metrics", "GET"),
        (reqwest::Method::PUT, "/api/v1/sandboxes/storage", "GET"),
    ] {
        let r = admin.send(admin.request(method.clone(), path)).await;
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.headers["allow"], allow, "{method} {path}");
        let documented = doc["paths"][path].as_object();
        if let Some(ops) = documented {
            let listed: Vec<String> = ops.keys().map(|m| m.to_uppercase()).collect();
            assert_eq!(
                listed.join(", "),
                allow,
                "{path}: Allow matches the document"
            );
        }
    }
    server.stop().await;
}

async fn documented_constraints_are_the_enforced_ones(backend: Backend) {
    let server = Server::start(backend).await;
    let admin = &server.admin;
    let schemas = &admin.get("/api/v1/openapi.json").await.body["components"]["schemas"];
    assert_eq!(schemas["NewToken"]["properties"]["name"]["maxLength"], 100);
    assert_eq!(schemas["NewUser"]["properties"]["password"]["minLength"], 8);
    assert!(
        schemas["Scope"]["enum"]
            .as_array()
            .unwrap()
            .contains(&json!("tools:call"))
    );

    let long_unicode = "é".repeat(100);
    let ok = admin
        .post(
            "/api/v1/tokens",
            json!({ "name": long_unicode, "scopes": ["read"], "expires_in_days": 30.0 }),
        )
        .await;
    assert_eq!(
        ok.status, 201,
        "100 characters are allowed, whatever their bytes: {}",
        ok.body
    );
    for bad in [
        json!({ "name": "é".repeat(101) }),
        json!({ "name": " \t" }),
        json!({ "name": "x", "expires_in_days": "30" }),
        json!({ "name": "x", "expires_in_days": 1.5 }),
        json!({ "name": "x", "expires_in_days": 3651 }),
        json!({ "name": "x", "scopes": ["root"] }),
    ] {
        let r = admin.post("/api/v1/tokens", bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    let long_password = "ü".repeat(256);
    let created = admin
        .post(
            "/api/v1/users",
            json!({ "username": "unicode", "password": long_password }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    server.login("unicode", &long_password).await;
    let too_long = admin
        .post(
            "/api/v1/users",
            json!({ "username": "other", "password": "p".repeat(257) }),
        )
        .await;
    assert_eq!(too_long.status, 400);
    assert_eq!(admin.get("/api/v1/tokens?limit=2.0").await.status, 400);
    assert_eq!(admin.get("/api/v1/tokens?limit=2").await.status, 200);
    assert_eq!(admin.get("/api/v1/tokens?limit=0").await.status, 400);
    assert_eq!(
        admin
            .get(&format!("/api/v1/audit?after={}", "ä".repeat(200)))
            .await
            .status,
        200,
        "200 characters are within the documented maxLength"
    );
    // Published maxima of an administrator's sandbox limits, and bodies that
    // are JSON but not the documented object.
    let limits = format!(
        "/api/v1/users/{}/sandbox-limits",
        created.body["id"].as_str().unwrap()
    );
    for (body, why) in [
        (
            json!({ "storage_mb": 4_194_305 }),
            "storage_mb above its maximum",
        ),
        (json!({ "quota": 1001 }), "quota above its maximum"),
        (
            json!([null, null]),
            "an array where an object is documented",
        ),
        (json!("text"), "a string where an object is documented"),
    ] {
        let r = admin.put(&limits, body).await;
        assert_eq!(r.status, 400, "{why}: {}", r.text);
    }
    let at_max = admin
        .put(&limits, json!({ "storage_mb": 4_194_304, "quota": 1000 }))
        .await;
    assert_eq!(at_max.status, 200, "{}", at_max.text);
    server.stop().await;
}

async fn no_op_updates_and_precise_failures(backend: Backend) {
    let server = Server::start(backend).await;
    let admin = &server.admin;
    assert_eq!(admin.upload("", package_bytes("hostile")).await.status, 201);
    let unchanged = admin.patch("/api/v1/plugins/hostile", json!({})).await;
    assert_eq!(unchanged.status, 200, "{}", unchanged.body);
    assert_eq!(unchanged.body["enabled"], true);
    let nothing = admin
        .post("/api/v1/plugins/hostile/grants", json!({}))
        .await;
    assert_eq!(nothing.status, 200, "{}", nothing.body);
    assert_eq!(nothing.body["granted"], json!({}));
    let unrequested = admin
        .post(
            "/api/v1/plugins/hostile/grants",
            json!({ "http": ["example.com"] }),
        )
        .await;
    assert_eq!(unrequested.status, 409, "{}", unrequested.body);
    assert_eq!(unrequested.code(), "not_requested");
    let unknown_key = admin
        .put(
            "/api/v1/plugins/hostile/config/nope",
            json!({ "value": "1" }),
        )
        .await;
    assert_eq!(unknown_key.status, 404, "{}", unknown_key.body);
    let unknown_secret = admin.delete("/api/v1/plugins/hostile/secrets/nope").await;
    assert_eq!(unknown_secret.status, 404);
    let set = admin
        .put(
            "/api/v1/plugins/hostile/config/greeting",
            json!({ "value": "¡hola!" }),
        )
        .await;
    assert_eq!(set.status, 200);
    assert_eq!(set.body["config"]["greeting"], "¡hola!");
    let unset = admin
        .delete("/api/v1/plugins/hostile/config/greeting")
        .await;
    assert_eq!(unset.status, 200);
    assert!(unset.body["config"].get("greeting").is_none());
    assert_eq!(
        admin.get("/api/v1/plugins/host%69le").await.body["name"],
        "hostile",
        "path segments are percent-decoded"
    );
    assert_eq!(
        admin
            .post(
                "/api/v1/plugins/from-path",
                json!({ "path": "/no/such/dir" })
            )
            .await
            .status,
        404
    );
    let empty = admin.upload("", Vec::new()).await;
    assert_eq!(empty.status, 422);

    let me = admin.get("/api/v1/auth/me").await.body["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for change in [json!({ "disabled": true }), json!({ "role": "user" })] {
        let r = admin
            .patch(&format!("/api/v1/users/{me}"), change.clone())
            .await;
        assert_eq!(
            r.status, 409,
            "{change}: an admin cannot lock themselves out"
        );
    }
    server.stop().await;
}

async fn logout_says_what_it_cannot_end(backend: Backend) {
    let server = Server::start(backend).await;
    let admin = &server.admin;
    let token = admin.post("/api/v1/tokens", json!({ "name": "m" })).await;
    let machine = admin.with_token(token.body["value"].as_str().unwrap());
    let no_session = machine
        .send(machine.request(reqwest::Method::POST, "/api/v1/auth/logout"))
        .await;
    assert_eq!(no_session.status, 409, "{}", no_session.body);
    let unknown = machine
        .post(
            "/api/v1/auth/logout",
            json!({ "refresh_token": "not-a-token" }),
        )
        .await;
    assert_eq!(unknown.status, 404);
    let session = server.login("admin", crate::harness::ADMIN_PASSWORD).await;
    let null_body = session
        .send(
            session
                .request(reqwest::Method::POST, "/api/v1/auth/logout")
                .header("content-type", "application/json")
                .body("null"),
        )
        .await;
    assert_eq!(
        null_body.status, 204,
        "a null body ends the caller's session"
    );
    assert_eq!(session.get("/api/v1/auth/me").await.status, 401);
    server.stop().await;
}

async fn url_installs_by_users_stay_off_private_networks(backend: Backend) {
    let server = Server::start(backend).await;
    let (bob, _) = server.user("bob", "user").await;
    for url in [
        "http://127.0.0.1:9/p.tar.gz",
        "http://localhost:9/p.tar.gz",
        "http://[::1]:9/p.tar.gz",
        "http://169.254.169.254/latest",
        "http://10.0.0.1/p.tar.gz",
    ] {
        let r = bob
            .post(
                "/api/v1/plugins/from-url",
                json!({ "url": url, "sha256": "a".repeat(64) }),
            )
            .await;
        assert_eq!(r.status, 422, "{url}: {}", r.body);
        assert_eq!(r.code(), "download_failed");
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not a public address"),
            "{url}: {}",
            r.body
        );
    }
    server.stop().await;
}
