//! What the OpenAI client sends: path, headers and the chat-completions body.

use super::{KEY, full_conversation, provider, request, run};
use crate::agent::config::ProviderKind;
use serde_json::json;
use switchyard_fake_llm::{FakeLlm, Reply};

#[tokio::test]
async fn the_request_has_the_documented_shape() {
    let llm = FakeLlm::start().await;
    llm.push(Reply::text("done"));
    let (result, _) = run(&provider(&llm, ProviderKind::OpenAi), &full_conversation()).await;
    result.expect("step succeeds");
    let requests = llm.requests();
    let [sent] = requests.as_slice() else {
        panic!("one request: {requests:?}");
    };
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(sent.header("x-api-key"), None);
    assert_eq!(sent.header("content-type"), Some("application/json"));
    let body = &sent.body;
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(body["max_tokens"], 256);
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "List and read."},
            {"role": "assistant", "content": "Looking.", "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "list_dir", "arguments": "{\"path\":\".\"}"}},
                {"id": "call_2", "type": "function",
                 "function": {"name": "read_file", "arguments": "{not json"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "a.txt"},
            {"role": "tool", "tool_call_id": "call_2", "content": "invalid arguments"}
        ])
    );
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "function": {
            "name": "read_file", "description": "Reads a file",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}}])
    );
}

#[tokio::test]
async fn empty_system_and_tools_are_left_out() {
    let llm = FakeLlm::start().await;
    llm.push(Reply::tool_call("call_9", "noop", ""));
    let mut req = request();
    req.system.clear();
    req.tools.clear();
    req.messages
        .push(crate::agent::provider::Message::Assistant {
            text: String::new(),
            tool_calls: vec![crate::agent::provider::ToolCall {
                id: "c0".into(),
                name: "noop".into(),
                arguments: "{}".into(),
            }],
        });
    let (result, _) = run(&provider(&llm, ProviderKind::OpenAi), &req).await;
    let output = result.expect("step succeeds");
    assert_eq!(
        output.tool_calls[0].arguments, "",
        "kept as the model sent it"
    );
    let body = &llm.requests()[0].body;
    assert!(body.get("tools").is_none(), "{body}");
    assert_eq!(
        body["messages"][0],
        json!({"role": "user", "content": "Read the file."})
    );
    assert_eq!(body["messages"][1]["content"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_local_server_without_a_key_gets_no_authorization_header() {
    let llm = FakeLlm::start().await;
    llm.push(Reply::text("local"));
    let mut settings = super::resolved(&llm, ProviderKind::OpenAi);
    settings.api_key = None;
    let client = crate::agent::provider::Provider::new(&settings).expect("client");
    assert_eq!(client.kind(), "openai");
    let (result, _) = run(&client, &request()).await;
    assert_eq!(result.expect("step succeeds").text, "local");
    assert_eq!(llm.requests()[0].header("authorization"), None);
}
