//! What the Anthropic client sends: path, headers and the Messages body.

use super::{KEY, full_conversation, provider, request, run};
use crate::agent::config::ProviderKind;
use crate::agent::provider::{Message, ProviderError};
use serde_json::json;
use switchyard_fake_llm::{FakeLlm, Reply};

#[tokio::test]
async fn the_request_has_the_documented_shape() {
    let llm = FakeLlm::start().await;
    llm.push(Reply::text("done"));
    let client = provider(&llm, ProviderKind::Anthropic);
    assert_eq!(client.kind(), "anthropic");
    let (result, _) = run(&client, &full_conversation()).await;
    result.expect("step succeeds");
    let requests = llm.requests();
    let [sent] = requests.as_slice() else {
        panic!("one request: {requests:?}");
    };
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some(KEY));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(sent.header("content-type"), Some("application/json"));
    let body = &sent.body;
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["system"], "You are terse.");
    assert_eq!(body["max_tokens"], 256);
    assert_eq!(body["stream"], true);
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "List and read."}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Looking."},
                {"type": "tool_use", "id": "call_1", "name": "list_dir", "input": {"path": "."}},
                {"type": "tool_use", "id": "call_2", "name": "read_file", "input": {}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "a.txt"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "invalid arguments",
                 "is_error": true}
            ]}
        ])
    );
    assert_eq!(
        body["tools"],
        json!([{"name": "read_file", "description": "Reads a file",
                "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}])
    );
}

#[tokio::test]
async fn a_user_turn_after_tool_results_joins_their_message() {
    let llm = FakeLlm::start().await;
    llm.push(Reply::text("ok"));
    let mut req = full_conversation();
    req.system.clear();
    req.tools.clear();
    req.messages.push(Message::User {
        content: "Also check b.txt.".into(),
    });
    let (result, _) = run(&provider(&llm, ProviderKind::Anthropic), &req).await;
    result.expect("step succeeds");
    let body = &llm.requests()[0].body;
    assert!(
        body.get("system").is_none() && body.get("tools").is_none(),
        "{body}"
    );
    let messages = body["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 3, "{body}");
    assert_eq!(
        messages[2]["content"][2],
        json!({"type": "text", "text": "Also check b.txt."})
    );
}

#[tokio::test]
async fn an_invalid_request_error_event_is_fatal() {
    let llm = FakeLlm::start().await;
    llm.push(Reply::error_event("invalid_request_error"));
    let (result, _) = run(&provider(&llm, ProviderKind::Anthropic), &request()).await;
    let err = result.expect_err("fatal");
    assert!(
        matches!(
            err,
            ProviderError::Fatal {
                code: "llm_bad_request",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(llm.request_count(), 1);
}

#[tokio::test]
async fn overloaded_529_is_retried() {
    let llm = FakeLlm::start().await;
    llm.push(Reply::api_error(529, "Overloaded"));
    llm.push(Reply::text("fine now"));
    let (result, _) = run(&provider(&llm, ProviderKind::Anthropic), &request()).await;
    assert_eq!(result.expect("retried").text, "fine now");
    assert_eq!(llm.request_count(), 2);
}
