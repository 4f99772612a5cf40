//! Per-user isolation on every route: two users and an admin. Users see and
//! change only their own resources (tokens, private plugins, audit entries,
//! their account); admins see everything; every denial is audited.

use crate::harness::{Backend, Client, Server, package_bytes};
use serde_json::json;

crate::on_both_backends!(
    two_users_are_isolated_on_every_route,
    shared_plugins_are_admin_managed
);

async fn two_users_are_isolated_on_every_route(backend: Backend) {
    let server = Server::start(backend).await;
    let (alice, alice_id) = server.user("alice", "user").await;
    let (bob, bob_id) = server.user("bob", "user").await;
    let admin = &server.admin;

    // Accounts.
    assert_eq!(
        alice.get(&format!("/api/v1/users/{alice_id}")).await.status,
        200
    );
    assert_eq!(
        alice.get(&format!("/api/v1/users/{bob_id}")).await.status,
        404
    );
    let listed = alice.get("/api/v1/users").await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed.body["items"][0]["username"], "alice");
    assert_eq!(
        admin.get("/api/v1/users").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        alice
            .patch(
                &format!("/api/v1/users/{bob_id}"),
                json!({ "password": "new-password" })
            )
            .await
            .status,
        404
    );
    assert_eq!(
        alice
            .patch(
                &format!("/api/v1/users/{alice_id}"),
                json!({ "role": "admin" })
            )
            .await
            .status,
        403
    );
    assert_eq!(
        alice
            .post(
                "/api/v1/users",
                json!({ "username": "mallory", "password": "password1" })
            )
            .await
            .status,
        403
    );
    assert_eq!(
        alice
            .delete(&format!("/api/v1/users/{bob_id}"))
            .await
            .status,
        403
    );

    // API tokens.
    let token = alice
        .post("/api/v1/tokens", json!({ "name": "alice-ci" }))
        .await;
    let token_id = token.body["token"]["id"].as_str().unwrap().to_string();
    assert!(
        bob.get("/api/v1/tokens").await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        bob.delete(&format!("/api/v1/tokens/{token_id}"))
            .await
            .status,
        404
    );
    assert_eq!(
        admin.get("/api/v1/tokens").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "admins see all"
    );
    let alice_machine =
        Client::anonymous(&server.base).with_token(token.body["value"].as_str().unwrap());
    assert_eq!(
        alice_machine.get("/api/v1/auth/me").await.body["user"]["username"],
        "alice"
    );

    // Private plugins: alice installs echo for herself; bob cannot see or touch it.
    let installed = alice.upload("", package_bytes("echo")).await;
    assert_eq!(installed.status, 201, "{}", installed.body);
    assert_eq!(installed.body["plugin"]["owner_id"], alice_id.as_str());
    let granting = alice.upload("?grant=true", package_bytes("echo")).await;
    assert_eq!(granting.status, 403, "users cannot grant");
    assert_eq!(
        alice
            .call("echo", "echo", json!({ "text": "mine" }))
            .await
            .status,
        200
    );
    assert!(
        bob.get("/api/v1/plugins").await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(!bob.get("/api/v1/tools").await.text.contains("echo"));
    for r in [
        bob.get("/api/v1/plugins/echo").await,
        bob.call("echo", "echo", json!({ "text": "theirs" })).await,
        bob.patch("/api/v1/plugins/echo", json!({ "enabled": false }))
            .await,
        bob.delete("/api/v1/plugins/echo").await,
        bob.put("/api/v1/plugins/echo/config/x", json!({ "value": "1" }))
            .await,
        bob.put("/api/v1/plugins/echo/secrets/x", json!({ "value": "1" }))
            .await,
        bob.post("/api/v1/plugins/echo/grants", json!({ "all": true }))
            .await,
        bob.delete("/api/v1/plugins/echo/grants").await,
    ] {
        assert_eq!(r.status, 404, "{}", r.body);
    }
    let takeover = bob.upload("", package_bytes("echo")).await;
    assert_eq!(
        takeover.status, 409,
        "a name owned by another user: {}",
        takeover.body
    );
    assert_eq!(
        alice
            .post("/api/v1/plugins/echo/grants", json!({ "all": true }))
            .await
            .status,
        403
    );
    assert_eq!(
        alice
            .patch("/api/v1/plugins/echo", json!({ "enabled": false }))
            .await
            .status,
        200,
        "owners manage"
    );
    assert_eq!(
        admin.get("/api/v1/plugins/echo").await.status,
        200,
        "admins see all"
    );
    assert_eq!(
        admin
            .patch("/api/v1/plugins/echo", json!({ "enabled": true }))
            .await
            .status,
        200
    );

    // Skills of private plugins are private too.
    assert_eq!(bob.get("/api/v1/skills/echo/anything").await.status, 404);

    // Audit: users see their own entries, admins everyone's.
    let mine = alice.get("/api/v1/audit").await;
    assert!(
        mine.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == "alice"),
        "{}",
        mine.body
    );
    let forced = bob.get(&format!("/api/v1/audit?actor={alice_id}")).await;
    assert!(
        forced.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == "bob")
    );
    let denied = admin.get("/api/v1/audit?outcome=denied").await;
    let actions: Vec<&str> = denied.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "user.create",
        "user.delete",
        "plugin.install",
        "plugin.grant",
    ] {
        assert!(
            actions.contains(&expected),
            "denied {expected} is audited: {actions:?}"
        );
    }

    // An administrator changing the password ends the user's sessions (a
    // user's own change keeps the caller's session: tests/api/sessions.rs).
    assert_eq!(
        admin
            .patch(
                &format!("/api/v1/users/{alice_id}"),
                json!({ "password": "alice-new-pass" })
            )
            .await
            .status,
        200
    );
    assert_eq!(alice.get("/api/v1/auth/me").await.status, 401);
    let alice = server.login("alice", "alice-new-pass").await;
    assert_eq!(alice.get("/api/v1/auth/me").await.status, 200);

    // Deleting a user removes their private plugins.
    assert_eq!(
        admin
            .delete(&format!("/api/v1/users/{alice_id}"))
            .await
            .status,
        204
    );
    assert_eq!(admin.get("/api/v1/plugins/echo").await.status, 404);
    assert_eq!(alice.get("/api/v1/auth/me").await.status, 401);
    server.stop().await;
}

async fn shared_plugins_are_admin_managed(backend: Backend) {
    let server = Server::start(backend).await;
    let (alice, _) = server.user("alice", "user").await;
    let admin = &server.admin;
    assert_eq!(
        admin
            .upload("?grant=true", package_bytes("hostile"))
            .await
            .status,
        201
    );
    assert_eq!(
        alice.get("/api/v1/plugins/hostile").await.status,
        200,
        "shared plugins are visible"
    );
    let call = alice.call("hostile", "echo", json!({ "text": "hi" })).await;
    assert_eq!(call.status, 200, "{}", call.body);
    for r in [
        alice
            .patch("/api/v1/plugins/hostile", json!({ "enabled": false }))
            .await,
        alice.delete("/api/v1/plugins/hostile").await,
        alice
            .put(
                "/api/v1/plugins/hostile/secrets/token",
                json!({ "value": "x" }),
            )
            .await,
        alice.delete("/api/v1/plugins/hostile/grants").await,
    ] {
        assert_eq!(r.status, 403, "{}", r.body);
    }
    let upgrade = alice.upload("", package_bytes("hostile")).await;
    assert_eq!(upgrade.status, 409, "users cannot replace shared plugins");
    server.stop().await;
}
