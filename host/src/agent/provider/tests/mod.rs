//! Tests of both clients against the scripted fake server (`switchyard-fake-llm`).
//!
//! `cases` runs every behaviour both protocols share once per protocol; `openai` and
//! `anthropic` check what each sends on the wire.

mod anthropic;
mod cases;
mod openai;

use super::{Delta, Message, Provider, ProviderError, StepOutput, StepRequest, ToolCall, ToolDef};
use crate::agent::config::{ApiKey, ProviderKind, ResolvedLlm};
use serde_json::json;
use std::time::Duration;
use switchyard_fake_llm::FakeLlm;
use tokio::sync::mpsc;

/// The key the tests configure; no error message may contain it.
const KEY: &str = "sk-test-7f3a9c-very-secret";

/// Settings pointing at `llm` for `kind`, with a 5 s timeout and 3 retries.
fn resolved(llm: &FakeLlm, kind: ProviderKind) -> ResolvedLlm {
    ResolvedLlm {
        kind,
        base_url: match kind {
            ProviderKind::OpenAi => llm.base_url_openai(),
            ProviderKind::Anthropic => llm.base_url_anthropic(),
        },
        model: "test-model".into(),
        api_key: Some(ApiKey::new(KEY)),
        max_steps: 25,
        max_tokens: 256,
        timeout: Duration::from_secs(5),
        max_retries: 3,
    }
}

/// A client for `llm`.
fn provider(llm: &FakeLlm, kind: ProviderKind) -> Provider {
    Provider::new(&resolved(llm, kind)).expect("client")
}

/// A one-message request with one tool.
fn request() -> StepRequest {
    StepRequest {
        model: "test-model".into(),
        system: "You are terse.".into(),
        messages: vec![Message::User {
            content: "Read the file.".into(),
        }],
        tools: vec![ToolDef {
            name: "read_file".into(),
            description: "Reads a file".into(),
            input_schema: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        }],
        max_tokens: 256,
    }
}

/// Runs one step and returns its result and every delta it streamed.
async fn run(
    provider: &Provider,
    req: &StepRequest,
) -> (Result<StepOutput, ProviderError>, Vec<Delta>) {
    let (tx, mut rx) = mpsc::channel(4096);
    let result = provider.step(req, &tx).await;
    drop(tx);
    let mut deltas = Vec::new();
    while let Some(delta) = rx.recv().await {
        deltas.push(delta);
    }
    (result, deltas)
}

/// The text deltas, joined.
fn text_of(deltas: &[Delta]) -> String {
    deltas
        .iter()
        .filter_map(|d| match d {
            Delta::Text(t) => Some(t.as_str()),
            Delta::ToolCallStart { .. } => None,
        })
        .collect()
}

/// A conversation with every kind of message, for the wire-shape tests.
fn full_conversation() -> StepRequest {
    StepRequest {
        messages: vec![
            Message::User {
                content: "List and read.".into(),
            },
            Message::Assistant {
                text: "Looking.".into(),
                tool_calls: vec![
                    ToolCall {
                        id: "call_1".into(),
                        name: "list_dir".into(),
                        arguments: r#"{"path":"."}"#.into(),
                    },
                    ToolCall {
                        id: "call_2".into(),
                        name: "read_file".into(),
                        arguments: "{not json".into(),
                    },
                ],
            },
            Message::ToolResult {
                call_id: "call_1".into(),
                name: "list_dir".into(),
                content: "a.txt".into(),
                is_error: false,
            },
            Message::ToolResult {
                call_id: "call_2".into(),
                name: "read_file".into(),
                content: "invalid arguments".into(),
                is_error: true,
            },
        ],
        ..request()
    }
}

#[test]
fn messages_serialize_with_a_snake_case_role_tag() {
    let message = Message::ToolResult {
        call_id: "c".into(),
        name: "n".into(),
        content: "ok".into(),
        is_error: false,
    };
    let value = serde_json::to_value(&message).expect("serializes");
    assert_eq!(
        value,
        json!({"role": "tool_result", "call_id": "c", "name": "n", "content": "ok", "is_error": false})
    );
    let back: Message = serde_json::from_value(value).expect("deserializes");
    assert_eq!(back, message);
    let assistant: Message =
        serde_json::from_value(json!({"role": "assistant", "text": "hi"})).expect("defaults");
    assert_eq!(
        assistant,
        Message::Assistant {
            text: "hi".into(),
            tool_calls: Vec::new()
        }
    );
}

#[tokio::test]
async fn the_clients_debug_output_hides_the_key() {
    let llm = FakeLlm::start().await;
    for kind in [ProviderKind::OpenAi, ProviderKind::Anthropic] {
        let client = provider(&llm, kind);
        let text = format!("{client:?}");
        assert!(!text.contains(KEY), "{text}");
    }
    let mut settings = resolved(&llm, ProviderKind::OpenAi);
    settings.api_key = Some(ApiKey::new(format!("{KEY}\n")));
    let err = Provider::new(&settings).expect_err("a newline cannot go in a header");
    assert_eq!(err.code(), "llm_config");
    assert!(!err.to_string().contains(KEY));
}
