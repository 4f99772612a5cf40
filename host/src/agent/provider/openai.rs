//! The OpenAI-compatible chat completions client (OpenAI, vLLM, llama.cpp, Ollama, …).
//!
//! `POST {base_url}/chat/completions` with `Authorization: Bearer KEY` (no header when no key
//! is configured), `stream: true` and `stream_options.include_usage`. The limit goes out as
//! `max_tokens`, the field every compatible server knows (OpenAI's reasoning models want
//! `max_completion_tokens`; use a compatible proxy for those). Tool-call fragments are joined
//! per `index`; the stream must end with `data: [DONE]`.

use super::http::{Decoder, Transport, secret_header, truncate};
use super::sse::SseEvent;
use super::{Delta, Message, ProviderError, StepOutput, StepRequest, StopReason, ToolCall, Usage};
use crate::agent::config::ResolvedLlm;
use reqwest::header::AUTHORIZATION;
use serde_json::{Value, json};
use std::collections::HashMap;
use tokio::sync::mpsc::Sender;

/// A client of one OpenAI-compatible endpoint.
#[derive(Debug, Clone)]
pub struct Client {
    http: Transport,
}

impl Client {
    /// Builds the client for `resolved` (its connection pool lives as long as the client).
    pub fn new(resolved: &ResolvedLlm) -> Result<Self, ProviderError> {
        let mut headers = Vec::new();
        if let Some(key) = &resolved.api_key {
            headers.push((AUTHORIZATION, secret_header(key, "Bearer ")?));
        }
        let http = Transport::new(
            resolved,
            "/chat/completions",
            headers,
            "openai",
            "data: [DONE]",
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

/// The JSON body of a streamed chat completion.
pub(crate) fn request_body(req: &StepRequest) -> Value {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if !req.system.is_empty() {
        messages.push(json!({"role": "system", "content": req.system}));
    }
    for message in &req.messages {
        messages.push(match message {
            Message::User { content } => json!({"role": "user", "content": content}),
            Message::Assistant { text, tool_calls } => {
                let mut m = json!({"role": "assistant"});
                m["content"] = if text.is_empty() && !tool_calls.is_empty() {
                    Value::Null
                } else {
                    Value::String(text.clone())
                };
                if !tool_calls.is_empty() {
                    m["tool_calls"] = tool_calls
                        .iter()
                        .map(|c| {
                            json!({"id": c.id, "type": "function",
                                   "function": {"name": c.name, "arguments": c.arguments}})
                        })
                        .collect();
                }
                m
            }
            Message::ToolResult {
                call_id, content, ..
            } => json!({"role": "tool", "tool_call_id": call_id, "content": content}),
        });
    }
    let mut body = json!({
        "model": req.model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
        "max_tokens": req.max_tokens,
    });
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.input_schema}})
            })
            .collect();
    }
    body
}

/// A tool call being assembled from its fragments.
#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
    started: bool,
}

/// The state of one response stream.
#[derive(Debug, Default)]
struct StreamDecoder {
    text: String,
    calls: Vec<PartialCall>,
    by_index: HashMap<u64, usize>,
    finish_reason: Option<String>,
    usage: Usage,
}

impl StreamDecoder {
    /// Handles one `delta.tool_calls[]` entry.
    fn tool_call(&mut self, position: usize, fragment: &Value, out: &mut Vec<Delta>) {
        let index = fragment
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or(position as u64);
        let slot = *self.by_index.entry(index).or_insert_with(|| {
            self.calls.push(PartialCall::default());
            self.calls.len() - 1
        });
        let call = &mut self.calls[slot];
        if let Some(id) = fragment.get("id").and_then(Value::as_str)
            && call.id.is_empty()
        {
            call.id = id.to_owned();
        }
        let function = fragment.get("function");
        if let Some(name) = function.and_then(|f| f.get("name")).and_then(Value::as_str)
            && !call.started
        {
            call.name.push_str(name);
        }
        if let Some(arguments) = function
            .and_then(|f| f.get("arguments"))
            .and_then(Value::as_str)
        {
            call.arguments.push_str(arguments);
        }
        if !call.started && !call.name.is_empty() {
            call.started = true;
            if call.id.is_empty() {
                call.id = format!("call_{index}");
            }
            out.push(Delta::ToolCallStart {
                index: slot,
                id: call.id.clone(),
                name: call.name.clone(),
            });
        }
    }
}

/// The number at `key` of a usage object.
fn count(usage: &Value, key: &str) -> u64 {
    usage.get(key).and_then(Value::as_u64).unwrap_or(0)
}

impl Decoder for StreamDecoder {
    fn event(&mut self, event: SseEvent, out: &mut Vec<Delta>) -> Result<bool, ProviderError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            return Ok(true);
        }
        let chunk: Value = serde_json::from_str(data).map_err(|e| {
            ProviderError::protocol(format!(
                "the openai stream sent a chunk that is not JSON ({e}): {}",
                truncate(data, 200)
            ))
        })?;
        if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| truncate(&error.to_string(), 500), |m| truncate(m, 500));
            return Err(ProviderError::retryable(format!(
                "the openai stream ended with an error: {message}"
            )));
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Usage {
                input_tokens: count(usage, "prompt_tokens"),
                output_tokens: count(usage, "completion_tokens"),
            };
        }
        let choices = chunk.get("choices").and_then(Value::as_array);
        let first = choices.and_then(|c| {
            c.iter()
                .find(|choice| choice.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)
        });
        let Some(choice) = first else {
            return Ok(false);
        };
        let delta = choice.get("delta");
        if let Some(text) = delta.and_then(|d| d.get("content")).and_then(Value::as_str)
            && !text.is_empty()
        {
            self.text.push_str(text);
            out.push(Delta::Text(text.to_owned()));
        }
        if let Some(calls) = delta
            .and_then(|d| d.get("tool_calls"))
            .and_then(Value::as_array)
        {
            for (position, fragment) in calls.iter().enumerate() {
                self.tool_call(position, fragment, out);
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_owned());
        }
        Ok(false)
    }

    fn finish(self) -> StepOutput {
        let tool_calls: Vec<ToolCall> = self
            .calls
            .into_iter()
            .map(|c| ToolCall {
                id: c.id,
                name: c.name,
                arguments: c.arguments,
            })
            .collect();
        let stop = match self.finish_reason.as_deref() {
            Some("length") => StopReason::MaxTokens,
            _ if !tool_calls.is_empty() => StopReason::ToolUse,
            Some("tool_calls" | "function_call") => StopReason::ToolUse,
            Some("stop") => StopReason::EndTurn,
            Some(other) => StopReason::Other(other.to_owned()),
            None => StopReason::Other(String::from("unknown")),
        };
        StepOutput {
            text: self.text,
            tool_calls,
            stop,
            usage: self.usage,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` (each a `data:` payload) and returns the deltas and the step.
    fn decode(chunks: &[&str]) -> Result<(Vec<Delta>, StepOutput), ProviderError> {
        let mut decoder = StreamDecoder::default();
        let mut out = Vec::new();
        for data in chunks {
            let event = SseEvent {
                event: None,
                data: (*data).to_owned(),
            };
            if decoder.event(event, &mut out)? {
                return Ok((out, decoder.finish()));
            }
        }
        Err(ProviderError::retryable("no [DONE]"))
    }

    #[test]
    fn a_call_without_an_id_gets_one_and_stop_with_calls_is_tool_use() {
        let (deltas, output) = decode(&[
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"ls","arguments":"{\"a\""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2}}"#,
            "[DONE]",
        ])
        .expect("decodes");
        assert_eq!(
            deltas,
            [Delta::ToolCallStart {
                index: 0,
                id: "call_0".into(),
                name: "ls".into()
            }]
        );
        assert_eq!(output.tool_calls[0].arguments, r#"{"a":1}"#);
        assert_eq!(output.stop, StopReason::ToolUse);
        assert_eq!(
            output.usage,
            Usage {
                input_tokens: 5,
                output_tokens: 2
            }
        );
    }

    #[test]
    fn other_choices_and_null_fields_are_ignored() {
        let (deltas, output) = decode(&[
            r#"{"choices":[{"index":1,"delta":{"content":"other"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":null,"reasoning_content":"hm"}}],"usage":null}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"content_filter"}]}"#,
            "[DONE]",
        ])
        .expect("decodes");
        assert_eq!(deltas, [Delta::Text("hi".into())]);
        assert_eq!(output.stop, StopReason::Other("content_filter".into()));
        assert_eq!(output.usage, Usage::default());
    }

    #[test]
    fn an_error_chunk_is_retryable_and_garbage_is_a_protocol_error() {
        let err = decode(&[r#"{"error":{"message":"upstream overloaded"}}"#]).expect_err("error");
        assert!(err.is_retryable());
        assert!(err.to_string().contains("upstream overloaded"), "{err}");
        let err = decode(&["{\"choices\": ["]).expect_err("garbage");
        assert_eq!(err.code(), "llm_protocol");
    }
}
