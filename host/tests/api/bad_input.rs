//! Hostile and malformed input: clear 4xx, nothing installed, audit written.

use crate::common::{Entry, tar_gz};
use crate::harness::{Backend, Server, package_bytes};
use serde_json::json;
use sha2::Digest;
use warp::Filter;

crate::on_both_backends!(
    malformed_requests_get_clear_errors,
    text_with_nul_is_refused_everywhere,
    hostile_packages_leave_nothing_behind,
    url_installs_check_reachability_and_sha256
);

/// U+0000 cannot be stored in a PostgreSQL text column: every JSON body holding
/// it is refused with the same 400 on both backends (never a 500), nothing is
/// written, and an escaped backslash before `u0000` is ordinary text.
async fn text_with_nul_is_refused_everywhere(backend: Backend) {
    let server = Server::start(backend).await;
    let admin = &server.admin;
    let session = admin.post("/api/v1/sessions", json!({})).await;
    assert_eq!(session.status, 201, "{}", session.body);
    let messages = format!(
        "/api/v1/sessions/{}/messages",
        session.body["id"].as_str().unwrap()
    );
    for (path, body) in [
        (
            "/api/v1/agents",
            json!({"name": "a1", "instructions": "x\u{0}y"}),
        ),
        (
            "/api/v1/agents",
            json!({"name": "a2", "description": "x\u{0}"}),
        ),
        ("/api/v1/tokens", json!({"name": "t\u{0}x"})),
        ("/api/v1/sessions", json!({"title": "\u{0}"})),
        (messages.as_str(), json!({"content": "hi\u{0}there"})),
        (
            "/api/v1/mcp-servers",
            json!({"name": "m1", "url": "http://127.0.0.1:1/\u{0}"}),
        ),
        (
            "/api/v1/users",
            json!({"username": "bob", "password": "pass\u{0}word1"}),
        ),
    ] {
        let r = admin.post(path, body.clone()).await;
        assert_eq!(r.status, 400, "{path} {body}: {}", r.body);
        assert_eq!(r.code(), "invalid_request");
        assert!(
            r.body["error"]["message"].as_str().unwrap().contains("NUL"),
            "{}",
            r.body
        );
    }
    assert_eq!(
        admin.get("/api/v1/agents").await.body["items"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    let sessions = admin.get("/api/v1/sessions").await;
    assert_eq!(
        sessions.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        sessions.body
    );
    let literal = admin
        .post(
            "/api/v1/agents",
            json!({"name": "a3", "instructions": "a \\u0000 b"}),
        )
        .await;
    assert_eq!(literal.status, 201, "{}", literal.body);
    assert_eq!(literal.body["instructions"], "a \\u0000 b");
    server.stop().await;
}

async fn malformed_requests_get_clear_errors(backend: Backend) {
    let server = Server::start(backend).await;
    let admin = &server.admin;
    let raw = |method: reqwest::Method, path: &str, body: &'static str| {
        admin
            .request(method, path)
            .header("content-type", "application/json")
            .body(body)
    };
    for (path, body) in [
        ("/api/v1/auth/login", "{not json"),
        ("/api/v1/auth/login", r#"{"username": 5, "password": "x"}"#),
        ("/api/v1/auth/login", r#"{"username": "admin"}"#),
        ("/api/v1/tokens", r#"{"name": ["x"]}"#),
        (
            "/api/v1/users",
            r#"{"username": "Bad Name", "password": "password1"}"#,
        ),
        ("/api/v1/users", r#"{"username": "short", "password": "x"}"#),
        ("/api/v1/plugins/from-path", r#"{"path": "relative/dir"}"#),
        (
            "/api/v1/plugins/from-url",
            r#"{"url": "file:///etc/passwd", "sha256": "00"}"#,
        ),
    ] {
        let r = admin.send(raw(reqwest::Method::POST, path, body)).await;
        assert_eq!(r.status, 400, "{path} {body}: {}", r.body);
        assert_eq!(r.code(), "invalid_request");
        assert!(!r.body["error"]["message"].as_str().unwrap().is_empty());
    }
    let paged = admin.get("/api/v1/audit?limit=100000").await;
    assert_eq!(paged.status, 400);
    let typed = admin.get("/api/v1/audit?since=yesterday").await;
    assert_eq!(typed.status, 400);

    // Declared too large: answered 413 before the body is read (raw socket, so the
    // client cannot race the early answer while still sending).
    let oversized = raw_http(
        &server.base,
        &format!(
            "POST /api/v1/tokens HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            admin.token.as_deref().unwrap(),
            3 << 20
        ),
    )
    .await;
    assert!(oversized.starts_with("HTTP/1.1 413"), "{oversized}");
    assert!(oversized.contains("payload_too_large"));

    assert_eq!(
        admin
            .send(admin.request(reqwest::Method::PUT, "/api/v1/health"))
            .await
            .status,
        405
    );
    assert_eq!(
        admin
            .send(admin.request(reqwest::Method::DELETE, "/api/v1/tools"))
            .await
            .status,
        405
    );
    assert_eq!(admin.get("/api/v1/nowhere").await.status, 404);
    assert_eq!(admin.get("/api/v1/plugins/..%2F..%2Fetc").await.status, 404);
    let media = admin
        .send(
            admin
                .request(reqwest::Method::POST, "/api/v1/plugins")
                .header("content-type", "text/plain")
                .body("hi"),
        )
        .await;
    assert_eq!(media.status, 415);

    assert_eq!(
        admin
            .upload("?grant=true", package_bytes("hostile"))
            .await
            .status,
        201
    );
    let wrong = admin.call("hostile", "echo", json!({ "text": 5 })).await;
    assert_eq!(wrong.status, 400);
    assert_eq!(wrong.code(), "invalid_arguments");
    let not_object = admin
        .post(
            "/api/v1/tools/hostile/echo:call",
            json!({ "arguments": [1] }),
        )
        .await;
    assert_eq!(not_object.status, 400);
    let no_tool = admin.call("hostile", "nope", json!({})).await;
    assert_eq!(no_tool.status, 404);
    let bad_suffix = admin
        .post("/api/v1/tools/hostile/echo:run", json!({}))
        .await;
    assert_eq!(bad_suffix.status, 404);
    let crash = admin.call("hostile", "panic", json!({})).await;
    assert_eq!(crash.status, 502, "{}", crash.body);
    assert_eq!(crash.code(), "plugin_crashed");
    let spin = admin.call("hostile", "spin", json!({})).await;
    assert_eq!(spin.status, 504);
    let after = admin
        .call("hostile", "echo", json!({ "text": "still here" }))
        .await;
    assert_eq!(
        after.body["content"][0]["text"], "still here",
        "the host survives its plugins"
    );
    server.stop().await;
}

fn installed(server: &Server) -> usize {
    server.services.plugins.snapshot().len()
}

async fn hostile_packages_leave_nothing_behind(backend: Backend) {
    let server = Server::start_with(backend, |c| c.max_upload_bytes = 8 << 20).await;
    let admin = &server.admin;
    let wasm = crate::common::component("hostile");
    let manifest = b"name = \"x\"\nversion = \"0.1.0\"\ndescription = \"x\"\nkinds = [\"tool\"]\ncomponent = \"x.wasm\"\n";
    let regular = tar::EntryType::Regular;
    let cases: Vec<(&str, Vec<Entry>)> = vec![
        (
            "zip-slip",
            vec![
                ("plugin.toml", regular, manifest),
                ("../escape.wasm", regular, &wasm),
            ],
        ),
        ("absolute", vec![("/tmp/x.wasm", regular, &wasm)]),
        (
            "symlink",
            vec![
                ("plugin.toml", regular, manifest),
                ("x.wasm", tar::EntryType::Symlink, b""),
            ],
        ),
        ("no manifest", vec![("x.wasm", regular, &wasm)]),
        (
            "not wasm",
            vec![
                ("plugin.toml", regular, manifest),
                ("x.wasm", regular, b"\0asm junk"),
            ],
        ),
    ];
    for (name, entries) in cases {
        let r = admin.upload("", tar_gz(&entries)).await;
        assert_eq!(r.status, 422, "{name}: {}", r.body);
        assert_eq!(r.code(), "invalid_plugin");
    }
    let garbage = admin.upload("", b"\x1f\x8b not gzip at all".to_vec()).await;
    assert_eq!(garbage.status, 422);

    let bomb = crate::common::tar_bomb();
    let r = admin.upload("", bomb).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("more than"),
        "{}",
        r.body
    );

    let too_big = raw_http(
        &server.base,
        &format!(
            "POST /api/v1/plugins HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/gzip\r\ncontent-length: {}\r\n\r\n",
            admin.token.as_deref().unwrap(),
            9 << 20
        ),
    )
    .await;
    assert!(too_big.starts_with("HTTP/1.1 413"), "{too_big}");

    let form = reqwest::multipart::Form::new()
        .part(
            "manifest",
            reqwest::multipart::Part::bytes(manifest.to_vec()),
        )
        .part("component", reqwest::multipart::Part::bytes(wasm.clone()));
    let multipart = admin
        .send(
            admin
                .request(reqwest::Method::POST, "/api/v1/plugins")
                .multipart(form),
        )
        .await;
    assert_eq!(
        multipart.status, 201,
        "manifest + component upload: {}",
        multipart.body
    );
    let half = reqwest::multipart::Form::new().part(
        "manifest",
        reqwest::multipart::Part::bytes(manifest.to_vec()),
    );
    let r = admin
        .send(
            admin
                .request(reqwest::Method::POST, "/api/v1/plugins")
                .multipart(half),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.code(), "invalid_plugin");

    assert_eq!(installed(&server), 1, "only the valid upload is installed");
    let leftovers: Vec<_> = std::fs::read_dir(server.data.path().join("plugins"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "x" && n != ".changes")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(!server.data.path().join("escape.wasm").exists());
    let errors = admin
        .get("/api/v1/audit?action=plugin.install&outcome=error")
        .await;
    assert_eq!(
        errors.body["items"].as_array().unwrap().len(),
        7,
        "{}",
        errors.body
    );
    server.stop().await;
}

async fn url_installs_check_reachability_and_sha256(backend: Backend) {
    let server = Server::start(backend).await;
    let admin = &server.admin;
    let bytes = package_bytes("echo");
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    let served = bytes.clone();
    let files = warp::path!("echo.tar.gz").map(move || served.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(files).incoming(listener).run());
    let url = format!("http://{addr}/echo.tar.gz");

    let unreachable = admin
        .post(
            "/api/v1/plugins/from-url",
            json!({ "url": "http://127.0.0.1:1/x.tar.gz", "sha256": sha }),
        )
        .await;
    assert_eq!(unreachable.status, 422, "{}", unreachable.body);
    assert_eq!(unreachable.code(), "download_failed");
    let missing = admin
        .post(
            "/api/v1/plugins/from-url",
            json!({ "url": format!("http://{addr}/nope"), "sha256": sha }),
        )
        .await;
    assert_eq!(missing.status, 422);
    assert_eq!(missing.code(), "download_failed");
    let mismatch = admin
        .post(
            "/api/v1/plugins/from-url",
            json!({ "url": url, "sha256": "0".repeat(64) }),
        )
        .await;
    assert_eq!(mismatch.status, 422);
    assert_eq!(mismatch.code(), "checksum_mismatch");
    assert_eq!(installed(&server), 0);
    let errors = admin
        .get("/api/v1/audit?action=plugin.install&outcome=error")
        .await;
    assert_eq!(errors.body["items"].as_array().unwrap().len(), 3);

    let ok = admin
        .post(
            "/api/v1/plugins/from-url",
            json!({ "url": url, "sha256": sha.to_uppercase(), "grant": true }),
        )
        .await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    assert_eq!(
        admin
            .call("echo", "echo", json!({ "text": "from url" }))
            .await
            .body["content"][0]["text"],
        "from url"
    );
    server.stop().await;
}

/// Write `head` on a fresh connection and read the whole answer.
pub async fn raw_http(base: &str, head: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0; 4096];
    let n = stream.read(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer[..n]).into_owned()
}
