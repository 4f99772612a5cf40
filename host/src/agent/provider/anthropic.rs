//! The Anthropic Messages client.
//!
//! `POST {base_url}/v1/messages` with `x-api-key` and `anthropic-version: 2023-06-01`, the
//! system prompt top-level and `stream: true`. Assistant turns go out as `text` and `tool_use`
//! blocks (a call whose stored arguments are not a JSON object is sent with `input: {}`), tool
//! results as `tool_result` blocks of a `user` message (consecutive turns of one role are merged
//! into one message). The stream must end with `message_stop`; an `error` event ends it early.

use super::http::{Decoder, Transport, secret_header, truncate};
use super::sse::SseEvent;
use super::{Delta, Message, ProviderError, StepOutput, StepRequest, StopReason, ToolCall, Usage};
use crate::agent::config::ResolvedLlm;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use tokio::sync::mpsc::Sender;

/// The API version every request names.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// A client of the Anthropic Messages API (or a compatible endpoint).
#[derive(Debug, Clone)]
pub struct Client {
    http: Transport,
}

impl Client {
    /// Builds the client for `resolved` (its connection pool lives as long as the client).
    pub fn new(resolved: &ResolvedLlm) -> Result<Self, ProviderError> {
        let mut headers = vec![(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(ANTHROPIC_VERSION),
        )];
        if let Some(key) = &resolved.api_key {
            headers.push((
                HeaderName::from_static("x-api-key"),
                secret_header(key, "")?,
            ));
        }
        let http = Transport::new(
            resolved,
            "/v1/messages",
            headers,
            "anthropic",
            "message_stop",
        )?;
        Ok(Self { http })
    }

    /// Runs one step (see [`super::Provider::step`]).
    pub async fn step(
        &self,
        req: &StepRequest,
        deltas: &Sender<Delta>,
    ) -> Result<StepOutput, ProviderError> {
        self.http
            .run(&request_body(req), StreamDecoder::default, deltas)
            .await
    }
}

/// The `input` of a `tool_use` block: the stored arguments when they are a JSON object.
fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(map)) => Value::Object(map),
        _ => Value::Object(Map::new()),
    }
}

/// The JSON body of a streamed message.
pub(crate) fn request_body(req: &StepRequest) -> Value {
    let mut turns: Vec<(&str, Vec<Value>)> = Vec::new();
    for message in &req.messages {
        let (role, blocks) = match message {
            Message::User { content } if content.is_empty() => continue,
            Message::User { content } => ("user", vec![json!({"type": "text", "text": content})]),
            Message::Assistant { text, tool_calls } => {
                let mut blocks = Vec::with_capacity(tool_calls.len() + 1);
                if !text.is_empty() {
                    blocks.push(json!({"type": "text", "text": text}));
                }
                blocks.extend(tool_calls.iter().map(|c| {
                    json!({"type": "tool_use", "id": c.id, "name": c.name,
                           "input": tool_input(&c.arguments)})
                }));
                ("assistant", blocks)
            }
            Message::ToolResult {
                call_id,
                content,
                is_error,
                ..
            } => {
                let mut block = json!({"type": "tool_result", "tool_use_id": call_id,
                                       "content": content});
                if *is_error {
                    block["is_error"] = Value::Bool(true);
                }
                ("user", vec![block])
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    let mut body = json!({
        "model": req.model,
        "max_tokens": req.max_tokens,
        "messages": messages,
        "stream": true,
    });
    if !req.system.is_empty() {
        body["system"] = Value::String(req.system.clone());
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| {
                json!({"name": t.name, "description": t.description,
                            "input_schema": t.input_schema})
            })
            .collect();
    }
    body
}

/// A content block of the answer being streamed.
#[derive(Debug)]
enum Block {
    /// Text: its deltas go straight out.
    Text,
    /// A tool call: position in the step's calls, the JSON fragments, the start's `input`.
    Tool {
        slot: usize,
        json: String,
        initial: String,
    },
    /// Something the step does not keep (thinking, server tools, …).
    Other,
}

/// The state of one response stream.
#[derive(Debug, Default)]
struct StreamDecoder {
    text: String,
    calls: Vec<ToolCall>,
    blocks: HashMap<u64, Block>,
    stop_reason: Option<String>,
    usage: Usage,
}

/// The number at `key` of a usage object.
fn count(usage: Option<&Value>, key: &str) -> u64 {
    usage
        .and_then(|u| u.get(key))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// The error an `error` event stands for.
fn stream_error(data: &Value) -> ProviderError {
    let kind = data
        .pointer("/error/type")
        .and_then(Value::as_str)
        .unwrap_or("error");
    let detail = data
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("(no message)");
    let message = format!(
        "the anthropic stream ended with {kind}: {}",
        truncate(detail, 500)
    );
    let code = match kind {
        "invalid_request_error" | "request_too_large" => "llm_bad_request",
        "authentication_error" | "permission_error" => "llm_auth",
        "not_found_error" => "llm_not_found",
        _ => return ProviderError::retryable(message),
    };
    ProviderError::Fatal { code, message }
}

impl StreamDecoder {
    /// The `index` of a block event.
    fn index(data: &Value) -> Result<u64, ProviderError> {
        data.get("index").and_then(Value::as_u64).ok_or_else(|| {
            ProviderError::protocol("an anthropic content block event without an index")
        })
    }

    /// `content_block_start`.
    fn start(&mut self, data: &Value, out: &mut Vec<Delta>) -> Result<(), ProviderError> {
        let index = Self::index(data)?;
        let block = data.get("content_block");
        let field = |key: &str| {
            block
                .and_then(|b| b.get(key))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let kind = block.and_then(|b| b.get("type")).and_then(Value::as_str);
        let state = match kind {
            Some("text") => {
                let text = field("text");
                if !text.is_empty() {
                    self.text.push_str(&text);
                    out.push(Delta::Text(text));
                }
                Block::Text
            }
            Some("tool_use") => {
                let slot = self.calls.len();
                let (id, name) = (field("id"), field("name"));
                out.push(Delta::ToolCallStart {
                    index: slot,
                    id: id.clone(),
                    name: name.clone(),
                });
                self.calls.push(ToolCall {
                    id,
                    name,
                    arguments: String::new(),
                });
                let initial = block
                    .and_then(|b| b.get("input"))
                    .filter(|i| i.as_object().is_some_and(|o| !o.is_empty()))
                    .map(Value::to_string)
                    .unwrap_or_default();
                Block::Tool {
                    slot,
                    json: String::new(),
                    initial,
                }
            }
            _ => Block::Other,
        };
        self.blocks.insert(index, state);
        Ok(())
    }

    /// `content_block_delta`.
    fn delta(&mut self, data: &Value, out: &mut Vec<Delta>) -> Result<(), ProviderError> {
        let index = Self::index(data)?;
        let delta = data.get("delta");
        let text = |key: &str| delta.and_then(|d| d.get(key)).and_then(Value::as_str);
        match self.blocks.get_mut(&index) {
            None => Err(ProviderError::protocol(format!(
                "an anthropic delta for content block {index}, which was not started"
            ))),
            Some(Block::Text) => {
                if let Some(piece) = text("text").filter(|t| !t.is_empty()) {
                    self.text.push_str(piece);
                    out.push(Delta::Text(piece.to_owned()));
                }
                Ok(())
            }
            Some(Block::Tool { json, .. }) => {
                if let Some(piece) = text("partial_json") {
                    json.push_str(piece);
                }
                Ok(())
            }
            Some(Block::Other) => Ok(()),
        }
    }
}

impl Decoder for StreamDecoder {
    fn event(&mut self, event: SseEvent, out: &mut Vec<Delta>) -> Result<bool, ProviderError> {
        let data: Value = serde_json::from_str(&event.data).map_err(|e| {
            ProviderError::protocol(format!(
                "the anthropic stream sent an event whose data is not JSON ({e}): {}",
                truncate(&event.data, 200)
            ))
        })?;
        let kind = data
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref())
            .unwrap_or_default();
        match kind {
            "message_start" => {
                let usage = data.pointer("/message/usage");
                self.usage = Usage {
                    input_tokens: count(usage, "input_tokens")
                        + count(usage, "cache_creation_input_tokens")
                        + count(usage, "cache_read_input_tokens"),
                    output_tokens: count(usage, "output_tokens"),
                };
            }
            "content_block_start" => self.start(&data, out)?,
            "content_block_delta" => self.delta(&data, out)?,
            "message_delta" => {
                if let Some(reason) = data.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop_reason = Some(reason.to_owned());
                }
                let usage = data.get("usage");
                if usage.and_then(|u| u.get("output_tokens")).is_some() {
                    self.usage.output_tokens = count(usage, "output_tokens");
                }
                if usage.and_then(|u| u.get("input_tokens")).is_some() {
                    self.usage.input_tokens = count(usage, "input_tokens")
                        + count(usage, "cache_creation_input_tokens")
                        + count(usage, "cache_read_input_tokens");
                }
            }
            "message_stop" => return Ok(true),
            "error" => return Err(stream_error(&data)),
            // `ping`, `content_block_stop` (blocks are closed at the end) and events added later.
            _ => {}
        }
        Ok(false)
    }

    fn finish(mut self) -> StepOutput {
        for block in self.blocks.into_values() {
            if let Block::Tool {
                slot,
                json,
                initial,
            } = block
                && let Some(call) = self.calls.get_mut(slot)
            {
                call.arguments = match (json.trim().is_empty(), initial.is_empty()) {
                    (false, _) => json,
                    (true, false) => initial,
                    (true, true) => String::from("{}"),
                };
            }
        }
        let stop = match self.stop_reason.as_deref() {
            Some("max_tokens") => StopReason::MaxTokens,
            _ if !self.calls.is_empty() => StopReason::ToolUse,
            Some("tool_use") => StopReason::ToolUse,
            Some("end_turn" | "stop_sequence") => StopReason::EndTurn,
            Some(other) => StopReason::Other(other.to_owned()),
            None => StopReason::Other(String::from("unknown")),
        };
        StepOutput {
            text: self.text,
            tool_calls: self.calls,
            stop,
            usage: self.usage,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `events` (each a `data:` payload) and returns the deltas and the step.
    fn decode(events: &[&str]) -> Result<(Vec<Delta>, StepOutput), ProviderError> {
        let mut decoder = StreamDecoder::default();
        let mut out = Vec::new();
        for data in events {
            let event = SseEvent {
                event: None,
                data: (*data).to_owned(),
            };
            if decoder.event(event, &mut out)? {
                return Ok((out, decoder.finish()));
            }
        }
        Err(ProviderError::retryable("no message_stop"))
    }

    #[test]
    fn thinking_is_skipped_cache_tokens_count_and_a_start_input_is_kept() {
        let (deltas, output) = decode(&[
            r#"{"type":"message_start","message":{"usage":{"input_tokens":3,"cache_read_input_tokens":100,"cache_creation_input_tokens":20,"output_tokens":1}}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t1","name":"ls","input":{"path":"/"}}}"#,
            r#"{"type":"content_block_stop","index":1}"#,
            r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"t2","name":"pwd","input":{}}}"#,
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}}"#,
            r#"{"type":"message_stop"}"#,
        ])
        .expect("decodes");
        assert_eq!(deltas.len(), 2, "two tool starts, no thinking: {deltas:?}");
        assert_eq!(output.text, "");
        assert_eq!(output.tool_calls[0].arguments, r#"{"path":"/"}"#);
        assert_eq!(output.tool_calls[1].arguments, "{}");
        assert_eq!(output.stop, StopReason::ToolUse);
        assert_eq!(
            output.usage,
            Usage {
                input_tokens: 123,
                output_tokens: 9
            }
        );
    }

    #[test]
    fn a_delta_for_an_unknown_block_is_a_protocol_error() {
        let err = decode(&[
            r#"{"type":"content_block_delta","index":4,"delta":{"type":"text_delta","text":"x"}}"#,
        ])
        .expect_err("unknown block");
        assert_eq!(err.code(), "llm_protocol");
    }

    #[test]
    fn stream_errors_map_by_type() {
        let error = |kind: &str| {
            stream_error(&json!({"type": "error", "error": {"type": kind, "message": "m"}}))
        };
        assert!(error("overloaded_error").is_retryable());
        assert!(error("api_error").is_retryable());
        assert_eq!(error("invalid_request_error").code(), "llm_bad_request");
        assert_eq!(error("authentication_error").code(), "llm_auth");
        assert_eq!(error("not_found_error").code(), "llm_not_found");
    }

    #[test]
    fn stored_arguments_that_are_not_an_object_become_an_empty_input() {
        assert_eq!(tool_input(r#"{"a":1}"#), json!({"a": 1}));
        assert_eq!(tool_input("[1,2]"), json!({}));
        assert_eq!(tool_input("{broken"), json!({}));
        assert_eq!(tool_input(""), json!({}));
    }
}
