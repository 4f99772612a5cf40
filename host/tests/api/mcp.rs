//! The MCP endpoint at `/mcp` driven over raw streamable HTTP: sessions, the
//! per-user tool view, auth and DNS-rebinding checks, bad and hostile input,
//! live list_changed notifications, skills as prompts and resources. (The
//! official SDK clients and the conformance suite run in scripts/mcp-clients.)

use crate::harness::{Backend, Client, Resp, Server, package_bytes};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;

/// One MCP session over HTTP.
pub struct Mcp {
    client: Client,
    /// The `mcp-session-id`.
    pub session: String,
    next: std::cell::Cell<u64>,
}

const ACCEPT: &str = "application/json, text/event-stream";

/// The JSON-RPC messages of a response body (JSON or SSE).
pub fn messages(text: &str) -> Vec<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return vec![v];
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect()
}

impl Mcp {
    /// POST one body to `/mcp` (in `session`, if any).
    pub async fn post(client: &Client, session: Option<&str>, body: &str) -> Resp {
        let mut req = client
            .request(reqwest::Method::POST, "/mcp")
            .header("content-type", "application/json")
            .header("accept", ACCEPT)
            .body(body.to_string());
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        client.send(req).await
    }

    pub async fn open(client: &Client) -> Self {
        let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
            "protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"test","version":"1"}}});
        let r = Self::post(client, None, &init.to_string()).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let session = r.headers["mcp-session-id"].to_str().unwrap().to_string();
        let done = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
        let r = Self::post(client, Some(&session), &done.to_string()).await;
        assert_eq!(r.status, 202, "{}", r.text);
        Self {
            client: client.clone(),
            session,
            next: std::cell::Cell::new(1),
        }
    }

    /// Send a request; the response message (result or error).
    pub async fn rpc(&self, method: &str, params: Value) -> Value {
        let id = self.next.get();
        self.next.set(id + 1);
        let body = json!({"jsonrpc":"2.0","id":id,"method":method,"params":params});
        let r = Self::post(&self.client, Some(&self.session), &body.to_string()).await;
        assert_eq!(r.status, 200, "{method}: {}", r.text);
        messages(&r.text)
            .into_iter()
            .find(|m| m["id"] == json!(id))
            .unwrap_or_else(|| panic!("no response to {method}: {}", r.text))
    }

    pub async fn call(&self, name: &str, arguments: Value) -> Value {
        self.rpc("tools/call", json!({"name": name, "arguments": arguments}))
            .await
    }

    pub async fn tool_names(&self) -> Vec<String> {
        let r = self.rpc("tools/list", json!({})).await;
        r["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    }
}

/// A server on SQLite with `plugins` installed (shared, granted) by the admin.
async fn server_with(plugins: &[&str]) -> Server {
    let server = Server::start(Backend::Sqlite).await;
    for plugin in plugins {
        let r = server
            .admin
            .upload("?grant=true", package_bytes(plugin))
            .await;
        assert_eq!(r.status, 201, "{plugin}: {}", r.body);
    }
    server
}

fn text_of(result: &Value) -> String {
    result["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_are_per_user_and_calls_carry_the_caller() {
    let server = Server::start(Backend::Sqlite).await;
    let (alice, _) = server.user("alice", "user").await;
    let (bob, _) = server.user("bob", "user").await;
    assert_eq!(
        server
            .admin
            .upload("?grant=true", package_bytes("echo"))
            .await
            .status,
        201
    );
    assert_eq!(alice.upload("", package_bytes("hostile")).await.status, 201);
    let a = Mcp::open(&alice).await;
    let b = Mcp::open(&bob).await;
    let alice_tools = a.tool_names().await;
    let bob_tools = b.tool_names().await;
    assert!(
        alice_tools.contains(&"echo__echo".to_string()),
        "{alice_tools:?}"
    );
    assert!(alice_tools.iter().any(|t| t.starts_with("hostile__")));
    assert!(bob_tools.contains(&"echo__echo".to_string()));
    assert!(
        !bob_tools.iter().any(|t| t.starts_with("hostile__")),
        "{bob_tools:?}"
    );
    let listed = a.rpc("tools/list", json!({})).await;
    let echo = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "echo__echo")
        .unwrap()
        .clone();
    assert_eq!(echo["inputSchema"]["type"], "object");
    assert_eq!(echo["annotations"]["readOnlyHint"], true);
    let r = a.call("echo__echo", json!({"text": "hello"})).await;
    assert_eq!(text_of(&r), "hello");
    assert_eq!(r["result"]["isError"], false);
    assert!(r["result"].get("resultType").is_none(), "{r}");
    // A plain call is answered directly as JSON; one asking for progress streams SSE.
    for (meta, content_type) in [
        (json!({}), "application/json"),
        (json!({"progressToken": 1}), "text/event-stream"),
    ] {
        let body = json!({"jsonrpc":"2.0","id":99,"method":"tools/call",
            "params":{"name":"echo__echo","arguments":{"text":"x"},"_meta":meta}});
        let r = Mcp::post(&alice, Some(&a.session), &body.to_string()).await;
        let got = r.headers["content-type"].to_str().unwrap();
        assert!(got.starts_with(content_type), "{meta}: {got}");
        assert_eq!(
            messages(&r.text)[0]["result"]["content"][0]["text"],
            "x",
            "{}",
            r.text
        );
    }
    let mine = a.call("hostile__echo", json!({"text": "mine"})).await;
    assert_eq!(text_of(&mine), "mine", "{mine}");
    let stolen = b.call("hostile__echo", json!({"text": "x"})).await;
    assert_eq!(stolen["error"]["code"], -32602, "{stolen}");
    let unknown = a.call("nope__nothing", json!({})).await;
    assert_eq!(unknown["error"]["code"], -32602);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_foreign_and_stolen_sessions_are_refused() {
    let server = Server::start(Backend::Sqlite).await;
    let (bob, _) = server.user("bob", "user").await;
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let anon = Client::anonymous(&server.base);
    let r = Mcp::post(&anon, None, init).await;
    assert_eq!(r.status, 401);
    let challenge = r.headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    let r = Mcp::post(&anon.with_token("sy_not-a-token"), None, init).await;
    assert_eq!(r.status, 401);
    assert!(r.headers.contains_key("www-authenticate"));
    for (header, value) in [
        ("host", "evil.example.com"),
        ("origin", "https://evil.example.com"),
    ] {
        let req = server
            .admin
            .request(reqwest::Method::POST, "/mcp")
            .header("content-type", "application/json")
            .header("accept", ACCEPT)
            .header(header, value)
            .body(init);
        let r = server.admin.send(req).await;
        assert_eq!(r.status, 403, "{header}: {}", r.text);
    }
    let admin = Mcp::open(&server.admin).await;
    let list = json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}).to_string();
    let r = Mcp::post(&bob, Some(&admin.session), &list).await;
    assert_eq!(r.status, 404, "another user's session id: {}", r.text);
    let r = Mcp::post(&bob, Some("0f0f0f0f-unknown"), &list).await;
    assert_eq!(r.status, 404);
    let del = server
        .admin
        .request(reqwest::Method::DELETE, "/mcp")
        .header("mcp-session-id", &admin.session);
    assert!(server.admin.send(del).await.status < 300);
    let r = Mcp::post(&server.admin, Some(&admin.session), &list).await;
    assert_eq!(r.status, 404, "a deleted session is gone");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_and_hostile_input_leaves_the_session_healthy() {
    let server = server_with(&["echo", "hostile"]).await;
    let admin = &server.admin;
    let m = Mcp::open(admin).await;
    // Malformed JSON-RPC gets JSON-RPC errors (never a bare HTTP status).
    for (body, status, code) in [
        ("{not json", 400, -32700),
        ("[]", 400, -32600),
        ("42", 400, -32600),
        (r#"{"jsonrpc":"2.0","id":1}"#, 400, -32600),
        (
            r#"{"jsonrpc":"1.0","id":1,"method":"tools/list"}"#,
            400,
            -32600,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
            200,
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{}}}"#,
            200,
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{}}"#,
            200,
            -32602,
        ),
    ] {
        let r = Mcp::post(admin, Some(&m.session), body).await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
        let answer: Value = serde_json::from_str(&r.text).unwrap_or_default();
        assert_eq!(answer["jsonrpc"], "2.0", "{body}: {}", r.text);
        assert_eq!(answer["error"]["code"], code, "{body}: {}", r.text);
    }
    let batch: Vec<Value> = (0..500)
        .map(|i| json!({"jsonrpc":"2.0","id":i,"method":"tools/list"}))
        .collect();
    let r = Mcp::post(admin, Some(&m.session), &Value::from(batch).to_string()).await;
    assert_eq!(r.status, 400, "batch: {}", &r.text[..r.text.len().min(300)]);
    assert!(
        r.text.contains("-32600"),
        "batch: {}",
        &r.text[..r.text.len().min(300)]
    );
    // Declared too large: answered 413 before the body is read (raw socket).
    let huge = crate::bad_input::raw_http(
        &server.base,
        &format!(
            "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\naccept: {ACCEPT}\r\nmcp-session-id: {}\r\ncontent-length: {}\r\n\r\n",
            admin.token.as_deref().unwrap(),
            m.session,
            5 << 20
        ),
    )
    .await;
    assert!(huge.starts_with("HTTP/1.1 413"), "{huge}");
    let big_args = json!({"text": "x".repeat(3 << 20)});
    let r = m.call("echo__echo", big_args).await;
    assert_eq!(r["result"]["isError"], true, "arguments over 1 MiB");
    let r = m.call("echo__echo", json!({"text": 5})).await;
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(text_of(&r).contains("schema"), "{r}");
    let r = m.call("hostile__spin", json!({})).await;
    assert_eq!(r["result"]["isError"], true);
    assert!(text_of(&r).contains("deadline"), "{r}");
    let r = m.call("hostile__allocate", json!({"mb": 512})).await;
    assert_eq!(r["result"]["isError"], true, "{r}");
    let r = m.call("hostile__panic", json!({})).await;
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert_eq!(
        admin
            .patch("/api/v1/plugins/echo", json!({"enabled": false}))
            .await
            .status,
        200
    );
    assert!(!m.tool_names().await.contains(&"echo__echo".to_string()));
    let r = m.call("echo__echo", json!({"text": "x"})).await;
    assert_eq!(
        r["result"]["isError"], true,
        "a disabled plugin's tool: {r}"
    );
    assert!(text_of(&r).contains("disabled"), "{r}");
    let r = m.call("hostile__echo", json!({"text": "still here"})).await;
    assert_eq!(text_of(&r), "still here");
    for i in 0..3 {
        let r = m.call(&format!("echo__made_up_{i}"), json!({})).await;
        assert!(
            r["error"].is_object() || r["result"]["isError"] == true,
            "{r}"
        );
    }
    let metrics = admin.get("/metrics").await.text;
    assert!(
        !metrics.contains("made_up"),
        "client-chosen names became metric labels"
    );
    server.stop().await;
}

/// The session's server-to-client event stream (`GET /mcp`).
pub async fn notifications(
    client: &Client,
    m: &Mcp,
) -> impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin + use<> {
    let stream = client
        .request(reqwest::Method::GET, "/mcp")
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &m.session)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    stream.bytes_stream()
}

/// Read `body` until a `method` notification arrives (panics after 10 s).
pub async fn wait_for_notification(
    body: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    method: &str,
) {
    let mut seen = String::new();
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(chunk)) = body.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains(method) {
                return;
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "no {method} within 10 s: {seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_install_notifies_connected_sessions() {
    let server = Server::start(Backend::Sqlite).await;
    let m = Mcp::open(&server.admin).await;
    let mut body = notifications(&server.admin, &m).await;
    assert_eq!(
        server
            .admin
            .upload("?grant=true", package_bytes("echo"))
            .await
            .status,
        201
    );
    wait_for_notification(&mut body, "notifications/tools/list_changed").await;
    assert!(m.tool_names().await.contains(&"echo__echo".to_string()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installed_skill_notifies_sessions_and_becomes_a_prompt() {
    let server = Server::start(Backend::Sqlite).await;
    let m = Mcp::open(&server.admin).await;
    let mut body = notifications(&server.admin, &m).await;
    let skill = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../skills/release-notes");
    let archive = switchyard::skills::archive::pack_folder(&skill).unwrap();
    let up = server
        .admin
        .send(
            server
                .admin
                .request(reqwest::Method::POST, "/api/v1/skills")
                .header("content-type", "application/gzip")
                .body(archive),
        )
        .await;
    assert_eq!(up.status, 201, "{}", up.text);
    wait_for_notification(&mut body, "notifications/prompts/list_changed").await;
    let prompt = m.rpc("prompts/get", json!({"name": "release-notes"})).await;
    let text = prompt["result"]["messages"][0]["content"]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("Release notes from git history"), "{prompt}");
    let script = m
        .rpc(
            "resources/read",
            json!({"uri": "skill://release-notes/scripts/release_notes.py"}),
        )
        .await;
    assert!(
        script.to_string().contains("Conventional Commit"),
        "{script}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skills_are_prompts_and_their_files_resources() {
    let server = server_with(&["starter-skills"]).await;
    let m = Mcp::open(&server.admin).await;
    let prompts = m.rpc("prompts/list", json!({})).await;
    let names: Vec<&str> = prompts["result"]["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"code-review"), "{names:?}");
    let prompt = m.rpc("prompts/get", json!({"name": "code-review"})).await;
    let text = prompt["result"]["messages"][0]["content"]["text"]
        .as_str()
        .unwrap();
    assert!(!text.is_empty() && !text.starts_with("---"), "{prompt}");
    let resources = m.rpc("resources/list", json!({})).await;
    assert!(
        resources
            .to_string()
            .contains("skill://code-review/SKILL.md")
    );
    let read = m
        .rpc(
            "resources/read",
            json!({"uri": "skill://code-review/SKILL.md"}),
        )
        .await;
    assert_eq!(read["result"]["contents"][0]["text"], text, "{read}");
    let missing = m
        .rpc(
            "resources/read",
            json!({"uri": "skill://code-review/../../etc/passwd"}),
        )
        .await;
    assert!(missing["error"]["code"].is_i64(), "{missing}");
    let bad = m.rpc("resources/read", json!({"uri": "not a uri"})).await;
    assert_eq!(bad["error"]["code"], -32602);
    let unknown = m.rpc("prompts/get", json!({"name": "nope"})).await;
    assert_eq!(unknown["error"]["code"], -32602);
    let templates = m.rpc("resources/templates/list", json!({})).await;
    assert!(templates.to_string().contains("skill://{name}/{+path}"));
    let level = m.rpc("logging/setLevel", json!({"level": "debug"})).await;
    assert!(level["result"].is_object(), "{level}");
    let probe = Mcp::post(
        &server.admin,
        None,
        r#"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{
            "io.modelcontextprotocol/protocolVersion":"2026-07-28",
            "io.modelcontextprotocol/clientCapabilities":{}}}}"#,
    )
    .await;
    // A clean JSON-RPC error (the Python SDK's fallback to initialize on it
    // is checked in scripts/mcp-clients).
    let probe = &messages(&probe.text)[0];
    assert!(probe["error"]["code"].is_i64(), "{probe}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_stops_the_guest_call() {
    let server = server_with(&["hostile"]).await;
    let admin = &server.admin;
    let m = Mcp::open(admin).await;
    let call = json!({"jsonrpc":"2.0","id":"spin-1","method":"tools/call",
        "params":{"name":"hostile__spin","arguments":{}}});
    let started = std::time::Instant::now();
    let pending = tokio::spawn({
        let (client, session) = (admin.clone(), m.session.clone());
        async move { Mcp::post(&client, Some(&session), &call.to_string()).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let cancel = json!({"jsonrpc":"2.0","method":"notifications/cancelled",
        "params":{"requestId":"spin-1","reason":"the user gave up"}});
    let r = Mcp::post(admin, Some(&m.session), &cancel.to_string()).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let answered = tokio::time::timeout(Duration::from_secs(5), pending).await;
    assert!(answered.is_ok(), "the cancelled call's stream stays open");
    let mut cancelled = false;
    while !cancelled && started.elapsed() < Duration::from_millis(400) {
        cancelled = admin.get("/metrics").await.text.lines().any(|l| {
            l.starts_with("switchyard_plugin_calls_total")
                && l.contains("outcome=\"cancelled\"")
                && l.contains("tool=\"spin\"")
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The plugin's own deadline is 500 ms: recorded before it, the call was cancelled.
    assert!(
        cancelled,
        "no cancelled spin call in the metrics after {:?}",
        started.elapsed()
    );
    let r = m.call("hostile__echo", json!({"text": "after"})).await;
    assert_eq!(text_of(&r), "after");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_scopes_limit_what_a_session_may_do() {
    let server = server_with(&["echo"]).await;
    let admin = &server.admin;
    let r = admin
        .post(
            "/api/v1/tokens",
            json!({"name": "reader", "scopes": ["read"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let reader = Client::anonymous(&server.base).with_token(r.body["value"].as_str().unwrap());
    let m = Mcp::open(&reader).await;
    assert!(m.tool_names().await.contains(&"echo__echo".to_string()));
    let r = m.call("echo__echo", json!({"text": "x"})).await;
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("tools:call"),
        "{r}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_mode_answers_json_without_sessions() {
    let server = Server::start_with(Backend::Sqlite, |c| c.mcp.stateless = true).await;
    let admin = &server.admin;
    assert_eq!(
        admin
            .upload("?grant=true", package_bytes("echo"))
            .await
            .status,
        201
    );
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let r = Mcp::post(admin, None, init).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!r.headers.contains_key("mcp-session-id"));
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let call = json!({"jsonrpc":"2.0","id":1,"method":"tools/call",
        "params":{"name":"echo__echo","arguments":{"text":"no session"}}});
    let r = Mcp::post(admin, None, &call.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["result"]["content"][0]["text"], "no session",
        "{}",
        r.text
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_bounded_per_user_and_initialized_once() {
    let server = server_with(&["starter-skills"]).await;
    let (bob, _) = server.user("bob", "user").await;
    let first = Mcp::open(&bob).await;
    let again = first
        .rpc(
            "initialize",
            json!({"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}),
        )
        .await;
    assert_eq!(
        again["error"]["code"], -32600,
        "a second initialize: {again}"
    );
    let long = format!("skill://code-review/{}", "x".repeat(100_000));
    let r = first.rpc("resources/subscribe", json!({"uri": long})).await;
    assert!(r["error"]["code"].is_i64(), "an oversized URI: {r}");
    let mut open = vec![first];
    for _ in 1..switchyard::mcp::http::MAX_SESSIONS_PER_USER {
        open.push(Mcp::open(&bob).await);
    }
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let r = Mcp::post(&bob, None, init).await;
    assert_eq!(r.status, 429, "{}", r.text);
    let others = Mcp::open(&server.admin).await;
    assert!(
        others
            .tool_names()
            .await
            .iter()
            .all(
                |t| switchyard::mcp::sandbox_tools::NAMES.contains(&t.as_str())
                    || switchyard::mcp::task_tools::NAMES.contains(&t.as_str())
                    || switchyard::mcp::schedule_tools::NAMES.contains(&t.as_str())
            ),
        "other users are not limited"
    );
    let del = bob
        .request(reqwest::Method::DELETE, "/mcp")
        .header("mcp-session-id", &open[0].session);
    assert_eq!(bob.send(del).await.status, 200);
    assert_eq!(
        Mcp::post(&bob, None, init).await.status,
        200,
        "a closed session frees a slot"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_are_created_listed_and_deleted_through_mcp_tools() {
    let server = Server::start(Backend::Sqlite).await;
    let (alice, _) = server.user("alice", "user").await;
    let m = Mcp::open(&alice).await;
    let names = m.tool_names().await;
    for tool in ["schedule_create", "schedule_list", "schedule_delete"] {
        assert!(names.contains(&tool.to_string()), "{names:?}");
    }
    let created = m
        .call(
            "schedule_create",
            json!({ "name": "morning", "trigger": { "type": "cron", "expression": "0 7 * * *", "timezone": "Europe/Paris" },
                    "task": { "kind": "agent", "input": { "content": "Plan the day" } }, "catchup": "none" }),
        )
        .await;
    assert_eq!(created["result"]["isError"], false, "{created}");
    let schedule: Value =
        serde_json::from_str(created["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
    let id = schedule["id"].as_str().unwrap().to_string();
    assert!(
        schedule["next_runs"][0]
            .as_str()
            .unwrap()
            .contains("T07:00:00+01:00"),
        "{schedule}"
    );
    let bad = m
        .call(
            "schedule_create",
            json!({ "name": "bad", "trigger": { "type": "cron", "expression": "every morning", "timezone": "Europe/Paris" },
                    "task": { "kind": "agent", "input": { "content": "x" } } }),
        )
        .await;
    assert_eq!(bad["result"]["isError"], true, "{bad}");
    assert!(bad.to_string().contains("not a cron expression"), "{bad}");
    let listed = m.call("schedule_list", json!({})).await;
    assert!(listed.to_string().contains(&id), "{listed}");
    // Another user neither sees nor deletes it.
    let (bob, _) = server.user("bob", "user").await;
    let other = Mcp::open(&bob).await;
    assert!(
        !other
            .call("schedule_list", json!({}))
            .await
            .to_string()
            .contains(&id)
    );
    let refused = other
        .call("schedule_delete", json!({ "schedule_id": id }))
        .await;
    assert_eq!(refused["result"]["isError"], true, "{refused}");
    let deleted = m
        .call("schedule_delete", json!({ "schedule_id": id }))
        .await;
    assert_eq!(deleted["result"]["isError"], false, "{deleted}");
    assert!(
        !m.call("schedule_list", json!({}))
            .await
            .to_string()
            .contains(&id)
    );
    let audit = server
        .admin
        .get("/api/v1/audit?action=schedule.delete")
        .await;
    assert!(
        audit.body.to_string().contains("schedule.delete"),
        "{}",
        audit.body
    );
    server.stop().await;
}
