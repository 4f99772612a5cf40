//! Plugins written in every guest language — Rust (SDK), Python
//! (componentize-py), JavaScript (jco) and C (wit-bindgen c) — built from
//! `host/tests/fixtures/guest-rust` and `host/tests/guests/*` by
//! `switchyard plugin build`, installed over REST and used through REST and MCP
//! alike: tools with schemas, errors, per-user key-value data, HTTP to a granted
//! host and refused elsewhere, and log lines reaching the MCP client. Next to
//! them, a component built against the frozen `wit/frozen/0.1.0` contract.

use crate::harness::{Backend, Client, Server, package_bytes};
use crate::mcp::{Mcp, messages, notifications};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A server whose compile cache is shared by these tests (the Python and
/// JavaScript components take seconds to compile in a debug build).
async fn server() -> Server {
    let cache = crate::common::target_dir().join("test-compile-cache");
    Server::start_with(Backend::Sqlite, |c| c.cache_dir = cache).await
}

/// A loopback HTTP server that answers `hello from the host` to every request.
async fn origin() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let body = "hello from the host";
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(reply.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    port
}

fn text_blocks(content: &Value) -> String {
    content
        .as_array()
        .map(|blocks| {
            blocks
                .iter()
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// Everything a guest fixture offers, checked through REST and MCP.
async fn exercise(plugin: &str) {
    let server = server().await;
    let up = server
        .admin
        .upload("?grant=true", package_bytes(plugin))
        .await;
    assert_eq!(up.status, 201, "{plugin}: {}", up.text);
    assert!(up.body["plugin"]["problem"].is_null(), "{}", up.text);
    let (alice, _) = server.user("alice", "user").await;
    let (bob, _) = server.user("bob", "user").await;

    // Tools and their schemas.
    let tools = alice.get("/api/v1/tools").await;
    let ours: Vec<&Value> = tools.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["plugin"] == plugin)
        .collect();
    let names: Vec<&str> = ours.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["word_count", "remember", "recall", "fetch"],
        "{plugin}"
    );
    let schema = &ours[0]["input_schema"];
    assert_eq!(schema["type"], "object", "{plugin}: {schema}");
    assert_eq!(schema["required"], json!(["text"]), "{plugin}: {schema}");
    assert_eq!(
        schema["properties"]["text"]["type"], "string",
        "{plugin}: {schema}"
    );

    // A call, and its structured result.
    let r = alice
        .call(
            plugin,
            "word_count",
            json!({ "text": "one two  three\nfour" }),
        )
        .await;
    assert_eq!(r.status, 200, "{plugin}: {}", r.text);
    assert_eq!(r.body["structured"]["words"], 4, "{plugin}: {}", r.text);
    assert!(
        text_blocks(&r.body["content"]).contains("4 words"),
        "{plugin}: {}",
        r.text
    );

    // Errors: the host's schema check, and the guest's own `invalid-input`.
    let r = alice.call(plugin, "word_count", json!({ "text": 5 })).await;
    assert_eq!(r.status, 400, "{plugin}: {}", r.text);
    let r = alice
        .call(plugin, "word_count", json!({ "text": "  \n " }))
        .await;
    assert_eq!(r.status, 400, "{plugin}: {}", r.text);
    assert!(
        r.text.contains("text: has no words"),
        "{plugin}: {}",
        r.text
    );

    // Key-value data, one space per user; a missing key is the guest's `not-found`.
    let r = alice
        .call(
            plugin,
            "remember",
            json!({ "key": "colour", "value": "teal, \"quoted\" ünï" }),
        )
        .await;
    assert_eq!(r.status, 200, "{plugin}: {}", r.text);
    let r = alice
        .call(plugin, "recall", json!({ "key": "colour" }))
        .await;
    assert_eq!(
        text_blocks(&r.body["content"]),
        "teal, \"quoted\" ünï",
        "{plugin}: {}",
        r.text
    );
    let r = bob.call(plugin, "recall", json!({ "key": "colour" })).await;
    assert_eq!(
        r.status, 404,
        "{plugin}: bob reads alice's space: {}",
        r.text
    );
    assert!(
        r.text.contains("nothing is stored under `colour`"),
        "{plugin}: {}",
        r.text
    );

    // HTTP to the granted host, and nowhere else.
    let port = origin().await;
    let r = alice
        .call(
            plugin,
            "fetch",
            json!({ "url": format!("http://127.0.0.1:{port}/greeting") }),
        )
        .await;
    assert_eq!(r.status, 200, "{plugin}: {}", r.text);
    assert_eq!(
        text_blocks(&r.body["content"]),
        "200 hello from the host",
        "{plugin}"
    );
    let r = alice
        .call(
            plugin,
            "fetch",
            json!({ "url": format!("http://10.0.0.1:{port}/") }),
        )
        .await;
    assert_eq!(r.status, 403, "{plugin}: an ungranted host: {}", r.text);

    // MCP: the same tools, an error as `isError`, and the guest's log line
    // (log lines go to administrators and the plugin's owner only).
    mcp_sees(&server.admin, "admin", plugin).await;
    server.stop().await;
}

async fn mcp_sees(alice: &Client, who: &str, plugin: &str) {
    let m = Mcp::open(alice).await;
    let listed = m.rpc("tools/list", json!({})).await;
    let tool = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == format!("{plugin}__word_count"))
        .unwrap_or_else(|| panic!("{plugin}: {listed}"))
        .clone();
    assert_eq!(
        tool["inputSchema"]["required"],
        json!(["text"]),
        "{plugin}: {tool}"
    );
    let level = m.rpc("logging/setLevel", json!({ "level": "info" })).await;
    assert!(level["result"].is_object(), "{level}");
    let mut stream = notifications(alice, &m).await;
    let call = json!({"jsonrpc":"2.0","id":77,"method":"tools/call",
        "params":{"name": format!("{plugin}__word_count"),"arguments":{"text":"a b c"}}});
    let r = Mcp::post(alice, Some(&m.session), &call.to_string()).await;
    let answer = messages(&r.text)
        .into_iter()
        .find(|msg| msg["id"] == 77)
        .unwrap_or_else(|| panic!("{plugin}: {}", r.text));
    assert_eq!(
        answer["result"]["structuredContent"]["words"], 3,
        "{plugin}: {answer}"
    );
    let line = format!("word_count: 3 words for {who}");
    if !r.text.contains(&line) {
        let mut seen = String::new();
        let found = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(Ok(chunk)) = stream.next().await {
                seen.push_str(&String::from_utf8_lossy(&chunk));
                if seen.contains(&line) {
                    return;
                }
            }
        })
        .await;
        assert!(
            found.is_ok(),
            "{plugin}: no log notification `{line}`: {seen}"
        );
    }
    let failed = m
        .call(&format!("{plugin}__word_count"), json!({ "text": " " }))
        .await;
    assert_eq!(failed["result"]["isError"], true, "{plugin}: {failed}");
    assert!(
        failed.to_string().contains("text: has no words"),
        "{plugin}: {failed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_guest_built_with_the_sdk() {
    exercise("guest-rust").await;
    // The SDK's prompt and resource kinds, exported from the same crate.
    let server = server().await;
    let up = server
        .admin
        .upload("?grant=true", package_bytes("guest-rust"))
        .await;
    assert_eq!(up.status, 201, "{}", up.text);
    assert_eq!(
        up.body["plugin"]["kinds"],
        json!(["tool", "prompt", "resource"])
    );
    let m = Mcp::open(&server.admin).await;
    let prompts = m.rpc("prompts/list", json!({})).await;
    assert!(
        prompts.to_string().contains("guest-rust__summarize"),
        "{prompts}"
    );
    let got = m
        .rpc(
            "prompts/get",
            json!({ "name": "guest-rust__summarize", "arguments": { "topic": "WIT" } }),
        )
        .await;
    assert_eq!(
        got["result"]["messages"][0]["content"]["text"], "Summarize WIT in 50 words.",
        "{got}"
    );
    let missing = m
        .rpc(
            "prompts/get",
            json!({ "name": "guest-rust__summarize", "arguments": {} }),
        )
        .await;
    assert!(
        missing["error"].is_object(),
        "a required argument: {missing}"
    );
    let about = m
        .rpc("resources/read", json!({ "uri": "guest://about" }))
        .await;
    assert_eq!(
        about["result"]["contents"][0]["text"], "The Rust guest fixture.",
        "{about}"
    );
    let word = m
        .rpc(
            "resources/read",
            json!({ "uri": "guest://words/switchyard" }),
        )
        .await;
    assert_eq!(
        word["result"]["contents"][0]["text"], "switchyard has 10 letters",
        "{word}"
    );
    let templates = m.rpc("resources/templates/list", json!({})).await;
    assert!(
        templates.to_string().contains("guest://words/{word}"),
        "{templates}"
    );
    let none = m
        .rpc("resources/read", json!({ "uri": "guest://nothing" }))
        .await;
    assert!(none["error"].is_object(), "{none}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_guest_built_with_componentize_py() {
    exercise("guest-python").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_guest_built_with_jco() {
    exercise("guest-js").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c_guest_built_with_wit_bindgen_c() {
    exercise("guest-c").await;
}

/// A component built against the frozen 0.1.0 contract installs and runs on
/// this host, and the frozen copy is the one released: byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_built_against_the_frozen_0_1_0_contract_still_runs() {
    use sha2::{Digest, Sha256};
    let frozen = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit/frozen/0.1.0");
    let sums = std::fs::read_to_string(frozen.join("SHA256SUMS")).unwrap();
    for line in sums.lines() {
        let (sum, path) = line.split_once("  ").unwrap();
        let bytes = std::fs::read(frozen.join(path)).unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            sum,
            "wit/frozen/0.1.0/{path} changed: a released contract never changes; make a new version instead"
        );
    }
    let current = std::fs::read_to_string(frozen.join("../../plugin.wit")).unwrap();
    if current.contains("package switchyard:plugin@0.1.0;") {
        assert_eq!(
            current,
            std::fs::read_to_string(frozen.join("plugin.wit")).unwrap(),
            "wit/plugin.wit still says @0.1.0 but differs from the released 0.1.0: bump its version"
        );
    }
    let server = server().await;
    let up = server
        .admin
        .upload("?grant=true", package_bytes("guest-wit-0-1-0"))
        .await;
    assert_eq!(up.status, 201, "{}", up.text);
    let (alice, _) = server.user("alice", "user").await;
    for calls in 1..=2 {
        let r = alice
            .call(
                "guest-wit-0-1-0",
                "word_count",
                json!({ "text": "still here" }),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["structured"], json!({ "words": 2, "calls": calls }));
    }
    let m = Mcp::open(&alice).await;
    let r = m
        .call("guest-wit-0-1-0__word_count", json!({ "text": "over mcp" }))
        .await;
    assert_eq!(r["result"]["structuredContent"]["words"], 2, "{r}");
    server.stop().await;
}

/// A slow compile answers 202 at once: the plugin shows `compiling`, a second
/// install of it is refused, and its tools appear when it is done. A component
/// that fails its checks late shows `failed` with the reason until dismissed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_component_installs_in_the_background() {
    // A cache of its own: the compile must really happen (and take seconds).
    let cache = tempfile::TempDir::new().unwrap();
    let dir = cache.path().to_path_buf();
    let server = Server::start_with(Backend::Sqlite, |c| c.cache_dir = dir).await;
    let admin = &server.admin;
    let bytes = package_bytes("guest-python");
    let bad = admin.upload("?wait=601", bytes.clone()).await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert!(bad.text.contains("wait must be 0-600"), "{}", bad.text);
    let anonymous = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/plugins/guest-python/install",
            server.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let r = admin.upload("?grant=true&wait=0", bytes.clone()).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body["state"], "compiling", "{}", r.text);
    assert_eq!(r.body["name"], "guest-python");
    assert!(
        r.body["component_bytes"].as_u64().unwrap() > 10 << 20,
        "{}",
        r.text
    );
    assert_eq!(
        r.headers["location"],
        "/api/v1/plugins/guest-python/install"
    );
    let again = admin.upload("?grant=true&wait=0", bytes).await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert!(again.text.contains("already compiling"), "{}", again.text);
    let listed = admin.get("/api/v1/plugins").await;
    let entry = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "guest-python")
        .unwrap_or_else(|| panic!("{}", listed.text))
        .clone();
    assert_eq!(entry["state"], "compiling", "{entry}");
    assert_eq!(
        admin.get("/api/v1/plugins/guest-python").await.body["state"],
        "compiling"
    );
    let (bob, _) = server.user("bob", "user").await;
    assert_eq!(
        bob.get("/api/v1/plugins/guest-python/install").await.body["state"],
        "compiling",
        "a shared plugin"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        let status = admin.get("/api/v1/plugins/guest-python/install").await;
        assert_eq!(status.status, 200, "{}", status.text);
        match status.body["state"].as_str() {
            Some("installed") => break,
            Some("compiling") => {}
            other => panic!("{other:?}: {}", status.text),
        }
        assert!(std::time::Instant::now() < deadline, "the compile finished");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let detail = admin.get("/api/v1/plugins/guest-python").await;
    assert_eq!(detail.body["state"], "ready", "{}", detail.text);
    assert_eq!(detail.body["tools"], 4, "{}", detail.text);
    let r = admin
        .call("guest-python", "word_count", json!({ "text": "ready now" }))
        .await;
    assert_eq!(r.body["structured"]["words"], 2, "{}", r.text);

    // A component that contradicts its manifest fails after the 202.
    let broken = crate::common::package_variant("echo", |m| {
        m.replace("kinds = [\"tool\"]", "kinds = [\"tool\", \"channel\"]")
    });
    let r = admin
        .post(
            "/api/v1/plugins/from-path?wait=0",
            json!({ "path": broken.path().to_string_lossy() }),
        )
        .await;
    assert!(r.status == 202 || r.status == 422, "{}", r.text);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let failed = loop {
        let status = admin.get("/api/v1/plugins/echo/install").await;
        if status.body["state"] == "failed" {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "{}", status.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(failed.text.contains("does not export"), "{}", failed.text);
    let listed = admin.get("/api/v1/plugins").await;
    assert!(
        listed.text.contains("\"state\":\"failed\""),
        "{}",
        listed.text
    );
    assert_eq!(
        bob.get("/api/v1/plugins/echo/install").await.status,
        200,
        "shared"
    );
    assert_eq!(
        bob.delete("/api/v1/plugins/echo").await.status,
        404,
        "only its installer dismisses it"
    );
    assert_eq!(
        admin.get("/api/v1/plugins/echo/install").await.body["state"],
        "failed"
    );
    assert_eq!(admin.delete("/api/v1/plugins/echo").await.status, 204);
    assert_eq!(admin.get("/api/v1/plugins/echo/install").await.status, 404);
    server.stop().await;
}
