//! Provider clients: one model step (a streamed completion) against an LLM provider.
//!
//! The types here are provider-neutral: a conversation is a list of [`Message`]s (the lead
//! persists them as a session's history), the model may call [`ToolDef`]s, and one
//! [`Provider::step`] streams [`Delta`]s to the caller while it collects the [`StepOutput`].
//! `openai` speaks OpenAI-compatible chat completions, `anthropic` speaks Anthropic Messages;
//! `http` holds what both share (the client, retries with backoff, idle timeouts, error
//! classification) and `sse` parses the event streams.
//!
//! Cancellation is by dropping the future returned by [`Provider::step`]: the response (and
//! with it the connection) is dropped, and nothing else is left running.

pub mod anthropic;
mod http;
pub mod openai;
mod sse;

#[cfg(test)]
mod tests;

use crate::agent::config::ResolvedLlm;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::sync::mpsc::Sender;

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    /// What the user (or the task) said.
    User {
        /// The text.
        content: String,
    },
    /// What the model answered: text, tool calls, or both.
    Assistant {
        /// The text (may be empty).
        text: String,
        /// The tools it called, in order.
        #[serde(default)]
        tool_calls: Vec<ToolCall>,
    },
    /// The result of one tool call, sent back to the model.
    ToolResult {
        /// The [`ToolCall::id`] this answers.
        call_id: String,
        /// The tool's name.
        name: String,
        /// The result text.
        content: String,
        /// Whether the call failed.
        #[serde(default)]
        is_error: bool,
    },
}

/// A tool call the model made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id of the call (tool results refer to it).
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments as the model sent them: JSON text, possibly invalid.
    pub arguments: String,
}

/// A tool offered to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDef {
    /// The name (OpenAI requires `^[a-zA-Z0-9_-]{1,64}$`).
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// The JSON Schema of its arguments (an object schema).
    pub input_schema: serde_json::Value,
}

/// One model step: the whole conversation so far.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRequest {
    /// The model name.
    pub model: String,
    /// The system prompt (not sent when empty).
    pub system: String,
    /// The conversation, oldest first.
    pub messages: Vec<Message>,
    /// The tools the model may call (not sent when empty).
    pub tools: Vec<ToolDef>,
    /// Most tokens the model may write in this step.
    pub max_tokens: u32,
}

/// A piece of a step, streamed while it is being written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delta {
    /// More answer text.
    Text(String),
    /// The model began a tool call; `index` is its position in [`StepOutput::tool_calls`].
    ToolCallStart {
        /// Position of the call in the step's tool calls.
        index: usize,
        /// The call's id.
        id: String,
        /// The tool's name.
        name: String,
    },
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// It finished its answer.
    EndTurn,
    /// It wants tool results (also reported whenever the step holds tool calls).
    ToolUse,
    /// It hit `max_tokens`.
    MaxTokens,
    /// Anything else, as the provider named it (`content_filter`, `refusal`, …).
    Other(String),
}

/// Tokens counted by the provider for one step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens (for Anthropic including cache reads and writes).
    pub input_tokens: u64,
    /// Tokens the model wrote.
    pub output_tokens: u64,
}

/// A complete step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutput {
    /// The whole answer text (every [`Delta::Text`] joined).
    pub text: String,
    /// The tool calls, in order.
    pub tool_calls: Vec<ToolCall>,
    /// Why the model stopped.
    pub stop: StopReason,
    /// The provider's token counts (zero when it sent none).
    pub usage: Usage,
}

/// Why a step failed. No message ever holds the API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// A transient failure (429, 5xx, 529, a network error, a stream cut off): the step may be
    /// tried again, after `retry_after` when the provider said so.
    #[error("{message}")]
    Retryable {
        /// What happened, with the provider's message when it sent one.
        message: String,
        /// The provider's `retry-after`, capped at 60 s.
        retry_after: Option<Duration>,
    },
    /// A failure that trying again will not fix.
    #[error("{message}")]
    Fatal {
        /// `llm_auth` (401/403), `llm_bad_request` (400 and other 4xx), `llm_not_found` (404),
        /// `llm_protocol` (a stream that is not what the protocol says), `llm_config`.
        code: &'static str,
        /// What happened, with the provider's message (at most ~500 characters of it).
        message: String,
    },
    /// The provider sent nothing (no headers, or no next chunk) for `[llm] timeout_secs`.
    #[error("the LLM provider sent nothing within the timeout ([llm] timeout_secs)")]
    Timeout,
}

impl ProviderError {
    /// Whether trying the step again may succeed ([`Self::Retryable`] and [`Self::Timeout`]).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable { .. } | Self::Timeout)
    }

    /// A stable code for events and API errors: the [`Self::Fatal`] code, `llm_unavailable`
    /// or `llm_timeout`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Retryable { .. } => "llm_unavailable",
            Self::Fatal { code, .. } => code,
            Self::Timeout => "llm_timeout",
        }
    }

    /// How long the provider asked to wait before the next try, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Retryable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A retryable error without a `retry-after`.
    pub(crate) fn retryable(message: impl Into<String>) -> Self {
        Self::Retryable {
            message: message.into(),
            retry_after: None,
        }
    }

    /// A protocol violation by the server.
    pub(crate) fn protocol(message: impl Into<String>) -> Self {
        Self::Fatal {
            code: "llm_protocol",
            message: message.into(),
        }
    }
}

/// A client of the configured provider.
#[derive(Debug, Clone)]
pub enum Provider {
    /// OpenAI-compatible chat completions.
    OpenAi(openai::Client),
    /// Anthropic Messages.
    Anthropic(anthropic::Client),
}

impl Provider {
    /// Builds the client (one connection pool) for `resolved`.
    pub fn new(resolved: &ResolvedLlm) -> Result<Self, ProviderError> {
        use crate::agent::config::ProviderKind;
        Ok(match resolved.kind {
            ProviderKind::OpenAi => Self::OpenAi(openai::Client::new(resolved)?),
            ProviderKind::Anthropic => Self::Anthropic(anthropic::Client::new(resolved)?),
        })
    }

    /// `"openai"` or `"anthropic"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::OpenAi(_) => "openai",
            Self::Anthropic(_) => "anthropic",
        }
    }

    /// Runs one step: streams its pieces into `deltas` and returns it whole. Failures before
    /// anything was streamed are retried (`[llm] max_retries`); after that they are returned.
    /// A closed `deltas` receiver does not stop the step.
    pub async fn step(
        &self,
        req: &StepRequest,
        deltas: &Sender<Delta>,
    ) -> Result<StepOutput, ProviderError> {
        match self {
            Self::OpenAi(client) => client.step(req, deltas).await,
            Self::Anthropic(client) => client.step(req, deltas).await,
        }
    }
}
