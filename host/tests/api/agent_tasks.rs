//! Agent tasks end to end against the scripted fake LLM (the real HTTP wire
//! protocols: OpenAI chat completions and Anthropic Messages, streamed, tool
//! arguments in fragments), on SQLite and Postgres: a multi-step task that
//! calls a plugin tool and `sandbox_exec` on a real Docker sandbox, an
//! `ask_user` round trip through `input_required`, approvals, cancel
//! mid-stream, provider failures (retried or not), a model naming unknown
//! tools or sending bad arguments, and no provider at all.

use crate::harness::{Backend, Client, Server, package_bytes};
use crate::tasks::{events, wait_done, wait_for};
use serde_json::{Value, json};
use std::time::Duration;
use switchyard::agent::config::{ApiKey, ProviderKind};
use switchyard_fake_llm::{FakeLlm, Protocol, Reply};

crate::on_both_backends!(
    a_multi_step_agent_task_uses_a_plugin_tool_and_the_sandbox,
    ask_user_and_approvals_wait_for_the_next_message,
    provider_failures_end_or_retry_the_task_as_they_should,
);

async fn server_with(backend: Backend, fake: &FakeLlm, protocol: Protocol) -> Server {
    let (kind, base) = match protocol {
        Protocol::OpenAi => (ProviderKind::OpenAi, fake.base_url_openai()),
        Protocol::Anthropic => (ProviderKind::Anthropic, fake.base_url_anthropic()),
    };
    Server::start_with(backend, |c| {
        c.llm.provider = Some(kind);
        c.llm.base_url = Some(base);
        c.llm.model = Some("fake-model".into());
        c.llm.api_key = Some(ApiKey::new("sk-test-secret-key"));
        c.llm.timeout_secs = 2;
        c.llm.max_retries = 1;
        c.tasks.max_attempts = 2;
    })
    .await
}

async fn agent(client: &Client, session: Option<&str>, content: &str) -> Value {
    let mut body = json!({ "kind": "agent", "input": { "content": content } });
    if let Some(s) = session {
        body["session_id"] = s.into();
    }
    let r = client.post("/api/v1/tasks", body).await;
    assert_eq!(r.status, 202, "{}", r.text);
    r.body
}

/// The tool results the model was sent in its last step (title requests,
/// which offer no tools, left out).
fn tool_results(fake: &FakeLlm) -> Vec<Value> {
    let last = fake
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.body["tools"].as_array().is_some_and(|t| !t.is_empty()))
        .expect("a step request");
    last.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool" || m["content"][0]["type"] == "tool_result")
        .cloned()
        .collect()
}

async fn a_multi_step_agent_task_uses_a_plugin_tool_and_the_sandbox(backend: Backend) {
    for protocol in [Protocol::OpenAi, Protocol::Anthropic] {
        let fake = FakeLlm::start().await;
        let server = server_with(backend, &fake, protocol).await;
        let admin = &server.admin;
        let up = admin.upload("?grant=true", package_bytes("echo")).await;
        assert_eq!(up.status, 201, "{}", up.text);
        fake.push(Reply::text_then_tool_call(
            "Let me check.",
            "call_1",
            "echo__echo",
            r#"{"text": "ping"}"#,
        ));
        fake.push(Reply::tool_call(
            "call_2",
            "sandbox_exec",
            r#"{"command": "echo from-the-sandbox > out.txt && cat out.txt"}"#,
        ));
        fake.push(Reply::text("All done: the sandbox said from-the-sandbox.").usage(120, 30));
        fake.push(Reply::text("Sandbox echo session"));
        let task = agent(admin, None, "Echo ping, then write a file in the sandbox").await;
        let id = task["id"].as_str().unwrap();
        let session = task["session_id"].as_str().unwrap().to_string();
        let done = wait_done(admin, id).await;
        assert_eq!(done["status"], "completed", "{protocol:?}: {done}");
        assert_eq!(
            done["result"]["text"],
            "All done: the sandbox said from-the-sandbox."
        );
        assert_eq!(done["result"]["steps"], 3);
        assert!(
            done["usage"]["output_tokens"].as_i64().unwrap() >= 30,
            "{done}"
        );
        let evs = events(admin, id).await;
        let kinds: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert!(
            kinds.contains(&"text")
                && kinds.contains(&"tool_call")
                && kinds.contains(&"tool_result"),
            "{kinds:?}"
        );
        let text: String = evs
            .iter()
            .filter(|e| e["type"] == "text")
            .map(|e| e["data"]["delta"].as_str().unwrap().to_string())
            .collect();
        assert!(text.starts_with("Let me check."), "{text}");
        let results: Vec<&Value> = evs.iter().filter(|e| e["type"] == "tool_result").collect();
        assert_eq!(results[0]["data"]["content"], "ping");
        assert!(
            results[1]["data"]["content"]
                .as_str()
                .unwrap()
                .contains("from-the-sandbox"),
            "{results:?}"
        );
        assert_eq!(results[1]["data"]["is_error"], false);
        // The model got the results, with the documented wire shape.
        let requests = fake.requests();
        let steps = requests
            .iter()
            .filter(|r| r.body["tools"].as_array().is_some_and(|t| !t.is_empty()))
            .count();
        assert_eq!(steps, 3, "three steps (and a title request on the side)");
        let sent = tool_results(&fake);
        assert!(!sent.is_empty());
        match protocol {
            Protocol::OpenAi => {
                assert_eq!(
                    requests[0].header("authorization"),
                    Some("Bearer sk-test-secret-key")
                );
                assert_eq!(requests[0].body["stream_options"]["include_usage"], true);
                assert!(
                    requests[0].body["tools"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|t| t["function"]["name"] == "sandbox_exec")
                );
            }
            Protocol::Anthropic => {
                assert_eq!(requests[0].header("x-api-key"), Some("sk-test-secret-key"));
                assert!(
                    requests[0].body["tools"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|t| t["name"] == "echo__echo")
                );
            }
        }
        // The history persists, and the next message continues the conversation.
        let history = admin
            .get(&format!("/api/v1/sessions/{session}/messages"))
            .await;
        let roles: Vec<&str> = history.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(
            roles,
            [
                "user",
                "assistant",
                "tool_result",
                "assistant",
                "tool_result",
                "assistant"
            ]
        );
        // The provider titled the session after the first exchange.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let s = admin.get(&format!("/api/v1/sessions/{session}")).await;
            if s.body["title"] == "Sandbox echo session" {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never titled: {}",
                s.body
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        fake.push(Reply::text("Yes, I remember."));
        let next = admin
            .post(
                &format!("/api/v1/sessions/{session}/messages"),
                json!({ "content": "Do you remember?" }),
            )
            .await;
        assert_eq!(next.status, 202, "{}", next.text);
        let next = wait_done(admin, next.body["task_id"].as_str().unwrap()).await;
        assert_eq!(next["status"], "completed");
        let last = fake
            .requests()
            .into_iter()
            .rev()
            .find(|r| r.body["tools"].as_array().is_some_and(|t| !t.is_empty()))
            .unwrap();
        let carried = last.body["messages"].as_array().unwrap().len();
        assert!(
            carried >= 7,
            "the whole history went to the model: {carried}"
        );
        // The key is never returned.
        assert!(
            !admin
                .get(&format!("/api/v1/tasks/{id}/events"))
                .await
                .text
                .contains("sk-test-secret-key")
        );
        crate::sandboxes::cleanup(&server).await;
        server.stop().await;
    }
}

async fn ask_user_and_approvals_wait_for_the_next_message(backend: Backend) {
    let fake = FakeLlm::start().await;
    let server = server_with(backend, &fake, Protocol::OpenAi).await;
    let admin = &server.admin;
    fake.push(Reply::tool_call(
        "q1",
        "ask_user",
        r#"{"question": "Which file?"}"#,
    ));
    fake.push(Reply::text("Thanks, notes.txt it is."));
    let task = agent(admin, None, "Summarize a file").await;
    let id = task["id"].as_str().unwrap().to_string();
    let session = task["session_id"].as_str().unwrap().to_string();
    let waiting = wait_for(admin, &id, &["input_required"]).await;
    assert_eq!(waiting["waiting_for"]["type"], "question");
    assert_eq!(waiting["waiting_for"]["question"], "Which file?");
    let answer = admin
        .post(
            &format!("/api/v1/sessions/{session}/messages"),
            json!({ "content": "notes.txt" }),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.text);
    assert_eq!(
        answer.body["task_id"],
        id.as_str(),
        "the answer resumes the same task"
    );
    let done = wait_done(admin, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    let sent = tool_results(&fake);
    assert_eq!(sent.last().unwrap()["content"], "notes.txt");

    // An agent profile that wants approval for destructive calls.
    let profile = admin
        .post(
            "/api/v1/agents",
            json!({ "name": "careful", "approval": "destructive", "instructions": "Be careful." }),
        )
        .await;
    assert_eq!(profile.status, 201, "{}", profile.text);
    let s = admin
        .post(
            "/api/v1/sessions",
            json!({ "agent_id": profile.body["id"] }),
        )
        .await;
    assert_eq!(s.status, 201, "{}", s.text);
    assert_eq!(s.body["instructions"], "Be careful.");
    let sid = s.body["id"].as_str().unwrap().to_string();
    fake.push(Reply::tool_call(
        "x1",
        "sandbox_exec",
        r#"{"command": "rm -rf /workspace/*"}"#,
    ));
    fake.push(Reply::text("Understood, I will not."));
    let t = agent(admin, Some(&sid), "Clean up").await;
    let tid = t["id"].as_str().unwrap().to_string();
    let waiting = wait_for(admin, &tid, &["input_required"]).await;
    assert_eq!(waiting["waiting_for"]["type"], "approval", "{waiting}");
    assert_eq!(waiting["waiting_for"]["tool"], "sandbox_exec");
    assert_eq!(
        waiting["waiting_for"]["arguments"]["command"],
        "rm -rf /workspace/*"
    );
    let bare = admin
        .post(
            &format!("/api/v1/sessions/{sid}/messages"),
            json!({ "content": "hmm" }),
        )
        .await;
    assert_eq!(bare.status, 400, "an approval needs approve: {}", bare.text);
    let deny = admin
        .post(
            &format!("/api/v1/sessions/{sid}/messages"),
            json!({ "content": "not that", "approve": false }),
        )
        .await;
    assert_eq!(deny.status, 202, "{}", deny.text);
    let done = wait_done(admin, &tid).await;
    assert_eq!(done["status"], "completed", "{done}");
    let sent = tool_results(&fake);
    let denied = sent.last().unwrap()["content"].as_str().unwrap();
    assert!(
        denied.contains("denied") && denied.contains("not that"),
        "{denied}"
    );
    let audit = admin.get("/api/v1/audit?action=task.answer").await;
    assert!(audit.text.contains("task.answer"), "{}", audit.text);
    // The system prompt carries the session's instructions.
    let last = fake.requests().last().cloned().unwrap();
    assert_eq!(last.body["messages"][0]["role"], "system");
    assert!(
        last.body["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("Be careful.")
    );
    server.stop().await;
}

async fn provider_failures_end_or_retry_the_task_as_they_should(backend: Backend) {
    let fake = FakeLlm::start().await;
    let server = server_with(backend, &fake, Protocol::Anthropic).await;
    let admin = &server.admin;
    // 500 then 200: retried by the client, the task completes.
    fake.push(Reply::status(
        500,
        r#"{"type":"error","error":{"type":"api_error","message":"boom"}}"#,
    ));
    fake.push(Reply::text("recovered"));
    let t = agent(admin, None, "hello").await;
    let done = wait_done(admin, t["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "completed", "{done}");
    let session = t["session_id"].as_str().unwrap().to_string();
    // Let the title request (and its one retry: nothing is queued for it) go by before counting.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while fake.request_count() < 4 {
        assert!(tokio::time::Instant::now() < deadline, "no title request");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // 401: failed at once, not retried.
    let before = fake.request_count();
    fake.push(Reply::api_error(401, "invalid x-api-key"));
    let t = agent(admin, Some(&session), "again").await;
    let failed = wait_done(admin, t["id"].as_str().unwrap()).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], "llm_auth", "{failed}");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid x-api-key")
    );
    assert!(!failed.to_string().contains("sk-test-secret-key"));
    assert_eq!(fake.request_count() - before, 1, "a 401 is never retried");

    // A stream dropped mid-event: the step is retried by the queue (attempt 2).
    fake.push(Reply::text("partial answer that gets cut").then_drop());
    fake.push(Reply::text("complete answer"));
    let t = agent(admin, Some(&session), "third").await;
    let done = wait_done(admin, t["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["text"], "complete answer");
    assert_eq!(done["attempt"], 2, "{done}");
    let evs = events(admin, t["id"].as_str().unwrap()).await;
    assert!(
        evs.iter()
            .any(|e| e["type"] == "log" && e["data"]["discard_step"].is_i64()),
        "{evs:#?}"
    );

    // Malformed JSON in the stream: failed with the reason.
    fake.push(Reply::malformed());
    let t = agent(admin, Some(&session), "fourth").await;
    let failed = wait_done(admin, t["id"].as_str().unwrap()).await;
    assert_eq!(failed["error"]["code"], "llm_protocol", "{failed}");

    // A model naming unknown tools and sending broken arguments: fed back as tool errors.
    fake.push(Reply::tool_calls([
        ("u1", "no_such_tool", "{}"),
        ("u2", "sandbox_read_file", "{not json"),
    ]));
    fake.push(Reply::text("ok, giving up on those"));
    let t = agent(admin, Some(&session), "fifth").await;
    let done = wait_done(admin, t["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "completed", "{done}");
    let sent = tool_results(&fake);
    let texts: Vec<String> = sent
        .iter()
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .map(|b| b["content"].to_string())
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("there is no tool `no_such_tool`")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.contains("not valid JSON")),
        "{texts:?}"
    );

    // A provider that hangs after the headers: timed out, retried, then failed.
    fake.push(Reply::hang());
    fake.push(Reply::hang());
    fake.push(Reply::hang());
    fake.push(Reply::hang());
    let t = agent(admin, Some(&session), "sixth").await;
    let failed = wait_done(admin, t["id"].as_str().unwrap()).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error"]["code"], "llm_timeout", "{failed}");

    // Cancel mid-stream.
    fake.push(Reply::text("a b c d e f g h i j k l m n o p").slow(Duration::from_millis(300)));
    let t = agent(admin, Some(&session), "seventh").await;
    let tid = t["id"].as_str().unwrap().to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !events(admin, &tid)
        .await
        .iter()
        .any(|e| e["type"] == "text")
    {
        assert!(tokio::time::Instant::now() < deadline, "no text streamed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let c = admin
        .post(&format!("/api/v1/tasks/{tid}/cancel"), json!({}))
        .await;
    assert_eq!(c.status, 202);
    let canceled = wait_done(admin, &tid).await;
    assert_eq!(canceled["status"], "canceled", "{canceled}");
    // The server is fine.
    assert_eq!(server.anon().get("/api/v1/health").await.status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_provider_agent_tasks_fail_at_once_and_say_what_to_set() {
    let server = Server::start(Backend::Sqlite).await;
    let t = agent(&server.admin, None, "hello").await;
    let failed = wait_done(&server.admin, t["id"].as_str().unwrap()).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], "llm_not_configured");
    let message = failed["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("SWITCHYARD_LLM_PROVIDER") && message.contains("[llm]"),
        "{message}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_provider_fails_the_task_with_the_reason() {
    let server = Server::start_with(Backend::Sqlite, |c| {
        c.llm.provider = Some(ProviderKind::OpenAi);
        c.llm.base_url = Some("http://127.0.0.1:9/v1".into());
        c.llm.model = Some("m".into());
        c.llm.max_retries = 1;
        c.tasks.max_attempts = 2;
    })
    .await;
    let t = agent(&server.admin, None, "hello").await;
    let failed = wait_done(&server.admin, t["id"].as_str().unwrap()).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error"]["code"], "llm_unavailable", "{failed}");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1:9"),
        "{failed}"
    );
    assert_eq!(failed["attempt"], 2);
    server.stop().await;
}
