//! The agent loop: one task's turn, step by step, until the model answers
//! without calling a tool, asks the user something, needs an approval, or a
//! budget runs out.
//!
//! Every step is persisted before the next begins: the model's message (text
//! and tool calls) is appended to the session's history, then each tool result
//! as it arrives, and the [`TurnState`] notes the call in flight. So a turn
//! interrupted anywhere — a provider failure, a cancel, a host killed — resumes
//! from its last completed step, and a call that was in flight when the host
//! died is reported to the model as interrupted instead of being run again.
//! Where the turn's events and history go is the caller's business
//! ([`Journal`]).

use super::provider::{Delta, Message, Provider, StepRequest, ToolCall};
use super::toolbox::{CallResult, Kind, Toolbox, call_sandbox};
use crate::plugins::live::PluginHost;
use crate::sandbox::Sandboxes;
use crate::tasks::agents::Approval;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The same call (tool and arguments) allowed this many times in a row.
const MAX_REPEATS: usize = 3;

/// Where a turn records what happens.
pub trait Journal: Sync {
    /// Commit events to the task's log, then publish them.
    fn events(
        &self,
        events: Vec<(&'static str, Value)>,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// Append messages to the session's history (committed).
    fn append(&self, messages: &[Message]) -> impl Future<Output = Result<(), String>> + Send;
    /// Save the turn's state and usage.
    fn save(&self, state: &TurnState) -> impl Future<Output = Result<(), String>> + Send;
    /// The session's sandbox, created on first need.
    fn sandbox(&self) -> impl Future<Output = Result<String, String>> + Send;
}

/// The answer a person gave to a waiting turn.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Answer {
    /// Their text (the answer, or a denial's reason).
    #[serde(default)]
    pub content: String,
    /// For an approval: yes or no.
    #[serde(default)]
    pub approve: Option<bool>,
}

/// What a turn keeps between runs (the task's `state`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TurnState {
    /// Model steps taken.
    #[serde(default)]
    pub steps: u32,
    /// The task's input is in the history.
    #[serde(default)]
    pub input_added: bool,
    /// Prompt tokens used.
    #[serde(default)]
    pub input_tokens: u64,
    /// Completion tokens used.
    #[serde(default)]
    pub output_tokens: u64,
    /// The tool call running now (its result is not in the history yet).
    #[serde(default)]
    pub running_call: Option<String>,
    /// The last calls' `name + arguments`, to spot a model repeating itself.
    #[serde(default)]
    pub recent: Vec<String>,
    /// What the task waits for (set while `input_required`).
    #[serde(default)]
    pub waiting_for: Option<Value>,
    /// The answer that resumed it.
    #[serde(default)]
    pub answer: Option<Answer>,
}

/// How a run of the turn ended.
#[derive(Debug)]
pub enum TurnEnd {
    /// The model answered: the result.
    Done(Value),
    /// Waiting for a person: what is asked.
    Waiting(Value),
    /// Failed for a reason retrying will not fix.
    Failed {
        /// A stable code.
        code: String,
        /// What happened.
        message: String,
    },
    /// The provider (or the store) failed in a way worth retrying.
    Retry {
        /// A stable code.
        code: String,
        /// What happened.
        message: String,
    },
    /// Stopped on request.
    Canceled,
}

/// Limits of one turn.
#[derive(Debug, Clone, Copy)]
pub struct Budgets {
    /// Model steps.
    pub max_steps: u32,
    /// Tokens (prompt + completion) over the whole turn.
    pub tokens: u64,
    /// When the turn must end.
    pub deadline: Instant,
    /// Completion tokens per step.
    pub max_tokens: u32,
}

/// One agent turn's parts.
pub struct Turn<'a, J: Journal> {
    /// The model's client.
    pub provider: &'a Provider,
    /// The model.
    pub model: String,
    /// The system prompt (instructions and skill catalog).
    pub system: String,
    /// What the model may call.
    pub toolbox: &'a Toolbox,
    /// Which calls wait for a yes.
    pub approval: Approval,
    /// Budgets.
    pub budgets: Budgets,
    /// Plugins.
    pub host: &'a PluginHost,
    /// Whom plugin tools run for.
    pub caller: crate::tools::Caller,
    /// Sandboxes.
    pub sandboxes: &'a Arc<Sandboxes>,
    /// Where it all goes.
    pub journal: &'a J,
    /// Stops the turn.
    pub cancel: &'a CancellationToken,
}

fn store_failed(e: String) -> TurnEnd {
    TurnEnd::Retry {
        code: "store_unavailable".into(),
        message: e,
    }
}

/// The results the last assistant message of `history` still lacks.
fn unanswered(history: &[Message]) -> Vec<ToolCall> {
    let Some(at) = history
        .iter()
        .rposition(|m| matches!(m, Message::Assistant { .. }))
    else {
        return Vec::new();
    };
    let Message::Assistant { tool_calls, .. } = &history[at] else {
        return Vec::new();
    };
    tool_calls
        .iter()
        .filter(|c| {
            !history[at + 1..]
                .iter()
                .any(|m| matches!(m, Message::ToolResult { call_id, .. } if call_id == &c.id))
        })
        .cloned()
        .collect()
}

fn arguments_json(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
}

impl<J: Journal> Turn<'_, J> {
    /// Run the turn for `input` over `history` (the session's, loaded by the
    /// caller; appended to as the turn goes).
    pub async fn run(
        &self,
        state: &mut TurnState,
        history: &mut Vec<Message>,
        input: &str,
    ) -> TurnEnd {
        if !state.input_added {
            // An earlier turn cut short may have left calls without results.
            let stale: Vec<Message> = unanswered(history)
                .into_iter()
                .map(|c| Message::ToolResult {
                    call_id: c.id,
                    name: c.name,
                    content: "this call did not finish (its task ended first)".into(),
                    is_error: true,
                })
                .collect();
            let mut add = stale;
            add.push(Message::User {
                content: input.to_string(),
            });
            if let Err(e) = self.journal.append(&add).await {
                return store_failed(e);
            }
            history.extend(add);
            state.input_added = true;
            state.running_call = None;
            if let Err(e) = self.journal.save(state).await {
                return store_failed(e);
            }
        }
        if let Some(end) = self.resume(state, history).await {
            return end;
        }
        loop {
            if self.cancel.is_cancelled() {
                return TurnEnd::Canceled;
            }
            let b = self.budgets;
            if state.steps >= b.max_steps {
                return TurnEnd::Failed {
                    code: "step_limit".into(),
                    message: format!(
                        "the agent took {} steps without finishing ([llm] max_steps)",
                        b.max_steps
                    ),
                };
            }
            if Instant::now() >= b.deadline {
                return TurnEnd::Failed {
                    code: "time_limit".into(),
                    message: "the agent ran past its time limit ([tasks] agent_max_secs)".into(),
                };
            }
            if state.input_tokens + state.output_tokens >= b.tokens {
                return TurnEnd::Failed {
                    code: "token_budget".into(),
                    message: format!(
                        "the agent used its {} tokens ([tasks] agent_token_budget)",
                        b.tokens
                    ),
                };
            }
            let output = match self.step(state, history).await {
                Ok(o) => o,
                Err(end) => return end,
            };
            let assistant = Message::Assistant {
                text: output.text.clone(),
                tool_calls: output.tool_calls.clone(),
            };
            if let Err(e) = self.journal.append(std::slice::from_ref(&assistant)).await {
                return store_failed(e);
            }
            history.push(assistant);
            state.steps += 1;
            if let Err(e) = self.journal.save(state).await {
                return store_failed(e);
            }
            if output.tool_calls.is_empty() {
                return TurnEnd::Done(json!({
                    "text": output.text,
                    "steps": state.steps,
                    "usage": { "input_tokens": state.input_tokens, "output_tokens": state.output_tokens },
                }));
            }
            if let Some(end) = self.calls(state, history, output.tool_calls).await {
                return end;
            }
        }
    }

    /// Continue after an answer, or after a host restart: the call that was
    /// in flight is reported as interrupted, calls not started yet are made.
    async fn resume(&self, state: &mut TurnState, history: &mut Vec<Message>) -> Option<TurnEnd> {
        let mut pending = unanswered(history);
        if pending.is_empty() {
            state.waiting_for = None;
            state.answer = None;
            return None;
        }
        if let (Some(waiting), Some(answer)) = (state.waiting_for.take(), state.answer.take()) {
            let call_id = waiting["call_id"].as_str().unwrap_or_default().to_string();
            if let Some(pos) = pending.iter().position(|c| c.id == call_id) {
                let call = pending.remove(pos);
                let result = match waiting["type"].as_str() {
                    Some("approval") if answer.approve == Some(true) => {
                        self.execute(state, &call).await
                    }
                    Some("approval") => CallResult::error(format!(
                        "the user denied this call{}",
                        if answer.content.trim().is_empty() {
                            String::new()
                        } else {
                            format!(": {}", answer.content.trim())
                        }
                    )),
                    _ => CallResult {
                        content: answer.content.clone(),
                        is_error: false,
                    },
                };
                if self.cancel.is_cancelled() {
                    return Some(TurnEnd::Canceled);
                }
                if let Err(e) = self.record(state, history, &call, result, false).await {
                    return Some(store_failed(e));
                }
            }
        }
        if let Some(running) = state.running_call.take()
            && let Some(pos) = pending.iter().position(|c| c.id == running)
        {
            let call = pending.remove(pos);
            let result = CallResult::error(
                "interrupted: the host stopped while this call ran, and it was not run again; check its effects before repeating it",
            );
            if let Err(e) = self.record(state, history, &call, result, true).await {
                return Some(store_failed(e));
            }
        }
        self.calls_in_order(state, history, pending).await
    }

    /// One model step, its text streamed as `text` events.
    async fn step(
        &self,
        state: &mut TurnState,
        history: &[Message],
    ) -> Result<super::provider::StepOutput, TurnEnd> {
        let req = StepRequest {
            model: self.model.clone(),
            system: self.system.clone(),
            messages: history.to_vec(),
            tools: self.toolbox.defs().to_vec(),
            max_tokens: self.budgets.max_tokens,
        };
        let (tx, mut rx) = mpsc::channel::<Delta>(256);
        let kind = self.provider.kind();
        let started = Instant::now();
        let step = self.provider.step(&req, &tx);
        tokio::pin!(step);
        let mut streamed = false;
        let result = loop {
            tokio::select! {
                r = &mut step => break r,
                Some(first) = rx.recv() => {
                    let mut text = String::new();
                    let mut next = Some(first);
                    while let Some(d) = next.take() {
                        if let Delta::Text(t) = d {
                            text.push_str(&t);
                        }
                        next = rx.try_recv().ok();
                    }
                    if !text.is_empty() {
                        streamed = true;
                        let _ = self.journal.events(vec![("text", json!({ "delta": text, "step": state.steps + 1 }))]).await;
                    }
                }
                () = self.cancel.cancelled() => return Err(TurnEnd::Canceled),
            }
        };
        // What was still in the channel when the step ended.
        let mut text = String::new();
        while let Ok(d) = rx.try_recv() {
            if let Delta::Text(t) = d {
                text.push_str(&t);
            }
        }
        if !text.is_empty() {
            streamed = true;
            let _ = self
                .journal
                .events(vec![(
                    "text",
                    json!({ "delta": text, "step": state.steps + 1 }),
                )])
                .await;
        }
        metrics::histogram!("switchyard_llm_request_seconds", "provider" => kind)
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(out) => {
                metrics::counter!("switchyard_llm_requests_total", "provider" => kind, "outcome" => "ok").increment(1);
                metrics::counter!("switchyard_llm_tokens_total", "provider" => kind, "kind" => "input").increment(out.usage.input_tokens);
                metrics::counter!("switchyard_llm_tokens_total", "provider" => kind, "kind" => "output").increment(out.usage.output_tokens);
                state.input_tokens += out.usage.input_tokens;
                state.output_tokens += out.usage.output_tokens;
                Ok(out)
            }
            Err(e) => {
                metrics::counter!("switchyard_llm_requests_total", "provider" => kind, "outcome" => e.code()).increment(1);
                if e.is_retryable() {
                    if streamed {
                        let _ = self.journal.events(vec![("log", json!({
                            "message": format!("the provider failed mid-step ({e}); the step is retried and its text so far is discarded"),
                            "discard_step": state.steps + 1,
                        }))]).await;
                    }
                    Err(TurnEnd::Retry {
                        code: e.code().into(),
                        message: e.to_string(),
                    })
                } else {
                    Err(TurnEnd::Failed {
                        code: e.code().into(),
                        message: e.to_string(),
                    })
                }
            }
        }
    }

    /// Make a step's calls: plain ones first, then at most one that waits for a person.
    async fn calls(
        &self,
        state: &mut TurnState,
        history: &mut Vec<Message>,
        calls: Vec<ToolCall>,
    ) -> Option<TurnEnd> {
        for call in &calls {
            let _ = self
                .journal
                .events(vec![("tool_call", json!({ "id": call.id, "name": call.name, "arguments": arguments_json(&call.arguments) }))])
                .await;
        }
        self.calls_in_order(state, history, calls).await
    }

    fn pauses(&self, call: &ToolCall) -> bool {
        match self.toolbox.kind(&call.name) {
            Some(Kind::AskUser) => true,
            Some(kind) => match self.approval {
                Approval::Always => true,
                Approval::Destructive => kind.destructive(),
                Approval::Never => false,
            },
            None => false,
        }
    }

    async fn calls_in_order(
        &self,
        state: &mut TurnState,
        history: &mut Vec<Message>,
        calls: Vec<ToolCall>,
    ) -> Option<TurnEnd> {
        let (pausing, plain): (Vec<_>, Vec<_>) = calls.into_iter().partition(|c| self.pauses(c));
        for call in plain {
            if self.cancel.is_cancelled() {
                return Some(TurnEnd::Canceled);
            }
            let result = self.execute(state, &call).await;
            if self.cancel.is_cancelled() {
                let _ = self
                    .record(
                        state,
                        history,
                        &call,
                        CallResult::error("canceled by the user"),
                        false,
                    )
                    .await;
                return Some(TurnEnd::Canceled);
            }
            if let Err(e) = self.record(state, history, &call, result, false).await {
                return Some(store_failed(e));
            }
        }
        let call = pausing.into_iter().next()?;
        let waiting = match self.toolbox.kind(&call.name) {
            Some(Kind::AskUser) => {
                let question = serde_json::from_str::<Value>(&call.arguments)
                    .ok()
                    .and_then(|v| v["question"].as_str().map(str::to_string))
                    .unwrap_or_else(|| call.arguments.clone());
                json!({ "type": "question", "call_id": call.id, "question": question })
            }
            _ => {
                json!({ "type": "approval", "call_id": call.id, "tool": call.name, "arguments": arguments_json(&call.arguments) })
            }
        };
        state.waiting_for = Some(waiting.clone());
        if let Err(e) = self.journal.save(state).await {
            return Some(store_failed(e));
        }
        Some(TurnEnd::Waiting(waiting))
    }

    /// Run one call (marked in flight while it runs).
    async fn execute(&self, state: &mut TurnState, call: &ToolCall) -> CallResult {
        let Some(kind) = self.toolbox.kind(&call.name).cloned() else {
            return CallResult::error(format!(
                "there is no tool `{}`; the tools are: {}",
                call.name,
                self.toolbox.names()
            ));
        };
        match serde_json::from_str::<Value>(&call.arguments) {
            Ok(Value::Object(_)) => {}
            Ok(_) => return CallResult::error("the arguments must be a JSON object"),
            Err(e) => return CallResult::error(format!("the arguments are not valid JSON: {e}")),
        }
        let signature = format!("{}\u{0}{}", call.name, call.arguments);
        let repeats = state
            .recent
            .iter()
            .rev()
            .take_while(|s| **s == signature)
            .count();
        state.recent.push(signature);
        if state.recent.len() > 16 {
            state.recent.remove(0);
        }
        if repeats + 1 >= MAX_REPEATS {
            return CallResult::error(format!(
                "you made this same call {MAX_REPEATS} times in a row; its result will not change: try something else or answer"
            ));
        }
        state.running_call = Some(call.id.clone());
        if let Err(e) = self.journal.save(state).await {
            return CallResult::error(format!("the call could not be recorded: {e}"));
        }
        let started = Instant::now();
        let run = async {
            match &kind {
                Kind::Sandbox(name) => match self.journal.sandbox().await {
                    Ok(id) => {
                        let owner = crate::sandbox::Caller {
                            user_id: self.caller.user_id.clone(),
                            admin: false,
                        };
                        call_sandbox(self.sandboxes, &owner, &id, name, &call.arguments).await
                    }
                    Err(e) => CallResult::error(format!("no sandbox for this session: {e}")),
                },
                other => {
                    self.toolbox
                        .call_plugin(self.host, &self.caller, other, &call.arguments, self.cancel)
                        .await
                }
            }
        };
        let result = tokio::select! {
            r = run => r,
            () = self.cancel.cancelled() => CallResult::error("canceled by the user"),
        };
        metrics::histogram!("switchyard_agent_tool_seconds")
            .record(started.elapsed().as_secs_f64());
        result
    }

    /// Record a call's result: a `tool_result` event and the history.
    async fn record(
        &self,
        state: &mut TurnState,
        history: &mut Vec<Message>,
        call: &ToolCall,
        result: CallResult,
        interrupted: bool,
    ) -> Result<(), String> {
        let mut data = json!({ "id": call.id, "name": call.name, "is_error": result.is_error, "content": result.content });
        if interrupted {
            data["interrupted"] = true.into();
        }
        self.journal.events(vec![("tool_result", data)]).await?;
        let message = Message::ToolResult {
            call_id: call.id.clone(),
            name: call.name.clone(),
            content: result.content,
            is_error: result.is_error,
        };
        self.journal.append(std::slice::from_ref(&message)).await?;
        history.push(message);
        state.running_call = None;
        self.journal.save(state).await
    }
}
