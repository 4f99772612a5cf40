//! First-run setup (the one-time link `serve` prints creates the first
//! administrator, once), the console's pages next to the API's paths, and the
//! size limits the console checks before it sends.

use crate::harness::{Backend, Server};
use serde_json::json;

crate::on_both_backends!(the_setup_token_creates_the_first_admin_once);

async fn the_setup_token_creates_the_first_admin_once(backend: Backend) {
    let server = Server::start_without_users(backend).await;
    let anon = server.anon();
    let state = anon.get("/api/v1/setup").await;
    assert_eq!(
        (state.status, state.body.clone()),
        (200, json!({ "required": true }))
    );
    let post = |body: serde_json::Value| anon.post("/api/v1/setup", body);
    let good = |token: &str, user: &str| json!({ "token": token, "username": user, "password": "a-long-password" });

    // Before `serve` issued a token, nothing opens it.
    assert_eq!(post(good("", "admin")).await.status, 401);
    let token = server.services.auth.issue_setup_token();
    assert_eq!(post(good("sys_wrong", "admin")).await.status, 401);
    assert_eq!(post(good(&"x".repeat(10_000), "admin")).await.status, 401);
    let short = post(json!({ "token": token, "username": "admin", "password": "short" })).await;
    assert_eq!(short.status, 400, "{}", short.body);
    assert_eq!(post(good(&token, "no spaces allowed")).await.status, 400);
    let extra = post(
        json!({ "token": token, "username": "a", "password": "a-long-password", "role": "user" }),
    )
    .await;
    assert_eq!(extra.status, 400, "unknown fields are refused");
    let raw = anon
        .send(
            anon.request(reqwest::Method::POST, "/api/v1/setup")
                .body("token=x"),
        )
        .await;
    assert_eq!(raw.status, 415);

    // Refusals keep the token usable; two racing setups make one admin.
    let (a, b) = tokio::join!(post(good(&token, "first")), post(good(&token, "second")));
    let mut codes = [a.status, b.status];
    codes.sort_unstable();
    assert_eq!(codes[0], 201, "{} / {}", a.body, b.body);
    assert!(matches!(codes[1], 401 | 409), "{codes:?}");
    let winner = if a.status == 201 { a } else { b };
    assert_eq!(winner.body["user"]["role"], "admin");
    let me = anon
        .with_token(winner.body["access_token"].as_str().unwrap())
        .get("/api/v1/auth/me")
        .await;
    assert_eq!(me.status, 200);
    assert_eq!(server.services.store.user_count().await.unwrap(), 1);

    // Used up: the same token, and a new one, are refused now a user exists.
    assert_eq!(post(good(&token, "third")).await.status, 409);
    let later = server.services.auth.issue_setup_token();
    assert_eq!(post(good(&later, "fourth")).await.status, 409);
    assert_eq!(
        anon.get("/api/v1/setup").await.body,
        json!({ "required": false })
    );
    let admin = server
        .login(
            winner.body["user"]["username"].as_str().unwrap(),
            "a-long-password",
        )
        .await;
    let audit = admin.get("/api/v1/audit?action=auth.setup").await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    let outcomes: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert!(
        outcomes.contains(&"ok") && outcomes.contains(&"denied"),
        "{outcomes:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_pages_are_served_beside_the_api() {
    let server = Server::start(Backend::Sqlite).await;
    let http = reqwest::Client::new();
    let page = http
        .get(format!("{}/chat/abc", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src"), "{csp}");
    assert!(!csp.contains("unsafe-eval"), "{csp}");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    let html = page.text().await.unwrap();
    if switchyard::api::web::built() {
        assert!(html.contains("<div id=\"app\">"), "{html}");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
    } else {
        assert!(
            html.contains("scripts/web"),
            "the page says how to build the console: {html}"
        );
    }
    let missing = http
        .get(format!("{}/assets/none-123.js", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        missing.status(),
        if switchyard::api::web::built() {
            404
        } else {
            200
        }
    );
    for (method, path, status) in [
        (reqwest::Method::GET, "/api/v1/no-such-route", 404),
        (reqwest::Method::GET, "/api/v1", 404),
        (reqwest::Method::POST, "/chat", 405),
        (reqwest::Method::DELETE, "/", 405),
    ] {
        let r = http
            .request(method.clone(), format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{method} {path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .contains("json"),
            "{method} {path}"
        );
    }
    let head = http
        .head(format!("{}/tasks", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_limits_are_published_to_signed_in_callers() {
    let server = Server::start_with(Backend::Sqlite, |c| c.max_upload_bytes = 3 << 20).await;
    assert_eq!(server.anon().get("/api/v1/limits").await.status, 401);
    let r = server.admin.get("/api/v1/limits").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["plugin_upload_bytes"], 3 << 20);
    assert_eq!(r.body["sandbox_file_bytes"], 256 << 20);
    assert!(r.body["task_input_bytes"].as_u64().unwrap() > 0);
    server.stop().await;
}
