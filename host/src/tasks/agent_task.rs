//! Agent tasks: the session's settings, the `[llm]` provider and the agent
//! profile turned into one [`crate::agent::turn::Turn`], whose events,
//! history and state go to the store through [`TaskJournal`].

use super::{Outcome, Tasks};
use crate::agent::config::ProviderKind;
use crate::agent::provider::{Message, Provider};
use crate::agent::toolbox::Toolbox;
use crate::agent::turn::{Budgets, Journal, Turn, TurnEnd, TurnState};
use crate::store::{SessionRow, TaskRow};
use crate::tasks::agents::Approval;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Most history messages given to the model.
const MAX_HISTORY: usize = 2000;

/// A task's journal: events to its log, messages to its session's history.
struct TaskJournal<'a> {
    tasks: &'a Tasks,
    task: &'a TaskRow,
    session: &'a SessionRow,
    /// The enabled skills, copied into the sandbox on its first use in the task.
    skills: Vec<crate::skills::Skill>,
    copied: tokio::sync::OnceCell<()>,
}

fn role(m: &Message) -> &'static str {
    match m {
        Message::User { .. } => "user",
        Message::Assistant { .. } => "assistant",
        Message::ToolResult { .. } => "tool_result",
    }
}

impl Journal for TaskJournal<'_> {
    async fn events(&self, events: Vec<(&'static str, Value)>) -> Result<(), String> {
        self.tasks
            .emit(&self.task.id, &events)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn append(&self, messages: &[Message]) -> Result<(), String> {
        let rows: Vec<(&str, String)> = messages
            .iter()
            .map(|m| (role(m), serde_json::to_string(m).unwrap_or_default()))
            .collect();
        self.tasks
            .store
            .append_messages(&self.session.id, Some(&self.task.id), &rows)
            .await
            .map_err(|e| e.to_string())
    }

    async fn save(&self, state: &TurnState) -> Result<(), String> {
        let text = serde_json::to_string(state).unwrap_or_else(|_| "{}".into());
        self.tasks
            .store
            .save_task_state(
                &self.task.id,
                &text,
                state.input_tokens as i64,
                state.output_tokens as i64,
            )
            .await
            .map_err(|e| e.to_string())
    }

    async fn sandbox(&self) -> Result<String, String> {
        let id = self
            .tasks
            .ensure_sandbox(self.session)
            .await
            .map_err(|e| e.to_string())?;
        self.copied
            .get_or_init(|| self.tasks.put_skills(self.task, &id, &self.skills))
            .await;
        Ok(id)
    }
}

fn failed(code: &str, message: impl Into<String>) -> Outcome {
    Outcome::Failed {
        code: code.into(),
        message: message.into(),
        result: None,
    }
}

impl Tasks {
    /// Run an agent task until it ends, waits for input, or `cancel`.
    pub(super) async fn run_agent(&self, task: &TaskRow, cancel: &CancellationToken) -> Outcome {
        let session = match self.store.session(&task.session_id).await {
            Ok(Some(s)) => s,
            Ok(None) => return failed("session_gone", "the session was deleted"),
            Err(e) => {
                return Outcome::Retry {
                    code: "store_unavailable".into(),
                    message: e.to_string(),
                };
            }
        };
        let provider_override = session
            .provider
            .as_deref()
            .and_then(|p| p.parse::<ProviderKind>().ok());
        let resolved = match self
            .llm
            .resolve(provider_override, session.model.as_deref(), |k| {
                std::env::var(k).ok()
            }) {
            Ok(r) => r,
            Err(e) => return failed("llm_not_configured", e.to_string()),
        };
        let provider = match Provider::new(&resolved) {
            Ok(p) => p,
            Err(e) => return failed(e.code(), e.to_string()),
        };
        let profile = match &session.agent_id {
            Some(id) => self.store.agent(id).await.ok().flatten(),
            None => None,
        };
        let patterns: Vec<String> = profile
            .as_ref()
            .and_then(|p| serde_json::from_str(&p.tools).ok())
            .unwrap_or_else(|| vec!["*".to_string()]);
        let approval = profile
            .as_ref()
            .map_or(Approval::Never, |p| Approval::parse(&p.approval));
        let owner = match self.store.user(&task.owner_id).await {
            Ok(u) => u,
            Err(e) => return failed("owner_gone", e.to_string()),
        };
        let caller = crate::tools::Caller {
            user_id: owner.id.clone(),
            username: owner.username.clone(),
            admin: owner.role == crate::store::Role::Admin,
        };
        let skills = self.session_skills(&session).await;
        let toolbox = Toolbox::build(
            &self.plugins,
            &self.remotes,
            &caller,
            &patterns,
            skills.clone(),
            self.skills.clone(),
            self.sandboxes.available().await,
        );
        let mut system = session.instructions.clone();
        system.push_str(&toolbox.skill_catalog());
        let mut state: TurnState = serde_json::from_str(&task.state).unwrap_or_default();
        let input = serde_json::from_str::<super::AgentInput>(&task.input)
            .map(|i| i.content)
            .unwrap_or_default();
        let mut history: Vec<Message> = match self.store.messages(&session.id, 0, 100_000).await {
            Ok(rows) => rows
                .iter()
                .filter_map(|r| serde_json::from_str(&r.body).ok())
                .collect(),
            Err(e) => {
                return Outcome::Retry {
                    code: "store_unavailable".into(),
                    message: e.to_string(),
                };
            }
        };
        if history.len() > MAX_HISTORY {
            history.drain(..history.len() - MAX_HISTORY);
            // Never start with a tool result whose call was cut off.
            while matches!(history.first(), Some(Message::ToolResult { .. })) {
                history.remove(0);
            }
        }
        let first_exchange = history.is_empty();
        let journal = TaskJournal {
            tasks: self,
            task,
            session: &session,
            skills,
            copied: tokio::sync::OnceCell::new(),
        };
        let turn = Turn {
            provider: &provider,
            model: resolved.model.clone(),
            system,
            toolbox: &toolbox,
            approval,
            budgets: Budgets {
                max_steps: resolved.max_steps,
                tokens: self.config.agent_token_budget,
                deadline: Instant::now() + Duration::from_secs(self.config.agent_max_secs.max(1)),
                max_tokens: resolved.max_tokens,
            },
            host: &self.plugins,
            caller,
            sandboxes: &self.sandboxes,
            journal: &journal,
            cancel,
        };
        let end = turn.run(&mut state, &mut history, &input).await;
        match end {
            TurnEnd::Done(result) => {
                if first_exchange {
                    self.title_with(provider, resolved.model.clone(), &session, &input, &result);
                }
                Outcome::Completed(result)
            }
            TurnEnd::Waiting(w) => Outcome::InputRequired(w),
            TurnEnd::Failed { code, message } => failed(&code, message),
            TurnEnd::Retry { code, message } => Outcome::Retry { code, message },
            TurnEnd::Canceled => Outcome::Canceled("canceled by its owner".into()),
        }
    }

    /// Ask the provider for a title after a session's first exchange
    /// (fire-and-forget: the first words of the message stay when it fails).
    fn title_with(
        &self,
        provider: Provider,
        model: String,
        session: &SessionRow,
        input: &str,
        result: &Value,
    ) {
        let store = self.store.clone();
        let hub = self.hub.clone();
        let session_id = session.id.clone();
        let fallback = super::sessions::title_from(input);
        let req = crate::agent::provider::StepRequest {
            model,
            system: "Write a short title (at most six words) for this conversation. Answer with the title only, no quotes.".into(),
            messages: vec![
                Message::User { content: input.chars().take(2000).collect() },
                Message::Assistant {
                    text: result["text"].as_str().unwrap_or_default().chars().take(2000).collect(),
                    tool_calls: Vec::new(),
                },
                Message::User { content: "Title?".into() },
            ],
            tools: Vec::new(),
            max_tokens: 32,
        };
        tokio::spawn(async move {
            let (tx, _rx) = tokio::sync::mpsc::channel(64);
            let Ok(out) = provider.step(&req, &tx).await else {
                return;
            };
            let title: String = out
                .text
                .trim()
                .trim_matches(['"', '\'', '.'])
                .chars()
                .take(120)
                .collect();
            if title.is_empty() {
                return;
            }
            if let Ok(true) = store
                .replace_session_title(&session_id, &fallback, &title)
                .await
            {
                hub.session_title(&session_id, &title);
            }
        });
    }
}
