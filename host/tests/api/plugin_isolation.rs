//! Two users and the plugins they share: each user's key-value data stays theirs
//! (through the real `notes` plugin, over REST and MCP), shared data needs the
//! manifest's request and an admin's grant, and taken names reveal nothing.

use crate::common::tar_gz;
use crate::harness::{Backend, Server, package_bytes};
use crate::mcp::Mcp;
use serde_json::{Value, json};

crate::on_both_backends!(
    two_users_never_see_each_others_notes,
    shared_kv_needs_the_manifest_and_a_grant
);

fn structured(r: &crate::harness::Resp) -> Value {
    r.body["structured"].clone()
}

fn count(r: &crate::harness::Resp) -> u64 {
    assert_eq!(r.status, 200, "{}", r.body);
    structured(r)["count"].as_u64().expect("count")
}

async fn two_users_never_see_each_others_notes(backend: Backend) {
    let server = Server::start(backend).await;
    let r = server
        .admin
        .upload("?grant=true", package_bytes("notes"))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let (alice, _) = server.user("alice", "user").await;
    let (bob, bob_id) = server.user("bob", "user").await;

    let r = alice
        .call("notes", "remember", json!({ "text": "ALICE-PIN-1234" }))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = structured(&r)["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", r.text))
        .to_string();

    let listed = bob.call("notes", "list", json!({})).await;
    assert_eq!(
        count(&listed),
        0,
        "bob sees nothing of alice's: {}",
        listed.body
    );
    assert!(!listed.text.contains("ALICE-PIN"));
    let recalled = bob
        .call("notes", "recall", json!({ "query": "ALICE" }))
        .await;
    assert_eq!(count(&recalled), 0);
    let forget = bob.call("notes", "forget", json!({ "id": id })).await;
    assert_eq!(forget.status, 404, "bob cannot delete it: {}", forget.body);
    assert_eq!(
        count(&server.admin.call("notes", "list", json!({})).await),
        0
    );

    let r = bob
        .call("notes", "remember", json!({ "text": "bob's own" }))
        .await;
    assert_eq!(
        structured(&r)["id"],
        json!(id),
        "bob's notebook starts afresh"
    );
    let mine = alice.call("notes", "list", json!({})).await;
    assert_eq!(count(&mine), 1);
    assert!(
        mine.text.contains("ALICE-PIN-1234"),
        "alice keeps hers: {}",
        mine.text
    );

    // MCP reaches the same namespaces.
    let bob_mcp = Mcp::open(&bob).await;
    let listed = bob_mcp.call("notes__list", json!({})).await;
    let text = listed["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("bob's own") && !text.contains("ALICE"),
        "{text}"
    );
    let alice_mcp = Mcp::open(&alice).await;
    let r = alice_mcp.call("notes__forget", json!({ "id": id })).await;
    assert_ne!(r["result"]["isError"], json!(true), "{r}");
    assert_eq!(
        count(&bob.call("notes", "list", json!({})).await),
        1,
        "alice forgot only hers"
    );

    // A deleted user's data goes with them.
    assert_eq!(
        server
            .admin
            .delete(&format!("/api/v1/users/{bob_id}"))
            .await
            .status,
        204
    );
    let (bob_again, _) = server.user("bob", "user").await;
    assert_eq!(count(&bob_again.call("notes", "list", json!({})).await), 0);
    server.stop().await;
}

/// The `notes` package renamed to `board`, asking for `kv` as given.
fn board_package(kv: &str) -> Vec<u8> {
    let dir = crate::common::package_variant("notes", |m| {
        m.replace("name = \"notes\"", "name = \"board\"")
            .replace("kv = true", &format!("kv = {kv}"))
    });
    let manifest = std::fs::read(dir.path().join("plugin.toml")).unwrap();
    let component = std::fs::read(dir.path().join("notes.wasm")).unwrap();
    tar_gz(&[
        ("plugin.toml", tar::EntryType::Regular, &manifest),
        ("notes.wasm", tar::EntryType::Regular, &component),
    ])
}

async fn shared_kv_needs_the_manifest_and_a_grant(backend: Backend) {
    let server = Server::start(backend).await;
    let admin = &server.admin;
    let (alice, _) = server.user("alice", "user").await;
    let (bob, _) = server.user("bob", "user").await;

    // A manifest asking for per-user KV cannot be granted shared KV.
    assert_eq!(admin.upload("", package_bytes("notes")).await.status, 201);
    let r = admin
        .post("/api/v1/plugins/notes/grants", json!({ "kv_shared": true }))
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.code(), "not_requested");

    // Asked for and not granted: no KV at all.
    assert_eq!(
        admin.upload("", board_package("\"shared\"")).await.status,
        201
    );
    let detail = admin.get("/api/v1/plugins/board").await;
    assert_eq!(detail.body["pending"]["kv"], "shared", "{}", detail.body);
    let r = alice
        .call("board", "remember", json!({ "text": "hello all" }))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);

    // Granted per-user only: still one space per user.
    let r = admin
        .post("/api/v1/plugins/board/grants", json!({ "kv": true }))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["pending"]["kv"], "shared", "shared stays pending");
    let r = alice
        .call("board", "remember", json!({ "text": "alice only" }))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(count(&bob.call("board", "list", json!({})).await), 0);

    // Granted shared: one space for everyone.
    let r = admin
        .post("/api/v1/plugins/board/grants", json!({ "kv_shared": true }))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["granted"]["kv"], "shared");
    let r = alice
        .call("board", "remember", json!({ "text": "hello all" }))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = bob.call("board", "list", json!({})).await;
    assert_eq!(count(&seen), 1, "{}", seen.body);
    assert!(seen.text.contains("hello all"));

    // An upgrade back to per-user KV narrows the grant to per-user.
    assert_eq!(
        admin.upload("", board_package("true")).await.status,
        200,
        "an upgrade"
    );
    let detail = admin.get("/api/v1/plugins/board").await;
    assert_eq!(detail.body["granted"]["kv"], true, "{}", detail.body);
    let mine = alice.call("board", "list", json!({})).await;
    assert!(
        mine.text.contains("alice only") && !mine.text.contains("hello all"),
        "{}",
        mine.text
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taken_names_and_install_errors_reveal_nothing() {
    let server = Server::start(Backend::Sqlite).await;
    let (alice, _) = server.user("alice", "user").await;
    let (bob, _) = server.user("bob", "user").await;
    assert_eq!(alice.upload("", package_bytes("echo")).await.status, 201);
    assert_eq!(
        server.admin.upload("", package_bytes("data")).await.status,
        201
    );
    let private = bob.upload("", package_bytes("echo")).await;
    let shared = bob.upload("", package_bytes("data")).await;
    for r in [&private, &shared] {
        assert_eq!(r.status, 409, "{}", r.body);
        assert_eq!(r.code(), "name_taken");
        assert!(!r.text.contains("another user"), "{}", r.text);
    }
    assert_eq!(
        private.body["error"]["message"]
            .as_str()
            .unwrap()
            .replace("echo", "X"),
        shared.body["error"]["message"]
            .as_str()
            .unwrap()
            .replace("data", "X"),
        "a private plugin's name answers like any other taken name"
    );

    let data_dir = server.data.path().to_string_lossy().to_string();
    let no_manifest = tar_gz(&[("x.wasm", tar::EntryType::Regular, b"\0asm")]);
    let nested = tar_gz(&[("a/b/plugin.toml", tar::EntryType::Regular, b"name = 1")]);
    let not_gzip = b"plain text, not an archive".to_vec();
    for bytes in [no_manifest, nested, not_gzip] {
        let r = bob.upload("", bytes).await;
        assert!(r.status >= 400 && r.status < 500, "{}", r.text);
        for leak in [data_dir.as_str(), ".unpack-", ".upload-", "/tmp/"] {
            assert!(!r.text.contains(leak), "`{leak}` in {}", r.text);
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_manifests_are_refused_before_parsing() {
    let server = Server::start(Backend::Sqlite).await;
    let (alice, _) = server.user("alice", "user").await;
    let component = crate::common::component("echo");
    let base = std::fs::read_to_string(crate::common::package("echo").join("plugin.toml")).unwrap();

    // A 200 MB description in a small archive: refused from the entry header.
    let mut huge = String::from("name = \"big\"\nversion = \"0.1.0\"\ndescription = \"");
    huge.push_str(&"a".repeat(200 << 20));
    huge.push_str("\"\nkinds = [\"tool\"]\ncomponent = \"echo.wasm\"\n");
    let started = std::time::Instant::now();
    let archive = tar_gz(&[
        ("plugin.toml", tar::EntryType::Regular, huge.as_bytes()),
        ("echo.wasm", tar::EntryType::Regular, &component),
    ]);
    drop(huge);
    assert!(
        archive.len() < 2 << 20,
        "the archive is small: {}",
        archive.len()
    );
    let r = alice.upload("", archive).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("65536"), "{}", r.text);
    assert!(
        r.text.len() < 4096,
        "a short answer: {} bytes",
        r.text.len()
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));

    // Under the file cap, but fields and lists over theirs.
    let long = "x".repeat(2000);
    let authors: Vec<String> = (0..100).map(|i| format!("\"a{i}\"")).collect();
    for (edit, field) in [
        (format!("license = \"{long}\"\n"), "license"),
        (format!("authors = [{}]\n", authors.join(", ")), "authors"),
    ] {
        let manifest = base.replacen("kinds", &format!("{edit}kinds"), 1);
        let archive = tar_gz(&[
            ("plugin.toml", tar::EntryType::Regular, manifest.as_bytes()),
            ("echo.wasm", tar::EntryType::Regular, &component),
        ]);
        let r = alice.upload("", archive).await;
        assert_eq!(r.status, 422, "{field}: {}", r.text);
        assert!(r.text.contains(field), "{}", r.text);
    }
    let hosts: Vec<String> = (0..100).map(|i| format!("\"h{i}.example.com\"")).collect();
    let manifest = format!("{base}\n[capabilities]\nhttp = [{}]\n", hosts.join(", "));
    let archive = tar_gz(&[
        ("plugin.toml", tar::EntryType::Regular, manifest.as_bytes()),
        ("echo.wasm", tar::EntryType::Regular, &component),
    ]);
    let r = alice.upload("", archive).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("capabilities.http"), "{}", r.text);
    server.stop().await;
}
