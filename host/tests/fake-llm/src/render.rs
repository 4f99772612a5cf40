//! A [`Reply`] on the wire: OpenAI chat-completion chunks ending in `data: [DONE]`, or
//! Anthropic `event:`/`data:` pairs from `message_start` to `message_stop` (with a `ping`).

use crate::Protocol;
use crate::reply::{End, Part, Reply, pieces};
use serde_json::{Value, json};

/// What follows the last event of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    /// End the body normally.
    Close,
    /// Keep the connection open and send nothing.
    Hang,
    /// Abort the connection (no end of the chunked body).
    Abort,
}

/// The events of a stream, each a complete piece of wire text (the last may be partial).
#[derive(Debug, Clone)]
pub(crate) struct Script {
    /// Wire text, one entry per event.
    pub events: Vec<String>,
    /// What happens after them.
    pub after: After,
}

/// What the request asked for, and which request of the server's life it is.
pub(crate) struct Context<'a> {
    /// The request body.
    pub body: &'a Value,
    /// A per-server request number (for ids).
    pub number: u64,
}

/// Default usage numbers: about four bytes a token.
fn usage_of(reply: &Reply, parts: &[Part], ctx: &Context<'_>) -> (u64, u64) {
    reply.usage.unwrap_or_else(|| {
        let input = ctx.body.to_string().len() as u64 / 4 + 1;
        let output: usize = parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.len(),
                Part::ToolCall {
                    name, arguments, ..
                } => name.len() + arguments.len(),
            })
            .sum();
        (input, output as u64 / 4 + 1)
    })
}

/// The stream of `reply` for `protocol`.
pub(crate) fn stream(
    protocol: Protocol,
    reply: &Reply,
    parts: &[Part],
    end: &End,
    ctx: &Context<'_>,
) -> Script {
    match protocol {
        Protocol::OpenAi => openai(reply, parts, end, ctx),
        Protocol::Anthropic => anthropic(reply, parts, end, ctx),
    }
}

/// The error body of a status reply for `protocol`.
pub(crate) fn error_body(protocol: Protocol, code: u16, message: &str) -> String {
    match protocol {
        Protocol::OpenAi => {
            let kind = if code == 429 {
                "rate_limit_exceeded"
            } else {
                "invalid_request_error"
            };
            json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
        }
        Protocol::Anthropic => {
            let kind = match code {
                400 => "invalid_request_error",
                401 => "authentication_error",
                403 => "permission_error",
                404 => "not_found_error",
                413 => "request_too_large",
                429 => "rate_limit_error",
                529 => "overloaded_error",
                _ => "api_error",
            };
            json!({"type": "error", "error": {"type": kind, "message": message}})
        }
    }
    .to_string()
}

fn model(ctx: &Context<'_>) -> String {
    ctx.body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("fake-model")
        .to_owned()
}

fn openai(reply: &Reply, parts: &[Part], end: &End, ctx: &Context<'_>) -> Script {
    let id = format!("chatcmpl-fake-{}", ctx.number);
    let model = model(ctx);
    let chunk = |delta: Value, finish: Value| {
        let chunk = json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        format!("data: {chunk}\n\n")
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    let mut calls = 0;
    for part in parts {
        match part {
            Part::Text(text) => {
                for piece in pieces(text) {
                    events.push(chunk(json!({"content": piece}), Value::Null));
                }
            }
            Part::ToolCall {
                id,
                name,
                arguments,
            } => {
                let start = json!({"tool_calls": [{"index": calls, "id": id, "type": "function",
                    "function": {"name": name, "arguments": ""}}]});
                events.push(chunk(start, Value::Null));
                for fragment in pieces(arguments) {
                    let more = json!({"tool_calls": [{"index": calls,
                        "function": {"arguments": fragment}}]});
                    events.push(chunk(more, Value::Null));
                }
                calls += 1;
            }
        }
    }
    let after = match end {
        End::Hang => After::Hang,
        End::Drop => {
            events.push(String::from(
                "data: {\"id\":\"chatcmpl-fake\",\"choices\":[{\"ind",
            ));
            After::Abort
        }
        End::ErrorEvent(kind) => {
            let error = json!({"error": {"message": format!("fake-llm: {kind}"), "type": kind}});
            events.push(format!("data: {error}\n\n"));
            After::Close
        }
        End::Complete | End::Malformed => {
            if *end == End::Malformed {
                events.push(String::from(
                    "data: {\"choices\": [{\"delta\": {\"content\": \"x\"\n\n",
                ));
            }
            let finish = if reply.truncated {
                "length"
            } else if calls > 0 {
                "tool_calls"
            } else {
                "stop"
            };
            events.push(chunk(json!({}), json!(finish)));
            let wants_usage =
                ctx.body.pointer("/stream_options/include_usage") == Some(&json!(true));
            if wants_usage {
                let (input, output) = usage_of(reply, parts, ctx);
                let usage = json!({"id": id, "object": "chat.completion.chunk",
                    "created": 1_700_000_000, "model": model, "choices": [],
                    "usage": {"prompt_tokens": input, "completion_tokens": output,
                              "total_tokens": input + output}});
                events.push(format!("data: {usage}\n\n"));
            }
            events.push(String::from("data: [DONE]\n\n"));
            After::Close
        }
    };
    Script { events, after }
}

fn anthropic(reply: &Reply, parts: &[Part], end: &End, ctx: &Context<'_>) -> Script {
    let event = |data: Value| {
        let name = data
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned();
        format!("event: {name}\ndata: {data}\n\n")
    };
    let (input, output) = usage_of(reply, parts, ctx);
    let mut events = vec![event(json!({"type": "message_start", "message": {
        "id": format!("msg_fake_{}", ctx.number), "type": "message", "role": "assistant",
        "model": model(ctx), "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": input, "output_tokens": 1}}}))];
    let ping = event(json!({"type": "ping"}));
    if parts.is_empty() {
        events.push(ping.clone());
    }
    let mut calls = 0;
    for (index, part) in parts.iter().enumerate() {
        match part {
            Part::Text(text) => {
                events.push(event(json!({"type": "content_block_start", "index": index,
                    "content_block": {"type": "text", "text": ""}})));
                if index == 0 {
                    events.push(ping.clone());
                }
                for piece in pieces(text) {
                    events.push(event(json!({"type": "content_block_delta", "index": index,
                        "delta": {"type": "text_delta", "text": piece}})));
                }
            }
            Part::ToolCall {
                id,
                name,
                arguments,
            } => {
                events.push(event(json!({"type": "content_block_start", "index": index,
                    "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}})));
                if index == 0 {
                    events.push(ping.clone());
                }
                let fragments = std::iter::once(String::new()).chain(pieces(arguments));
                for fragment in fragments {
                    events.push(event(json!({"type": "content_block_delta", "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": fragment}})));
                }
                calls += 1;
            }
        }
        events.push(event(json!({"type": "content_block_stop", "index": index})));
    }
    let after = match end {
        End::Hang => After::Hang,
        End::Drop => {
            events.push(String::from(
                "event: content_block_delta\ndata: {\"type\":\"content_bl",
            ));
            After::Abort
        }
        End::ErrorEvent(kind) => {
            events.push(event(json!({"type": "error",
                "error": {"type": kind, "message": format!("fake-llm: {kind}")}})));
            After::Close
        }
        End::Complete | End::Malformed => {
            if *end == End::Malformed {
                events.push(String::from(
                    "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\"\n\n",
                ));
            }
            let stop = if reply.truncated {
                "max_tokens"
            } else if calls > 0 {
                "tool_use"
            } else {
                "end_turn"
            };
            events.push(event(json!({"type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": null},
                "usage": {"output_tokens": output}})));
            events.push(event(json!({"type": "message_stop"})));
            After::Close
        }
    };
    Script { events, after }
}
