//! Logins, refresh rotation, logout, API tokens, bad credentials, rate limits.

use crate::harness::{ADMIN_PASSWORD, Backend, Client, Server};
use serde_json::json;

crate::on_both_backends!(
    refresh_tokens_rotate_and_reuse_revokes_the_session,
    logout_ends_the_session,
    api_tokens_are_shown_once_scoped_and_revocable,
    bad_credentials_are_rejected,
    logins_are_rate_limited,
    disabled_users_lose_access,
);

async fn login_body(server: &Server) -> serde_json::Value {
    let r = Client::anonymous(&server.base)
        .post(
            "/api/v1/auth/login",
            json!({ "username": "admin", "password": ADMIN_PASSWORD }),
        )
        .await;
    assert_eq!(r.status, 200);
    r.body
}

async fn refresh_tokens_rotate_and_reuse_revokes_the_session(backend: Backend) {
    let server = Server::start(backend).await;
    let anon = Client::anonymous(&server.base);
    let first = login_body(&server).await;
    assert_eq!(first["expires_in"], 7200);
    assert_eq!(first["token_type"], "Bearer");
    let r1 = first["refresh_token"].as_str().unwrap();
    let second = anon
        .post("/api/v1/auth/refresh", json!({ "refresh_token": r1 }))
        .await;
    assert_eq!(second.status, 200, "{}", second.body);
    let r2 = second.body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2, "rotated");
    let access = anon.with_token(second.body["access_token"].as_str().unwrap());
    assert_eq!(access.get("/api/v1/auth/me").await.status, 200);

    let reused = anon
        .post("/api/v1/auth/refresh", json!({ "refresh_token": r1 }))
        .await;
    assert_eq!(reused.status, 401);
    assert!(
        reused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
    let after_theft = anon
        .post("/api/v1/auth/refresh", json!({ "refresh_token": r2 }))
        .await;
    assert_eq!(after_theft.status, 401, "reuse revoked the whole session");
    server.services.auth.forget_sessions();
    assert_eq!(
        access.get("/api/v1/auth/me").await.status,
        401,
        "its access tokens too"
    );

    let bogus = anon
        .post(
            "/api/v1/auth/refresh",
            json!({ "refresh_token": "syr_nope" }),
        )
        .await;
    assert_eq!(bogus.status, 401);
    server.stop().await;
}

async fn logout_ends_the_session(backend: Backend) {
    let server = Server::start(backend).await;
    let anon = Client::anonymous(&server.base);
    let body = login_body(&server).await;
    let client = anon.with_token(body["access_token"].as_str().unwrap());
    assert_eq!(client.get("/api/v1/auth/me").await.status, 200);
    assert_eq!(
        client
            .send(client.request(reqwest::Method::POST, "/api/v1/auth/logout"))
            .await
            .status,
        204
    );
    let after = client.get("/api/v1/auth/me").await;
    assert_eq!(after.status, 401);
    assert_eq!(
        after.headers["www-authenticate"],
        "Bearer realm=\"switchyard\""
    );
    let refresh = anon
        .post(
            "/api/v1/auth/refresh",
            json!({ "refresh_token": body["refresh_token"] }),
        )
        .await;
    assert_eq!(refresh.status, 401);
    assert!(
        server.admin.get("/api/v1/auth/me").await.status == 200,
        "other sessions live on"
    );
    server.stop().await;
}

async fn api_tokens_are_shown_once_scoped_and_revocable(backend: Backend) {
    let server = Server::start(backend).await;
    let admin = &server.admin;
    let created = admin
        .post(
            "/api/v1/tokens",
            json!({ "name": "ci", "scopes": ["read"], "expires_in_days": 30 }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let value = created.body["value"].as_str().unwrap().to_string();
    assert!(value.starts_with("sy_"));
    let id = created.body["token"]["id"].as_str().unwrap().to_string();
    let listed = admin.get("/api/v1/tokens").await;
    assert!(
        !listed.text.contains(&value),
        "the value is shown only once"
    );
    assert_eq!(listed.body["items"][0]["prefix"], &value[..9]);

    let machine = Client::anonymous(&server.base).with_token(&value);
    let me = machine.get("/api/v1/auth/me").await;
    assert_eq!(me.body["via"], "api_token");
    assert_eq!(machine.get("/api/v1/plugins").await.status, 200);
    let scoped = machine
        .post(
            "/api/v1/users",
            json!({ "username": "x", "password": "password1" }),
        )
        .await;
    assert_eq!(scoped.status, 403, "read-only token: {}", scoped.body);
    let call = machine.call("echo", "echo", json!({})).await;
    assert_eq!(call.status, 403, "no tools:call scope");
    let escalate = machine
        .post("/api/v1/tokens", json!({ "name": "more" }))
        .await;
    assert_eq!(escalate.status, 403);

    assert_eq!(
        admin.delete(&format!("/api/v1/tokens/{id}")).await.status,
        204
    );
    let revoked = machine.get("/api/v1/auth/me").await;
    assert_eq!(revoked.status, 401);
    assert!(
        revoked.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    assert_eq!(
        admin.delete(&format!("/api/v1/tokens/{id}")).await.status,
        404
    );

    for bad in [
        json!({ "name": "" }),
        json!({ "name": "x", "scopes": ["root"] }),
        json!({ "name": "x", "expires_in_days": 0 }),
        json!({ "name": "x", "extra": 1 }),
    ] {
        assert_eq!(
            admin.post("/api/v1/tokens", bad.clone()).await.status,
            400,
            "{bad}"
        );
    }
    server.stop().await;
}

async fn bad_credentials_are_rejected(backend: Backend) {
    let server = Server::start(backend).await;
    let anon = Client::anonymous(&server.base);
    let wrong = anon
        .post(
            "/api/v1/auth/login",
            json!({ "username": "admin", "password": "nope-nope" }),
        )
        .await;
    assert_eq!(wrong.status, 401);
    let unknown = anon
        .post(
            "/api/v1/auth/login",
            json!({ "username": "ghost", "password": "nope-nope" }),
        )
        .await;
    assert_eq!(unknown.status, 401);
    assert_eq!(wrong.body, unknown.body, "no user enumeration");
    assert_eq!(anon.get("/api/v1/plugins").await.status, 401);

    let real = server.admin.token.clone().unwrap();
    let mut parts: Vec<String> = real.split('.').map(String::from).collect();
    let forged_claims = {
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut claims: serde_json::Value =
            serde_json::from_slice(&engine.decode(&parts[1]).unwrap()).unwrap();
        claims["exp"] = json!(4_000_000_000u64);
        engine.encode(claims.to_string())
    };
    parts[1] = forged_claims;
    let forged = parts.join(".");
    let other_key = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({ "sub": "x", "sid": "y", "iat": 1, "exp": 4_000_000_000u64, "iss": "switchyard" }),
        &jsonwebtoken::EncodingKey::from_secret(b"another secret entirely, 32 bytes+"),
    )
    .unwrap();
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({ "sub": "x", "sid": "y", "iat": 1, "exp": 2, "iss": "switchyard" }),
        &jsonwebtoken::EncodingKey::from_secret(b"irrelevant"),
    )
    .unwrap();
    let none_alg = format!("eyJhbGciOiJub25lIn0.{}.", real.split('.').nth(1).unwrap());
    for token in [
        forged.as_str(),
        &other_key,
        &expired,
        &none_alg,
        "garbage",
        "sy_unknown",
        &"x".repeat(10_000),
    ] {
        let r = anon.with_token(token).get("/api/v1/auth/me").await;
        assert_eq!(r.status, 401, "token {}", &token[..token.len().min(40)]);
        assert_eq!(r.code(), "unauthenticated");
    }
    let basic = anon
        .send(
            anon.request(reqwest::Method::GET, "/api/v1/auth/me")
                .header("authorization", "Basic YTpi"),
        )
        .await;
    assert_eq!(basic.status, 401);
    server.stop().await;
}

async fn logins_are_rate_limited(backend: Backend) {
    let server = Server::start_with(backend, |c| c.logins_per_minute = 3).await;
    let anon = Client::anonymous(&server.base);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = anon
            .post(
                "/api/v1/auth/login",
                json!({ "username": "victim", "password": "guess-guess" }),
            )
            .await;
        statuses.push(r.status);
        if r.status == 429 {
            assert!(r.headers.contains_key("retry-after"));
        }
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
    let denied = server
        .admin
        .get("/api/v1/audit?action=auth.login&outcome=denied")
        .await;
    assert_eq!(
        denied.body["items"].as_array().unwrap().len(),
        5,
        "every attempt is audited"
    );
    server.stop().await;
}

async fn disabled_users_lose_access(backend: Backend) {
    let server = Server::start(backend).await;
    let (alice, id) = server.user("alice", "user").await;
    assert_eq!(alice.get("/api/v1/auth/me").await.status, 200);
    let r = server
        .admin
        .patch(&format!("/api/v1/users/{id}"), json!({ "disabled": true }))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(alice.get("/api/v1/auth/me").await.status, 401);
    let login = Client::anonymous(&server.base)
        .post(
            "/api/v1/auth/login",
            json!({ "username": "alice", "password": "password-of-user" }),
        )
        .await;
    assert_eq!(login.status, 401);
    let admin_id = server.admin.get("/api/v1/auth/me").await.body["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let last = server
        .admin
        .patch(
            &format!("/api/v1/users/{admin_id}"),
            json!({ "role": "user" }),
        )
        .await;
    assert_eq!(last.status, 409, "the last admin stays");
    server.stop().await;
}
