//! External MCP servers as tool sources, against real parts: a second
//! switchyard server (its own `/mcp`, real plugins) lends its tools to a first
//! one's MCP sessions and agent tasks (fake LLM); the lender going away and
//! coming back on the same address gives tool errors and then recovers;
//! tool-list changes are passed on; a hostile server speaking the wire
//! protocol (garbage, thousands of tools, a tool that never answers) cannot
//! hurt the host; address rules, sharing and tenancy hold.

use crate::harness::{Backend, Client, Server, package_bytes};
use crate::mcp::{Mcp, notifications, wait_for_notification};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use switchyard::agent::config::{ApiKey, ProviderKind};
use switchyard::server::Services;
use switchyard_fake_llm::{FakeLlm, Reply};

crate::on_both_backends!(an_external_server_lends_its_tools_to_mcp_and_agent_tasks);

/// A server's routes on an address of the test's choosing, so it can stop and
/// come back on the same one.
struct Listener {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Listener {
    async fn start(services: Arc<Services>, addr: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(switchyard::api::serve::serve(
            listener,
            switchyard::api::routes(services),
            async move {
                let _ = rx.await;
            },
            Duration::from_millis(200),
        ));
        Self {
            stop: Some(tx),
            task: Some(task),
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// An API token of `client`'s user.
async fn token(client: &Client) -> String {
    let r = client
        .post("/api/v1/tokens", json!({ "name": "lend tools" }))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["value"].as_str().unwrap().to_string()
}

/// A server lending the `echo` plugin's tools.
async fn lender() -> Server {
    let server = Server::start(Backend::Sqlite).await;
    let r = server
        .admin
        .upload("?grant=true", package_bytes("echo"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    server
}

/// Register `url` as server `name` for `client` with the lender's token.
async fn register(client: &Client, name: &str, url: &str, token: &str) -> crate::harness::Resp {
    client
        .post(
            "/api/v1/mcp-servers",
            json!({ "name": name, "url": url, "headers": { "Authorization": format!("Bearer {token}") } }),
        )
        .await
}

fn text_of(result: &Value) -> String {
    result["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn an_external_server_lends_its_tools_to_mcp_and_agent_tasks(backend: Backend) {
    let fake = FakeLlm::start().await;
    let up = lender().await;
    let secret = token(&up.admin).await;
    let server = Server::start_with(backend, |c| {
        c.llm.provider = Some(ProviderKind::OpenAi);
        c.llm.base_url = Some(fake.base_url_openai());
        c.llm.model = Some("fake-model".into());
        c.llm.api_key = Some(ApiKey::new("sk-test-secret-key"));
    })
    .await;
    let admin = &server.admin;
    let r = register(admin, "up", &format!("{}/mcp", up.base), &secret).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["status"]["state"], "ready", "{}", r.text);
    assert_eq!(r.body["header_names"], json!(["Authorization"]));
    assert!(!r.text.contains(&secret), "a header value was returned");
    let id = r.body["id"].as_str().unwrap().to_string();
    let listed = admin.get("/api/v1/mcp-servers").await;
    assert!(!listed.text.contains(&secret));
    let tools = admin.get(&format!("/api/v1/mcp-servers/{id}/tools")).await;
    assert!(tools.text.contains("\"up__echo__echo\""), "{}", tools.text);

    // Over the host's own MCP face.
    let m = Mcp::open(admin).await;
    assert!(m.tool_names().await.contains(&"up__echo__echo".to_string()));
    let result = m
        .call("up__echo__echo", json!({ "text": "through two hosts" }))
        .await;
    assert!(text_of(&result).contains("through two hosts"), "{result}");
    let bad = m.call("up__echo__echo", json!({ "text": 7 })).await;
    assert_eq!(bad["result"]["isError"], true, "{bad}");

    // Over REST, beside the plugins' tools.
    let listed = admin.get("/api/v1/tools").await;
    assert!(
        listed.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["plugin"] == "up" && t["name"] == "echo__echo"),
        "{}",
        listed.text
    );
    let rest = admin
        .call("up", "echo__echo", json!({ "text": "over rest" }))
        .await;
    assert_eq!(rest.status, 200, "{}", rest.text);
    assert!(
        rest.body["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("over rest"),
        "{}",
        rest.text
    );
    let rest = admin.call("up", "echo__echo", json!({ "text": 1 })).await;
    assert_eq!(rest.status, 400, "{}", rest.text);
    let rest = admin.call("up", "no_such_tool", json!({})).await;
    assert_eq!(rest.status, 404, "{}", rest.text);

    // To an agent task.
    fake.push(Reply::tool_call(
        "call_1",
        "up__echo__echo",
        r#"{"text": "ping"}"#,
    ));
    fake.push(Reply::text("The upstream echoed ping."));
    let task = admin
        .post(
            "/api/v1/tasks",
            json!({ "kind": "agent", "input": { "content": "echo ping upstream" } }),
        )
        .await;
    assert_eq!(task.status, 202, "{}", task.text);
    let done = crate::tasks::wait_done(admin, task.body["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "completed", "{done}");
    let events = crate::tasks::events(admin, done["id"].as_str().unwrap()).await;
    let result = events
        .iter()
        .find(|e| e["type"] == "tool_result")
        .expect("a tool result");
    assert!(
        result["data"]["content"].as_str().unwrap().contains("ping"),
        "{result}"
    );
    assert_eq!(result["data"]["is_error"], false, "{result}");

    // Private to its owner until shared.
    let (user, _) = server.user("erin", "user").await;
    let um = Mcp::open(&user).await;
    assert!(!um.tool_names().await.iter().any(|n| n.starts_with("up__")));
    let other = user.get(&format!("/api/v1/mcp-servers/{id}")).await;
    assert_eq!(other.status, 404);
    let r = admin
        .patch(
            &format!("/api/v1/mcp-servers/{id}"),
            json!({ "shared": true }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let both = admin
        .patch(
            &format!("/api/v1/mcp-servers/{id}"),
            json!({ "url": "x".repeat(5000), "command": ["true"] }),
        )
        .await;
    assert!(both.status == 400 || both.status == 422, "{}", both.text);
    assert!(both.text.contains("not both"), "{}", both.text);
    assert!(
        um.tool_names()
            .await
            .contains(&"up__echo__echo".to_string())
    );
    let changed = user
        .patch(
            &format!("/api/v1/mcp-servers/{id}"),
            json!({ "enabled": false }),
        )
        .await;
    assert_eq!(
        changed.status, 404,
        "a user changed an admin's shared server"
    );
    let gone = admin.delete(&format!("/api/v1/mcp-servers/{id}")).await;
    assert_eq!(gone.status, 204);
    assert!(!m.tool_names().await.iter().any(|n| n.starts_with("up__")));
    server.stop().await;
    up.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_gives_tool_errors_then_recovers_and_list_changes_pass_on() {
    let up = lender().await;
    let secret = token(&up.admin).await;
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let listener = Listener::start(up.services.clone(), addr).await;
    let server = Server::start(Backend::Sqlite).await;
    let admin = &server.admin;
    let r = register(admin, "up", &format!("http://{addr}/mcp"), &secret).await;
    assert_eq!(r.body["status"]["state"], "ready", "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();
    let m = Mcp::open(admin).await;
    let mut stream = notifications(admin, &m).await;

    // A tool appearing upstream reaches this host's sessions.
    let r = up.admin.upload("?grant=true", package_bytes("data")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    wait_for_notification(&mut stream, "notifications/tools/list_changed").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !m
        .tool_names()
        .await
        .iter()
        .any(|n| n.starts_with("up__data__"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new upstream tools never appeared"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The lender goes away: tool errors, an error status, the host unharmed.
    listener.stop().await;
    let down = m.call("up__echo__echo", json!({ "text": "anyone?" })).await;
    assert_eq!(down["result"]["isError"], true, "{down}");
    assert!(text_of(&down).contains("unavailable"), "{down}");
    let status = admin.get(&format!("/api/v1/mcp-servers/{id}")).await;
    assert_eq!(status.body["status"]["state"], "error", "{}", status.text);
    assert!(status.body["status"]["error"].is_string());
    assert!(!m.tool_names().await.iter().any(|n| n.starts_with("up__")));
    assert_eq!(admin.get("/api/v1/health").await.status, 200);

    // It comes back on the same address: the next call reconnects.
    let listener = Listener::start(up.services.clone(), addr).await;
    let back = m
        .call("up__echo__echo", json!({ "text": "welcome back" }))
        .await;
    assert!(text_of(&back).contains("welcome back"), "{back}");
    let status = admin.get(&format!("/api/v1/mcp-servers/{id}")).await;
    assert_eq!(status.body["status"]["state"], "ready", "{}", status.text);
    listener.stop().await;
    server.stop().await;
    up.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_follow_the_address_tenancy_and_input_rules() {
    let server = Server::start(Backend::Sqlite).await;
    let r = server
        .admin
        .upload("?grant=true", package_bytes("echo"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let (user, _) = server.user("mallory", "user").await;
    let (other, _) = server.user("trent", "user").await;
    let post = |c: &Client, body: Value| {
        let c = c.clone();
        async move { c.post("/api/v1/mcp-servers", body).await }
    };
    for (body, status, why) in [
        (
            json!({ "name": "lan", "url": "http://127.0.0.1:9/mcp" }),
            403,
            "loopback",
        ),
        (
            json!({ "name": "meta", "url": "http://169.254.169.254/mcp" }),
            403,
            "link-local",
        ),
        (
            json!({ "name": "octal", "url": "http://0177.0.0.1/mcp" }),
            403,
            "octal loopback",
        ),
        (
            json!({ "name": "run", "command": ["npx", "server"] }),
            403,
            "stdio",
        ),
        (
            json!({ "name": "all", "url": "https://mcp.example.com/mcp", "shared": true }),
            403,
            "sharing",
        ),
        (
            json!({ "name": "ftp", "url": "ftp://example.com/" }),
            422,
            "scheme",
        ),
        (
            json!({ "name": "creds", "url": "https://u:p@example.com/" }),
            422,
            "credentials in URL",
        ),
        (
            json!({ "name": "Bad_Name", "url": "https://example.com/" }),
            422,
            "name",
        ),
        (
            json!({ "name": "echo", "url": "https://example.com/" }),
            409,
            "a plugin's name",
        ),
        (
            json!({ "name": "hdr", "url": "https://example.com/", "headers": { "Host": "x" } }),
            422,
            "reserved header",
        ),
        (
            json!({ "name": "hdr", "url": "https://example.com/", "headers": { "X-A": "a\nb" } }),
            422,
            "header value",
        ),
        (
            json!({ "name": "slow", "url": "https://example.com/", "timeout_secs": 0 }),
            422,
            "timeout",
        ),
        (
            json!({ "name": "both", "url": "https://example.com/", "command": ["x"] }),
            422,
            "both",
        ),
        (
            json!({ "name": "x", "url": "https://example.com/", "extra": 1 }),
            400,
            "unknown field",
        ),
        (
            json!({ "name": "x", "url": "https://example.com/", "timeout_secs": 1.5 }),
            400,
            "fraction",
        ),
    ] {
        let r = post(&user, body).await;
        assert_eq!(r.status, status, "{why}: {}", r.text);
    }
    let long = "a".repeat(3000);
    let r = post(
        &user,
        json!({ "name": "long", "url": format!("https://example.com/{long}") }),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let r = server
        .anon()
        .post(
            "/api/v1/mcp-servers",
            json!({ "name": "x", "url": "https://example.com/" }),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = user
        .send(
            user.request(reqwest::Method::POST, "/api/v1/mcp-servers")
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);

    // A name that resolves to a private address is refused when connecting.
    let r = post(
        &user,
        json!({ "name": "sneaky", "url": "http://ip6-localhost:9/mcp", "headers": { "X-Key": "hunter2-secret" } }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let status = loop {
        let s = user.get(&format!("/api/v1/mcp-servers/{id}")).await;
        if s.body["status"]["state"] == "error" {
            break s;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", s.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!status.text.contains("hunter2-secret"));
    // The same name again is a conflict; another user may use it.
    let again = post(
        &user,
        json!({ "name": "sneaky", "url": "https://example.com/" }),
    )
    .await;
    assert_eq!(again.status, 409, "{}", again.text);
    for (method, path) in [
        (reqwest::Method::GET, format!("/api/v1/mcp-servers/{id}")),
        (reqwest::Method::DELETE, format!("/api/v1/mcp-servers/{id}")),
        (
            reqwest::Method::GET,
            format!("/api/v1/mcp-servers/{id}/tools"),
        ),
        (
            reqwest::Method::POST,
            format!("/api/v1/mcp-servers/{id}/reconnect"),
        ),
    ] {
        let r = other.send(other.request(method.clone(), &path)).await;
        assert_eq!(r.status, 404, "{method} {path}: {}", r.text);
    }
    let listed = other.get("/api/v1/mcp-servers").await;
    assert_eq!(listed.body["items"], json!([]), "{}", listed.text);
    let all = server.admin.get("/api/v1/mcp-servers?all=true").await;
    assert_eq!(
        all.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        all.text
    );
    let audit = server
        .admin
        .get("/api/v1/audit?action=mcp_server.create")
        .await;
    assert!(audit.text.contains("denied"), "{}", audit.text);
    assert!(!audit.text.contains("hunter2-secret"));
    server.stop().await;
}

/// A server speaking MCP's streamable HTTP with JSON answers, hostile in the
/// way its path says: `/garbage` lists tools as a string, `/huge` lists 2,000
/// tools with over-long descriptions (and one unusable name), and its `slow`
/// tool never answers.
async fn hostile_server() -> std::net::SocketAddr {
    use warp::Filter;
    let route = warp::path!(String / "mcp")
        .and(warp::post())
        .and(warp::body::json())
        .then(|mode: String, msg: Value| async move {
            let Some(id) = msg.get("id").cloned() else {
                return http::Response::builder()
                    .status(202)
                    .body(String::new())
                    .unwrap();
            };
            let result = match msg["method"].as_str().unwrap_or("") {
                "initialize" => json!({ "protocolVersion": "2025-06-18",
                    "capabilities": { "tools": { "listChanged": true } },
                    "serverInfo": { "name": "hostile", "version": "6.6.6" } }),
                "tools/list" if mode == "garbage" => json!({ "tools": "not a list" }),
                "tools/list" => {
                    let mut tools: Vec<Value> = (0..2000)
                        .map(|i| {
                            json!({ "name": format!("t{i}"), "description": "x".repeat(5000),
                                         "inputSchema": { "type": "object" } })
                        })
                        .collect();
                    tools.insert(
                        0,
                        json!({ "name": "bad name!", "inputSchema": { "type": "object" } }),
                    );
                    tools.insert(
                        0,
                        json!({ "name": "slow", "inputSchema": { "type": "object" } }),
                    );
                    json!({ "tools": tools })
                }
                "tools/call" => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    json!({})
                }
                _ => json!({}),
            };
            http::Response::builder()
                .header("content-type", "application/json")
                .body(json!({ "jsonrpc": "2.0", "id": id, "result": result }).to_string())
                .unwrap()
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(route).incoming(listener).run());
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_server_cannot_hurt_the_host() {
    let addr = hostile_server().await;
    let server = Server::start(Backend::Sqlite).await;
    let admin = &server.admin;
    let r = admin
        .post(
            "/api/v1/mcp-servers",
            json!({ "name": "garbage", "url": format!("http://{addr}/garbage/mcp") }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["status"]["state"], "error", "{}", r.text);
    assert_eq!(r.body["status"]["tools"], 0);

    let r = admin
        .post(
            "/api/v1/mcp-servers",
            json!({ "name": "huge", "url": format!("http://{addr}/huge/mcp"), "timeout_secs": 1 }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["status"]["state"], "ready", "{}", r.text);
    assert_eq!(r.body["status"]["tools"], 512, "{}", r.text);
    assert_eq!(r.body["status"]["skipped"], 2002 - 512, "{}", r.text);
    assert_eq!(r.body["status"]["server_info"], "hostile 6.6.6");

    let m = Mcp::open(admin).await;
    let names = m.tool_names().await;
    assert!(names.contains(&"huge__slow".to_string()));
    assert!(!names.iter().any(|n| n.contains("bad name")));
    let started = std::time::Instant::now();
    let slow = m.call("huge__slow", json!({})).await;
    assert_eq!(slow["result"]["isError"], true, "{slow}");
    assert!(text_of(&slow).contains("within 1 s"), "{slow}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let unknown = m.call("huge__nope", json!({})).await;
    assert!(unknown["error"].is_object(), "{unknown}");
    assert_eq!(admin.get("/api/v1/health").await.status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_runs_a_stdio_server_inside_a_sandbox() {
    let server = Server::start(Backend::Sqlite).await;
    let admin = &server.admin;
    // The server's files go into the sandbox it will run in.
    let sandbox = crate::sandboxes::create(admin, json!({ "name": "mcp-calc" })).await;
    let script = include_str!("../mcp-stdio/server.py");
    let put = admin
        .send(
            admin
                .request(
                    reqwest::Method::PUT,
                    &format!("/api/v1/sandboxes/{sandbox}/file?path=server.py"),
                )
                .body(script),
        )
        .await;
    assert!(put.status < 300, "{}", put.text);
    let r = admin
        .post(
            "/api/v1/mcp-servers",
            json!({ "name": "calc", "command": ["python3", "/workspace/server.py"] }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["transport"], "stdio");
    assert_eq!(r.body["status"]["state"], "ready", "{}", r.text);
    assert_eq!(r.body["status"]["server_info"], "py-stdio 1.0");
    let id = r.body["id"].as_str().unwrap().to_string();
    let m = Mcp::open(admin).await;
    let sum = m.call("calc__add", json!({ "a": 2, "b": 40 })).await;
    assert_eq!(text_of(&sum), "42", "{sum}");
    // Removing the server ends the program and removes its sandbox.
    assert_eq!(
        admin
            .delete(&format!("/api/v1/mcp-servers/{id}"))
            .await
            .status,
        204
    );
    let gone = admin.get(&format!("/api/v1/sandboxes/{sandbox}")).await;
    assert_eq!(gone.status, 404, "{}", gone.text);
    crate::sandboxes::cleanup(&server).await;
    server.stop().await;
}
