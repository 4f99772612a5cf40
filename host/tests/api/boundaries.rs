//! The HTTP boundary: login limits by user and by address, bounded metric
//! labels and who may read `/metrics`, JSON content types, request ids,
//! WebSocket origins and tickets, and the data directory's file modes,
//! sealed JWT secret and crash leftovers.

use crate::harness::{Backend, Server};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

crate::on_both_backends!(
    logins_are_limited_by_user_and_by_address,
    websockets_check_origin_and_take_single_use_tickets,
    the_jwt_secret_is_sealed_and_a_plain_one_migrated,
);

/// A login attempt from `source` (a loopback address, as the peer).
async fn attempt(server: &Server, source: [u8; 4], user: &str, password: &str) -> u16 {
    let http = reqwest::Client::builder()
        .no_proxy()
        .local_address(std::net::IpAddr::from(source))
        .build()
        .unwrap();
    http.post(format!("{}/api/v1/auth/login", server.base))
        .json(&json!({ "username": user, "password": password }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn logins_are_limited_by_user_and_by_address(backend: Backend) {
    let server = Server::start_with(backend, |c| {
        c.login.user_failures = 3;
        c.login.address_failures = 5;
        c.login.max_backoff_secs = 30;
        c.login.clean_address_wait_secs = 3;
    })
    .await;
    server.user("erin", "user").await;
    // Spraying: many user names from one address.
    let mut sprayed = Vec::new();
    for n in 0..7 {
        sprayed.push(
            attempt(
                &server,
                [127, 0, 0, 2],
                &format!("nobody{n}"),
                "guess-guess",
            )
            .await,
        );
    }
    assert_eq!(sprayed, [401, 401, 401, 401, 401, 429, 429]);
    assert_eq!(
        attempt(&server, [127, 0, 0, 3], "erin", "password-of-user").await,
        200,
        "other addresses are not affected"
    );
    // One user from many addresses.
    let mut guesses = Vec::new();
    for n in 10..16 {
        guesses.push(attempt(&server, [127, 0, 0, n], "erin", "guess-guess").await);
    }
    assert_eq!(guesses[..3], [401, 401, 401]);
    assert!(guesses[3..].iter().all(|s| *s == 429), "{guesses:?}");
    // The real user on a clean address waits a few seconds at most, never locked out.
    let first = attempt(&server, [127, 0, 0, 40], "erin", "password-of-user").await;
    if first == 429 {
        tokio::time::sleep(Duration::from_millis(3100)).await;
        assert_eq!(
            attempt(&server, [127, 0, 0, 40], "erin", "password-of-user").await,
            200
        );
    } else {
        assert_eq!(first, 200);
    }
    assert_eq!(
        attempt(&server, [127, 0, 0, 10], "erin", "guess-guess").await,
        401,
        "a success clears the user's failures"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_methods_do_not_add_metric_series() {
    let server = Server::start(Backend::Sqlite).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    for n in 0..50 {
        let method = reqwest::Method::from_bytes(format!("M{n}").as_bytes()).unwrap();
        http.request(method, format!("{}/api/v1/health", server.base))
            .send()
            .await
            .unwrap();
    }
    let text = server.admin.get("/metrics").await.text;
    assert!(
        !text.contains("method=\"M1"),
        "made-up methods are not labels"
    );
    assert!(text.contains("method=\"OTHER\""), "they count as OTHER");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_a_token_unless_the_server_is_loopback_only() {
    let open = Server::start(Backend::Sqlite).await;
    assert_eq!(
        open.anon().get("/metrics").await.status,
        200,
        "loopback only"
    );
    open.stop().await;
    let proxied = Server::start_with(Backend::Sqlite, |c| {
        c.public_url = Some("https://agents.example.com".into());
    })
    .await;
    let r = proxied.anon().get("/metrics").await;
    assert_eq!(r.status, 401, "behind a proxy: {}", r.text);
    assert_eq!(proxied.admin.get("/metrics").await.status, 200);
    let (user, _) = proxied.user("frank", "user").await;
    assert_eq!(user.get("/metrics").await.status, 403);
    proxied.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_bodies_need_a_json_content_type() {
    let server = Server::start(Backend::Sqlite).await;
    let body = json!({ "name": "t" }).to_string();
    let send = |ct: Option<&'static str>| {
        let mut r = server
            .admin
            .request(reqwest::Method::POST, "/api/v1/tokens")
            .body(body.clone());
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        server.admin.send(r)
    };
    for bad in [
        Some("application/x-www-form-urlencoded"),
        Some("text/plain"),
        Some("application/jsonx"),
        None,
    ] {
        let r = send(bad).await;
        assert_eq!(r.status, 415, "{bad:?}: {}", r.text);
        assert_eq!(r.code(), "unsupported_media_type");
        assert!(r.text.contains("application/json"));
    }
    for good in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/merge-patch+json",
    ] {
        assert_eq!(send(Some(good)).await.status, 201, "{good}");
    }
    let login = server
        .anon()
        .send(
            server
                .anon()
                .request(reqwest::Method::POST, "/api/v1/auth/login")
                .body("username=admin&password=x"),
        )
        .await;
    assert_eq!(login.status, 415);
    let doc = server.anon().get("/api/v1/openapi.json").await.body;
    assert!(doc["paths"]["/api/v1/tokens"]["post"]["responses"]["415"].is_object());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_echoed_only_when_safe() {
    let server = Server::start(Backend::Sqlite).await;
    let anon = server.anon();
    let id_of = |value: String| {
        let anon = anon.clone();
        async move {
            let r = anon.request(reqwest::Method::GET, "/api/v1/health");
            let r = anon.send(r.header("x-request-id", value)).await;
            r.headers["x-request-id"].to_str().unwrap().to_string()
        }
    };
    assert_eq!(id_of("abc-123_X".into()).await, "abc-123_X");
    for bad in [
        "a b".to_string(),
        "<script>".into(),
        "x;y".into(),
        "a".repeat(65),
    ] {
        let got = id_of(bad.clone()).await;
        assert_ne!(got, bad);
        assert!(!got.is_empty());
    }
    server.stop().await;
}

/// Open a WebSocket; `Err(status)` when the upgrade is refused.
async fn ws(server: &Server, path: &str, headers: &[(&'static str, String)]) -> Result<(), u16> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("{}{path}", server.base.replacen("http", "ws", 1));
    let mut req = url.into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(*k, v.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok(_) => Ok(()),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("websocket: {e}"),
    }
}

async fn websockets_check_origin_and_take_single_use_tickets(backend: Backend) {
    let server = Server::start(backend).await;
    // A sandbox that does not exist: a caller who gets through is told 404.
    let path = "/api/v1/sandboxes/none/exec/ws";
    let jwt = server.admin.token.clone().unwrap();
    let bearer = ("authorization", format!("Bearer {jwt}"));
    assert_eq!(
        ws(&server, path, std::slice::from_ref(&bearer)).await,
        Err(404)
    );
    let evil = ("origin", "https://evil.example.com".to_string());
    assert_eq!(
        ws(&server, path, &[bearer.clone(), evil.clone()]).await,
        Err(403)
    );
    let local = ("origin", "http://localhost:3000".to_string());
    assert_eq!(ws(&server, path, &[bearer, local]).await, Err(404));

    let r = server.admin.post("/api/v1/ws-tickets", json!({})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["expires_in"], 30);
    let ticket = r.body["ticket"].as_str().unwrap().to_string();
    let with_ticket = format!("{path}?ticket={ticket}");
    assert_eq!(
        ws(&server, &with_ticket, &[evil]).await,
        Err(403),
        "origin first"
    );
    assert_eq!(
        ws(&server, &with_ticket, &[]).await,
        Err(404),
        "the ticket works"
    );
    assert_eq!(ws(&server, &with_ticket, &[]).await, Err(401), "once");
    assert_eq!(
        server
            .anon()
            .post("/api/v1/ws-tickets", json!({}))
            .await
            .status,
        401
    );

    assert_eq!(
        ws(&server, &format!("{path}?access_token={jwt}"), &[]).await,
        Err(404)
    );
    let created = server
        .admin
        .post("/api/v1/tokens", json!({ "name": "ws" }))
        .await;
    let api_token = created.body["value"].as_str().unwrap();
    assert_eq!(
        ws(&server, &format!("{path}?access_token={api_token}"), &[]).await,
        Err(401),
        "API tokens never go in URLs"
    );
    server.stop().await;
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_dir_is_private_and_crash_leftovers_are_removed() {
    let server = Server::start(Backend::Sqlite).await;
    let (data, config) = server.into_data().await;
    let dir = data.path().to_path_buf();
    assert_eq!(mode(&dir), 0o700);
    for file in ["switchyard.db", "secret.key"] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    for f in ["switchyard.db-wal", "switchyard.db-shm"] {
        if dir.join(f).exists() {
            assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
        }
    }
    // A crash mid-install, and modes loosened by hand.
    for leftover in ["plugins/.staging-echo-abc", "tmp/.unpack-1"] {
        std::fs::create_dir_all(dir.join(leftover)).unwrap();
    }
    std::fs::write(dir.join("tmp/.upload-2"), b"half").unwrap();
    let loose = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(&dir, loose.clone()).unwrap();
    std::fs::set_permissions(
        dir.join("switchyard.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let server = Server::resume(data, config).await;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("switchyard.db")), 0o600);
    for leftover in [
        "plugins/.staging-echo-abc",
        "tmp/.unpack-1",
        "tmp/.upload-2",
    ] {
        assert!(!dir.join(leftover).exists(), "{leftover} was removed");
    }
    server.stop().await;
}

async fn the_jwt_secret_is_sealed_and_a_plain_one_migrated(backend: Backend) {
    let server = Server::start(backend).await;
    let store = server.services.store.clone();
    assert_eq!(
        store.setting("jwt_secret").await.unwrap(),
        None,
        "never in plain text"
    );
    let sealed = store.setting("jwt_secret_sealed").await.unwrap().unwrap();
    let access = server.admin.clone();
    // An earlier version's plain secret: sealed at the next start, tokens it
    // signed keep working.
    let plain = "0123456789abcdef0123456789abcdef-plain";
    sqlx::query("DELETE FROM settings WHERE key = 'jwt_secret_sealed'")
        .execute(
            &sqlx::AnyPool::connect(&server.services.config.database_url())
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    assert_ne!(sealed, plain);
    sqlx::query("INSERT INTO settings (key, value) VALUES ('jwt_secret', $1)")
        .bind(plain)
        .execute(
            &sqlx::AnyPool::connect(&server.services.config.database_url())
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    let (data, config) = server.into_data().await;
    let server = Server::resume(data, config.clone()).await;
    let store = server.services.store.clone();
    assert_eq!(
        store.setting("jwt_secret").await.unwrap(),
        None,
        "the plain copy is gone"
    );
    let resealed = store.setting("jwt_secret_sealed").await.unwrap().unwrap();
    assert!(!resealed.contains(plain));
    let cipher = switchyard::server::secret_cipher(&config).unwrap();
    let opened = switchyard::auth::Auth::stored_secret(&store, &cipher)
        .await
        .unwrap();
    assert_eq!(opened, plain.as_bytes());
    assert_eq!(
        server
            .anon()
            .with_token(access.token.as_deref().unwrap())
            .get("/api/v1/auth/me")
            .await
            .status,
        401,
        "the old token was signed with the replaced secret"
    );
    assert_eq!(server.admin.get("/api/v1/auth/me").await.status, 200);
    server.stop().await;
}
