//! Channels end to end with the real GitHub and generic webhook plugins, the
//! scripted fake LLM and a local receiver standing in for GitHub's REST API
//! (and a callback URL), on SQLite and Postgres: a signed delivery becomes one
//! task whose result is posted back once; redeliveries — also across a host
//! restart — make no second task and no second reply; a reply that fails twice
//! is retried until it lands; bad signatures, oversized bodies and unknown
//! channels are refused with nothing queued; a channel plugin that traps, spins
//! or runs out of memory answers 5xx, is audited and queues nothing; only
//! administrators manage channel instances.

use crate::harness::{Backend, Client, Resp, Server, package_bytes};
use crate::receiver::Receiver;
use crate::tasks::{events, wait_done};
use hmac::Mac;
use serde_json::{Value, json};
use std::time::Duration;
use switchyard::agent::config::{ApiKey, ProviderKind};
use switchyard::config::Config;
use switchyard_fake_llm::{FakeLlm, Reply};

crate::on_both_backends!(
    a_github_mention_runs_once_and_is_answered_once,
    a_reply_that_fails_twice_is_retried_until_it_lands,
    redeliveries_across_a_restart_make_one_task_and_one_reply,
    the_generic_webhook_signs_both_ways,
    slack_challenge_and_a_reply_in_the_thread,
    a_channel_plugin_that_traps_or_stalls_answers_5xx_and_queues_nothing,
);

const SECRET: &str = "It's a Secret to Everybody";

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn llm(c: &mut Config, fake: &FakeLlm) {
    c.llm.provider = Some(ProviderKind::OpenAi);
    c.llm.base_url = Some(fake.base_url_openai());
    c.llm.model = Some("fake-model".into());
    c.llm.api_key = Some(ApiKey::new("sk-test"));
    c.llm.timeout_secs = 5;
    c.channels.delivery_backoff_secs = 1;
}

fn answering(fake: &FakeLlm) {
    fake.set_responder(|_, _| Reply::text("Here is what I found."));
}

/// Install `plugin`, grant it the receiver's address, and add its `default` instance.
async fn channel(
    server: &Server,
    plugin: &str,
    rx: &Receiver,
    config: Value,
    secrets: Value,
) -> Value {
    let up = server
        .admin
        .upload("?grant=true", package_bytes(plugin))
        .await;
    assert_eq!(up.status, 201, "{}", up.text);
    let granted_secrets: Vec<&String> = secrets.as_object().unwrap().keys().collect();
    let r = server
        .admin
        .post(
            &format!("/api/v1/plugins/{plugin}/grants"),
            json!({ "http": [format!("127.0.0.1:{}", rx.addr.port())], "secrets": granted_secrets }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = server
        .admin
        .post(
            "/api/v1/channels",
            json!({ "plugin": plugin, "config": config, "secrets": secrets }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(
        !r.text.contains(SECRET),
        "secret values never come back: {}",
        r.text
    );
    r.body
}

async fn github(server: &Server, rx: &Receiver) -> Value {
    channel(
        server,
        "github",
        rx,
        json!({ "api_base": format!("http://{}", rx.addr) }),
        json!({ "webhook_secret": SECRET, "token": "ghp_test_token" }),
    )
    .await
}

fn comment(issue: u64, text: &str) -> Vec<u8> {
    json!({
        "action": "created",
        "issue": { "number": issue, "title": "It crashes" },
        "comment": { "id": 1000 + issue, "body": text, "user": { "login": "octocat", "type": "User" } },
        "repository": { "full_name": "acme/app" }
    })
    .to_string()
    .into_bytes()
}

async fn post_github(
    anon: &Client,
    event: &str,
    delivery: &str,
    body: &[u8],
    secret: &str,
) -> Resp {
    let req = anon
        .request(reqwest::Method::POST, "/api/v1/channels/github/webhook")
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header(
            "x-hub-signature-256",
            format!("sha256={}", sign(secret, body)),
        )
        .body(body.to_vec());
    anon.send(req).await
}

async fn webhook_tasks(client: &Client) -> Vec<Value> {
    let r = client.get("/api/v1/tasks?origin=webhook&limit=100").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["items"].as_array().unwrap().clone()
}

/// The task's `delivery` events' states, in order.
async fn delivery_states(client: &Client, id: &str) -> Vec<String> {
    events(client, id)
        .await
        .iter()
        .filter(|e| e["type"] == "delivery")
        .map(|e| e["data"]["state"].as_str().unwrap().to_string())
        .collect()
}

async fn wait_delivered(client: &Client, id: &str) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let states = delivery_states(client, id).await;
        if states.iter().any(|s| s == "delivered" || s == "failed") {
            return states;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never delivered: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_github_mention_runs_once_and_is_answered_once(backend: Backend) {
    let fake = FakeLlm::start().await;
    answering(&fake);
    let rx = Receiver::start().await;
    let server = Server::start_with(backend, |c| {
        llm(c, &fake);
        c.channels.max_body_bytes = 64 << 10;
    })
    .await;
    let ch = github(&server, &rx).await;
    assert_eq!(ch["webhook_path"], "/api/v1/channels/github/webhook");
    assert_eq!(ch["secrets"], json!(["token", "webhook_secret"]));
    let anon = server.anon();

    let ping = post_github(
        &anon,
        "ping",
        "p-1",
        br#"{"zen":"Keep it simple."}"#,
        SECRET,
    )
    .await;
    assert_eq!(ping.status, 200, "{}", ping.text);
    let body = comment(7, "@switchyard why does it crash?");
    let first = post_github(&anon, "issue_comment", "d-1", &body, SECRET).await;
    assert_eq!(first.status, 202, "{}", first.text);
    let again = post_github(&anon, "issue_comment", "d-1", &body, SECRET).await;
    assert_eq!(
        again.status, 202,
        "a redelivery gets the plugin's answer: {}",
        again.text
    );

    // Refused: nothing is queued.
    let wrong = post_github(&anon, "issue_comment", "d-2", &body, "another secret").await;
    assert_eq!(wrong.status, 401, "{}", wrong.text);
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let req = anon
        .request(reqwest::Method::POST, "/api/v1/channels/github/webhook")
        .header("x-github-event", "issue_comment")
        .header("x-github-delivery", "d-3")
        .header(
            "x-hub-signature-256",
            format!("sha256={}", sign(SECRET, &body)),
        )
        .body(tampered);
    assert_eq!(anon.send(req).await.status, 401);
    let unsigned = anon
        .request(reqwest::Method::POST, "/api/v1/channels/github/webhook")
        .header("x-github-event", "issue_comment")
        .body(body.clone());
    assert_eq!(anon.send(unsigned).await.status, 401);
    // Declared too large: answered 413 before the body is read (raw socket, so
    // the client cannot race the early answer while still sending).
    let huge = crate::bad_input::raw_http(
        &server.base,
        &format!(
            "POST /api/v1/channels/github/webhook HTTP/1.1\r\nhost: x\r\nx-github-event: issue_comment\r\nx-github-delivery: d-4\r\ncontent-length: {}\r\n\r\n",
            65 << 10
        ),
    )
    .await;
    assert!(huge.starts_with("HTTP/1.1 413"), "{huge}");
    let garbage = post_github(&anon, "issue_comment", "d-5", b"{not json", SECRET).await;
    assert_eq!(garbage.status, 400, "{}", garbage.text);
    let unknown = anon
        .request(reqwest::Method::POST, "/api/v1/channels/nope/webhook")
        .body("{}");
    assert_eq!(anon.send(unknown).await.status, 404);
    let named = anon
        .request(
            reqwest::Method::POST,
            "/api/v1/channels/github/other/webhook",
        )
        .body("{}");
    assert_eq!(anon.send(named).await.status, 404);
    let get = anon.get("/api/v1/channels/github/webhook").await;
    assert_eq!(get.status, 405, "{}", get.text);

    let tasks = webhook_tasks(&server.admin).await;
    assert_eq!(tasks.len(), 1, "one task for one delivery: {tasks:#?}");
    let task = wait_done(&server.admin, tasks[0]["id"].as_str().unwrap()).await;
    assert_eq!(task["status"], "completed", "{task}");
    let prompt = fake
        .requests()
        .iter()
        .find(|r| r.body["tools"].is_array())
        .unwrap()
        .body
        .to_string();
    assert!(
        prompt.contains("why does it crash?") && prompt.contains("octocat"),
        "{prompt}"
    );

    let posts = rx.wait_posts(1).await;
    let states = wait_delivered(&server.admin, task["id"].as_str().unwrap()).await;
    assert_eq!(states, ["sending", "delivered"]);
    assert_eq!(posts[0].path, "/repos/acme/app/issues/7/comments");
    assert_eq!(
        posts[0].header("authorization"),
        Some("Bearer ghp_test_token")
    );
    let posted = posts[0].json()["body"].as_str().unwrap().to_string();
    assert!(posted.starts_with("Here is what I found."), "{posted}");
    assert!(posted.contains("<!-- switchyard:"), "{posted}");

    // The same issue continues the same session; another issue gets its own.
    let r = post_github(
        &anon,
        "issue_comment",
        "d-6",
        &comment(7, "@switchyard and now?"),
        SECRET,
    )
    .await;
    assert_eq!(r.status, 202);
    let r = post_github(
        &anon,
        "issue_comment",
        "d-7",
        &comment(8, "@switchyard hello"),
        SECRET,
    )
    .await;
    assert_eq!(r.status, 202);
    let tasks = webhook_tasks(&server.admin).await;
    assert_eq!(tasks.len(), 3, "{tasks:#?}");
    let session_of = |n: usize| tasks[n]["session_id"].as_str().unwrap().to_string();
    let sessions: std::collections::BTreeSet<String> = (0..3).map(session_of).collect();
    assert_eq!(sessions.len(), 2, "{tasks:#?}");
    rx.wait_posts(3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.posts().len(), 3, "one reply per task");

    let deliveries = server
        .admin
        .get(&format!(
            "/api/v1/channels/{}/deliveries",
            ch["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(deliveries.status, 200, "{}", deliveries.text);
    assert_eq!(deliveries.body["items"].as_array().unwrap().len(), 3);
    let audit = server
        .admin
        .get("/api/v1/audit?action=channel.webhook")
        .await;
    assert!(audit.text.contains("X-Hub-Signature-256"), "{}", audit.text);

    // A conversation whose session is deleted goes on in a new one, whether
    // the session went through this host or behind its back (as another host
    // sharing the store would delete it) while this host remembered it.
    let newest_session = |tasks: &[Value]| tasks[0]["session_id"].as_str().unwrap().to_string();
    let issue_7 = session_of(1);
    assert_eq!(session_of(2), issue_7, "{tasks:#?}");
    let r = post_github(
        &anon,
        "issue_comment",
        "d-8",
        &comment(7, "@switchyard again"),
        SECRET,
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    rx.wait_posts(4).await;
    server
        .services
        .store
        .delete_session(&issue_7)
        .await
        .unwrap();
    let r = post_github(
        &anon,
        "issue_comment",
        "d-9",
        &comment(7, "@switchyard hello?"),
        SECRET,
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let tasks = webhook_tasks(&server.admin).await;
    assert_eq!(tasks.len(), 2, "issue 8's task and the new one: {tasks:#?}");
    let renewed = newest_session(&tasks);
    assert_ne!(renewed, issue_7);
    let r = server
        .admin
        .delete(&format!("/api/v1/sessions/{renewed}"))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = post_github(
        &anon,
        "issue_comment",
        "d-10",
        &comment(7, "@switchyard hi"),
        SECRET,
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let tasks = webhook_tasks(&server.admin).await;
    assert_eq!(
        tasks.len(),
        2,
        "issue 8's task and the last one: {tasks:#?}"
    );
    let last = newest_session(&tasks);
    assert!(last != issue_7 && last != renewed, "{tasks:#?}");

    // Channel instances are administrators' business; owners only read theirs.
    let (alice, _) = server.user("alice", "user").await;
    let r = alice
        .post(
            "/api/v1/channels",
            json!({ "plugin": "github", "name": "mine" }),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = alice
        .get(&format!("/api/v1/channels/{}", ch["id"].as_str().unwrap()))
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(alice.get("/api/v1/channels").await.body["items"], json!([]));
    let r = server
        .admin
        .post("/api/v1/channels", json!({ "plugin": "github" }))
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    let r = server
        .admin
        .post(
            "/api/v1/channels",
            json!({ "plugin": "github", "name": "x", "config": { "nope": "1" } }),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = server
        .admin
        .post("/api/v1/channels", json!({ "plugin": "echo-missing" }))
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    // The agent profile sessions start from must exist and be the owner's to use.
    let r = server
        .admin
        .post(
            "/api/v1/channels",
            json!({ "plugin": "github", "name": "y", "agent_id": "no-such-agent" }),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = server
        .admin
        .patch(
            &format!("/api/v1/channels/{}", ch["id"].as_str().unwrap()),
            json!({ "agent_id": "no-such-agent" }),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
}

async fn a_reply_that_fails_twice_is_retried_until_it_lands(backend: Backend) {
    let fake = FakeLlm::start().await;
    answering(&fake);
    let rx = Receiver::start().await;
    rx.fail_next(2);
    let server = Server::start_with(backend, |c| llm(c, &fake)).await;
    github(&server, &rx).await;
    let r = post_github(
        &server.anon(),
        "issue_comment",
        "r-1",
        &comment(3, "@switchyard go"),
        SECRET,
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let tasks = webhook_tasks(&server.admin).await;
    let id = tasks[0]["id"].as_str().unwrap();
    let states = wait_delivered(&server.admin, id).await;
    assert_eq!(
        states,
        [
            "sending",
            "retry",
            "sending",
            "retry",
            "sending",
            "delivered"
        ]
    );
    let posts = rx.posts();
    assert_eq!(posts.len(), 3);
    assert_eq!(
        posts.iter().filter(|p| p.ok).count(),
        1,
        "one comment landed"
    );
}

async fn redeliveries_across_a_restart_make_one_task_and_one_reply(backend: Backend) {
    let fake = FakeLlm::start().await;
    answering(&fake);
    let rx = Receiver::start().await;
    // The first host queues but runs nothing: the restart falls between
    // queueing and delivery.
    let server = Server::start_with(backend, |c| {
        llm(c, &fake);
        c.tasks.max_running = 0;
    })
    .await;
    github(&server, &rx).await;
    let body = comment(11, "@switchyard once please");
    for _ in 0..2 {
        let r = post_github(&server.anon(), "issue_comment", "same-id", &body, SECRET).await;
        assert_eq!(r.status, 202, "{}", r.text);
    }
    assert_eq!(webhook_tasks(&server.admin).await.len(), 1);
    let (data, mut config) = server.into_data().await;
    config.tasks.max_running = 16;
    let server = Server::resume(data, config).await;
    for _ in 0..3 {
        let r = post_github(&server.anon(), "issue_comment", "same-id", &body, SECRET).await;
        assert_eq!(r.status, 202, "{}", r.text);
    }
    let tasks = webhook_tasks(&server.admin).await;
    assert_eq!(tasks.len(), 1, "five sends, one task: {tasks:#?}");
    let id = tasks[0]["id"].as_str().unwrap();
    wait_done(&server.admin, id).await;
    assert_eq!(
        wait_delivered(&server.admin, id).await,
        ["sending", "delivered"]
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(rx.posts().len(), 1, "one reply");
}

async fn the_generic_webhook_signs_both_ways(backend: Backend) {
    let fake = FakeLlm::start().await;
    answering(&fake);
    let rx = Receiver::start().await;
    let server = Server::start_with(backend, |c| llm(c, &fake)).await;
    channel(
        &server,
        "webhook",
        &rx,
        json!({ "callback_url": format!("http://{}/hook", rx.addr) }),
        json!({ "signing_secret": "generic-secret" }),
    )
    .await;
    let body =
        br#"{"conversation":"ticket-42","text":"summarize the ticket","id":"evt-1","sender":"ci"}"#;
    let send = |sig: String| {
        let anon = server.anon();
        async move {
            let req = anon
                .request(reqwest::Method::POST, "/api/v1/channels/webhook/webhook")
                .header("x-signature", sig)
                .body(body.to_vec());
            anon.send(req).await
        }
    };
    assert_eq!(send("sha256=00".into()).await.status, 401);
    assert_eq!(
        send(format!("sha256={}", sign("generic-secret", body)))
            .await
            .status,
        202
    );
    assert_eq!(
        send(format!("sha256={}", sign("generic-secret", body)))
            .await
            .status,
        202
    );
    // A key holding NUL cannot be stored (PostgreSQL text): that message is
    // dropped on every backend while the webhook is still answered.
    let nul = br#"{"conversation":"ticket\u0000-7","text":"hello","id":"evt-2"}"#;
    let anon = server.anon();
    let req = anon
        .request(reqwest::Method::POST, "/api/v1/channels/webhook/webhook")
        .header(
            "x-signature",
            format!("sha256={}", sign("generic-secret", nul)),
        )
        .body(nul.to_vec());
    let dropped = anon.send(req).await;
    assert_eq!(dropped.status, 202, "{}", dropped.body);
    let tasks = webhook_tasks(&server.admin).await;
    assert_eq!(tasks.len(), 1);
    let posts = rx.wait_posts(1).await;
    let post = &posts[0];
    assert_eq!(post.path, "/hook");
    let expected = format!("sha256={}", sign("generic-secret", &post.body));
    assert_eq!(post.header("x-signature"), Some(expected.as_str()));
    let sent = post.json();
    assert_eq!(sent["conversation"], "ticket-42");
    assert_eq!(sent["text"], "Here is what I found.");
    assert_eq!(sent["status"], "completed");
    assert_eq!(
        post.header("idempotency-key"),
        sent["idempotency_key"].as_str()
    );
}

async fn post_slack(anon: &Client, body: &[u8], ts: u64, secret: &str) -> Resp {
    let mut base = format!("v0:{ts}:").into_bytes();
    base.extend_from_slice(body);
    let req = anon
        .request(reqwest::Method::POST, "/api/v1/channels/slack/webhook")
        .header("content-type", "application/json")
        .header("x-slack-request-timestamp", ts.to_string())
        .header("x-slack-signature", format!("v0={}", sign(secret, &base)))
        .body(body.to_vec());
    anon.send(req).await
}

async fn slack_challenge_and_a_reply_in_the_thread(backend: Backend) {
    let fake = FakeLlm::start().await;
    answering(&fake);
    let rx = Receiver::start().await;
    let server = Server::start_with(backend, |c| llm(c, &fake)).await;
    channel(
        &server,
        "slack",
        &rx,
        json!({ "api_base": format!("http://{}/api", rx.addr) }),
        json!({ "signing_secret": "slack-signing", "bot_token": "xoxb-test" }),
    )
    .await;
    let anon = server.anon();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let challenge = br#"{"type":"url_verification","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}"#;
    let r = post_slack(&anon, challenge, now, "slack-signing").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.text,
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
    assert_eq!(
        post_slack(&anon, challenge, now - 600, "slack-signing")
            .await
            .status,
        401,
        "stale"
    );
    assert_eq!(post_slack(&anon, challenge, now, "wrong").await.status, 401);

    let mention = br#"{"type":"event_callback","team_id":"T1","event_id":"Ev42","event":{"type":"app_mention","channel":"C9","user":"U7","text":"<@B1> summarize the thread","ts":"1700000000.000100","thread_ts":"1700000000.000001"}}"#;
    assert_eq!(
        post_slack(&anon, mention, now, "slack-signing")
            .await
            .status,
        200
    );
    // Slack's retry of the same event (X-Slack-Retry-Num) makes no second task.
    let mut base = format!("v0:{now}:").into_bytes();
    base.extend_from_slice(mention);
    let retry = anon
        .request(reqwest::Method::POST, "/api/v1/channels/slack/webhook")
        .header("x-slack-request-timestamp", now.to_string())
        .header(
            "x-slack-signature",
            format!("v0={}", sign("slack-signing", &base)),
        )
        .header("x-slack-retry-num", "1")
        .header("x-slack-retry-reason", "http_timeout")
        .body(mention.to_vec());
    assert_eq!(anon.send(retry).await.status, 200);
    let tasks = webhook_tasks(&server.admin).await;
    assert_eq!(tasks.len(), 1, "{tasks:#?}");
    let posts = rx.wait_posts(1).await;
    assert_eq!(posts[0].path, "/api/chat.postMessage");
    assert_eq!(posts[0].header("authorization"), Some("Bearer xoxb-test"));
    let sent = posts[0].json();
    assert_eq!(sent["channel"], "C9");
    assert_eq!(sent["thread_ts"], "1700000000.000001");
    assert_eq!(sent["text"], "Here is what I found.");
}

async fn a_channel_plugin_that_traps_or_stalls_answers_5xx_and_queues_nothing(backend: Backend) {
    let server = Server::start(backend).await;
    let admin = &server.admin;
    let up = admin
        .upload("?grant=true", package_bytes("hostile-channel"))
        .await;
    assert_eq!(up.status, 201, "{}", up.text);
    let r = admin
        .post("/api/v1/channels", json!({ "plugin": "hostile-channel" }))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let anon = server.anon();
    let hook = |body: &'static str| {
        anon.request(
            reqwest::Method::POST,
            "/api/v1/channels/hostile-channel/webhook",
        )
        .body(body)
    };
    for body in ["trap", "spin", "memory"] {
        let r = anon.send(hook(body)).await;
        assert!(
            (500..600).contains(&r.status),
            "{body}: a 5xx so the provider retries, got {} {}",
            r.status,
            r.text
        );
    }
    assert!(webhook_tasks(admin).await.is_empty(), "nothing was queued");
    let audit = admin.get("/api/v1/audit?action=channel.webhook").await;
    assert_eq!(audit.status, 200, "{}", audit.text);
    let entries = audit.body["items"].as_array().unwrap();
    assert!(
        entries.len() >= 3,
        "each failure is audited: {}",
        audit.text
    );
    // The host and the plugin are still fine: a good request queues one task.
    let ok = anon.send(hook("hello after the crashes")).await;
    assert_eq!(ok.status, 202, "{}", ok.text);
    let tasks = webhook_tasks(admin).await;
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    server.stop().await;
}
