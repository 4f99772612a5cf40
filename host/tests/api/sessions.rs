//! Session hardening: concurrent refreshes (exactly one rotation wins, a reuse
//! kills the family including concurrently minted pairs), password changes
//! (current password, other sessions end, what survives), and every scope.

use crate::harness::{ADMIN_PASSWORD, Backend, Client, Server};
use serde_json::{Value, json};

crate::on_both_backends!(
    concurrent_refreshes_rotate_once_and_revoke_the_family,
    password_changes_need_the_current_password_and_end_other_sessions,
    every_scope_allows_what_it_names_and_nothing_else,
);

async fn login(server: &Server, user: &str, password: &str) -> Value {
    let r = server
        .anon()
        .post(
            "/api/v1/auth/login",
            json!({ "username": user, "password": password }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

async fn concurrent_refreshes_rotate_once_and_revoke_the_family(backend: Backend) {
    let server = Server::start(backend).await;
    let anon = server.anon();
    for trial in 0..5 {
        let first = login(&server, "admin", ADMIN_PASSWORD).await;
        let refresh = first["refresh_token"].as_str().unwrap().to_string();
        let racers = (0..8).map(|_| {
            let anon = anon.clone();
            let refresh = refresh.clone();
            tokio::spawn(async move {
                anon.post("/api/v1/auth/refresh", json!({ "refresh_token": refresh }))
                    .await
            })
        });
        let mut winners = Vec::new();
        let mut reused = 0;
        for racer in racers {
            let r = racer.await.unwrap();
            match r.status {
                200 => winners.push(r.body),
                401 => reused += 1,
                other => panic!("trial {trial}: unexpected {other}: {}", r.body),
            }
        }
        assert!(
            winners.len() <= 1,
            "trial {trial}: {} rotations won",
            winners.len()
        );
        assert!(reused >= 7, "trial {trial}: the losers are refused");
        // Some refreshes were reuses: the family is dead, including whatever a
        // winner minted concurrently.
        let first_access = anon.with_token(first["access_token"].as_str().unwrap());
        assert_eq!(
            first_access.get("/api/v1/auth/me").await.status,
            401,
            "trial {trial}"
        );
        for winner in &winners {
            let access = anon.with_token(winner["access_token"].as_str().unwrap());
            assert_eq!(
                access.get("/api/v1/auth/me").await.status,
                401,
                "trial {trial}"
            );
            let again = anon
                .post(
                    "/api/v1/auth/refresh",
                    json!({ "refresh_token": winner["refresh_token"] }),
                )
                .await;
            assert_eq!(again.status, 401, "trial {trial}: {}", again.body);
        }
    }
    // One refresh alone still rotates and works.
    let first = login(&server, "admin", ADMIN_PASSWORD).await;
    let r = anon
        .post(
            "/api/v1/auth/refresh",
            json!({ "refresh_token": first["refresh_token"] }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let access = anon.with_token(r.body["access_token"].as_str().unwrap());
    assert_eq!(access.get("/api/v1/auth/me").await.status, 200);
    server.stop().await;
}

async fn password_changes_need_the_current_password_and_end_other_sessions(backend: Backend) {
    let server = Server::start(backend).await;
    let (_, bob_id) = server.user("bob", "user").await;
    let (_, carol_id) = server.user("carol", "user").await;
    let first = login(&server, "bob", "password-of-user").await;
    let other = login(&server, "bob", "password-of-user").await;
    let bob = server
        .anon()
        .with_token(first["access_token"].as_str().unwrap());
    let bob_elsewhere = server
        .anon()
        .with_token(other["access_token"].as_str().unwrap());
    let created = bob.post("/api/v1/tokens", json!({ "name": "ci" })).await;
    assert_eq!(created.status, 201);
    let api_token = server
        .anon()
        .with_token(created.body["value"].as_str().unwrap());
    let path = format!("/api/v1/users/{bob_id}");

    let missing = bob
        .patch(&path, json!({ "password": "new-password-1" }))
        .await;
    assert_eq!(
        (missing.status, missing.code()),
        (403, "current_password_required")
    );
    assert!(missing.text.contains("current_password"));
    let wrong = bob
        .patch(
            &path,
            json!({ "password": "new-password-1", "current_password": "not-it-at-all" }),
        )
        .await;
    assert_eq!((wrong.status, wrong.code()), (403, "wrong_password"));
    let alone = bob
        .patch(&path, json!({ "current_password": "password-of-user" }))
        .await;
    assert_eq!(alone.status, 200, "alone it changes nothing");
    let huge = bob
        .patch(
            &path,
            json!({ "password": "new-password-1", "current_password": "x".repeat(1025) }),
        )
        .await;
    assert_eq!(huge.status, 400, "the published maxLength");
    let other_user = bob
        .patch(
            &format!("/api/v1/users/{carol_id}"),
            json!({ "password": "new-password-1", "current_password": "password-of-user" }),
        )
        .await;
    assert_eq!(
        other_user.status, 404,
        "another user's account is invisible"
    );

    let ok = bob
        .patch(
            &path,
            json!({ "password": "new-password-1", "current_password": "password-of-user" }),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(
        bob.get("/api/v1/auth/me").await.status,
        200,
        "the caller's session stays"
    );
    assert_eq!(
        bob_elsewhere.get("/api/v1/auth/me").await.status,
        401,
        "other sessions end"
    );
    let refresh_other = server
        .anon()
        .post(
            "/api/v1/auth/refresh",
            json!({ "refresh_token": other["refresh_token"] }),
        )
        .await;
    assert_eq!(refresh_other.status, 401);
    assert_eq!(
        api_token.get("/api/v1/auth/me").await.status,
        200,
        "API tokens survive (separately revocable)"
    );
    let listed = bob.get("/api/v1/tokens").await;
    let id = listed.body["items"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        bob.delete(&format!("/api/v1/tokens/{id}")).await.status,
        204
    );
    assert_eq!(api_token.get("/api/v1/auth/me").await.status, 401);
    login(&server, "bob", "new-password-1").await;

    // An administrator changes another user's password without theirs; all
    // of that user's sessions end.
    let admin_change = server
        .admin
        .patch(&path, json!({ "password": "new-password-2" }))
        .await;
    assert_eq!(admin_change.status, 200, "{}", admin_change.body);
    assert_eq!(bob.get("/api/v1/auth/me").await.status, 401);
    login(&server, "bob", "new-password-2").await;
    // The administrator's own password needs the current one too.
    let me = server.admin.get("/api/v1/auth/me").await;
    let admin_path = format!("/api/v1/users/{}", me.body["user"]["id"].as_str().unwrap());
    let r = server
        .admin
        .patch(&admin_path, json!({ "password": "new-admin-password" }))
        .await;
    assert_eq!(r.status, 403);
    server.stop().await;
}

/// Create an API token of `owner` with `scopes`.
async fn token(owner: &Client, scopes: &[&str]) -> Client {
    let r = owner
        .post(
            "/api/v1/tokens",
            json!({ "name": "scoped", "scopes": scopes }),
        )
        .await;
    assert_eq!(r.status, 201, "{scopes:?}: {}", r.body);
    assert_eq!(r.body["token"]["scopes"], json!(scopes));
    owner.with_token(r.body["value"].as_str().unwrap())
}

async fn every_scope_allows_what_it_names_and_nothing_else(backend: Backend) {
    let server = Server::start_with(backend, |c| {
        c.listen = "0.0.0.0:7700".parse().unwrap();
    })
    .await;
    let (dave, dave_id) = server.user("dave", "user").await;
    let me = format!("/api/v1/users/{dave_id}");
    let unknown = dave
        .post(
            "/api/v1/tokens",
            json!({ "name": "x", "scopes": ["admin"] }),
        )
        .await;
    assert_eq!(unknown.status, 400);
    let openapi = server.anon().get("/api/v1/openapi.json").await.body;
    let listed: Vec<String> = openapi["components"]["schemas"]["Scope"]["enum"]
        .as_array()
        .expect("the Scope enum")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let all: Vec<&str> = switchyard::auth::Scope::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(listed, all, "the OpenAPI enum is the one list");

    let mut current = "password-of-user".to_string();
    for scope in all.iter().copied() {
        let dave = server.login("dave", &current).await;
        let t = token(&dave, &[scope]).await;
        let read = t.get("/api/v1/tokens").await.status;
        assert_eq!(read == 200, scope == "read", "{scope}: read → {read}");
        let call = t
            .post("/api/v1/tools/none/none:call", json!({ "arguments": {} }))
            .await
            .status;
        assert_eq!(
            call == 403,
            scope != "tools:call",
            "{scope}: tools → {call}"
        );
        let sandboxes = t.delete("/api/v1/sandboxes/none").await.status;
        assert_eq!(
            sandboxes == 403,
            scope != "sandboxes",
            "{scope}: sandboxes → {sandboxes}"
        );
        let tasks = t.post("/api/v1/tasks/none/cancel", json!({})).await.status;
        assert_eq!(tasks == 403, scope != "tasks", "{scope}: tasks → {tasks}");
        let plugins = t.upload("", b"not a package".to_vec()).await.status;
        assert_eq!(
            plugins == 403,
            scope != "plugins:write",
            "{scope}: plugins → {plugins}"
        );
        let mint = t
            .post(
                "/api/v1/tokens",
                json!({ "name": "child", "scopes": [scope] }),
            )
            .await
            .status;
        assert_eq!(
            mint == 201,
            scope == "tokens:write",
            "{scope}: tokens → {mint}"
        );
        let wider = t
            .post(
                "/api/v1/tokens",
                json!({ "name": "child", "scopes": ["read", "tools:call"] }),
            )
            .await
            .status;
        assert_eq!(wider, 403, "{scope}: never a wider token");
        let next = format!("{scope}-password-1");
        let pw = t
            .patch(
                &me,
                json!({ "password": next, "current_password": current }),
            )
            .await
            .status;
        if scope == "users:write" {
            assert_eq!(
                pw, 200,
                "{scope}: may change the password with the current one"
            );
            current = next;
        } else {
            assert_eq!(
                pw, 403,
                "{scope}: a scoped token cannot change the password"
            );
        }
        let metrics = t.get("/metrics").await.status;
        assert_eq!(metrics, 403, "{scope}: metrics need an administrator");
    }
    let admin_metrics = token(&server.admin, &["metrics"]).await;
    let scraped = admin_metrics.get("/metrics").await;
    assert_eq!(scraped.status, 200);
    assert!(scraped.text.contains("switchyard_http_requests_total"));
    let admin_read = token(&server.admin, &["read"]).await;
    assert_eq!(admin_read.get("/metrics").await.status, 403);
    assert_eq!(server.anon().get("/metrics").await.status, 401);
    assert_eq!(server.admin.get("/metrics").await.status, 200);
    server.stop().await;
}
