//! The agent: a language model that works through the host's tools.
//!
//! This module owns the clients of the LLM providers ([`provider`]: OpenAI-compatible chat
//! completions and Anthropic Messages, streamed, with retries and timeouts) and their settings
//! ([`config`]: the `[llm]` table of `switchyard.toml` and its `SWITCHYARD_LLM_*` overrides).
//! [`turn`] is the loop that drives a model step by step over [`toolbox`]: the
//! plugin tools, the session's sandbox, skills and `ask_user`.

pub mod config;
pub mod provider;
pub mod toolbox;
pub mod turn;
