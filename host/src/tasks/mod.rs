//! Sessions and tasks: the orchestration core.
//!
//! A task is one piece of work in a session — an `exec` command in the
//! session's sandbox or an `agent` turn — kept in the store's durable queue
//! (`pending → running → input_required → completed | failed | canceled`). The
//! [`dispatcher`] claims tasks under leases it renews while they run, honours
//! global, per-user and per-session limits, retries infrastructure failures
//! with backoff and recovers the tasks of a host that died. Every step is an
//! event committed to the task's log before followers hear of it
//! ([`events`]). [`sessions`] owns sessions, their history and sandbox, and
//! agent profiles; [`exec`] runs commands. The faces (`api`, `mcp`) only
//! create, follow and cancel.

mod agent_task;
pub mod agents;
pub mod config;
mod dispatcher;
pub mod events;
mod exec;
mod inbound;
pub use inbound::{Accepted, Inbound};
mod output;
pub mod sessions;
mod view;
mod workspace;

pub use crate::sandbox::Caller;
pub use config::TasksConfig;
pub use events::{Event, Follow, FollowError, Hub, SessionNotice};
pub use view::{ErrorInfo, Task, Usage};
pub use workspace::SKILLS_DIR;

use crate::plugins::live::PluginHost;
use crate::sandbox::Sandboxes;
use crate::store::{
    EventRow, Finish, Page, Store, StoreError, TaskFilter, TaskKind, TaskRow, TaskStatus, new_id,
    now_ms,
};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Why a task or session operation failed (each maps to one HTTP status).
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// No such task or session for this caller (404).
    #[error("{0}")]
    NotFound(String),
    /// Malformed input (400).
    #[error("{0}")]
    Invalid(String),
    /// Settings above the caller's maxima (403).
    #[error("{0}")]
    Forbidden(String),
    /// The task is finished, or the session's policy refuses a second task (409).
    #[error("{0}")]
    Conflict(String),
    /// Too many queued tasks (429).
    #[error("{message}")]
    TooMany {
        /// What to do.
        message: String,
        /// Seconds to wait.
        retry_after: u64,
    },
    /// Input larger than allowed (413).
    #[error("{0}")]
    TooLarge(String),
    /// The store failed (500).
    #[error("{0}")]
    Failed(String),
}

impl From<StoreError> for TaskError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound("not found".into()),
            StoreError::Conflict(what) => Self::Conflict(format!("{what} already exists")),
            other => Self::Failed(other.to_string()),
        }
    }
}

/// Where a task came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The REST API.
    Rest,
    /// The WebSocket.
    Ws,
    /// An MCP client.
    Mcp,
    /// A channel plugin's webhook.
    Webhook,
    /// A schedule.
    Schedule,
}

impl Origin {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rest => "rest",
            Self::Ws => "ws",
            Self::Mcp => "mcp",
            Self::Webhook => "webhook",
            Self::Schedule => "schedule",
        }
    }
}

/// What `create` takes.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    /// `exec` (a command in the session's sandbox) or `agent` (a model turn).
    pub kind: TaskKind,
    /// The session to run in; a new one when absent.
    #[schema(max_length = 64)]
    pub session_id: Option<String>,
    /// Exec: `{"command": "…"}` or `{"argv": [...]}` with optional `stdin`,
    /// `timeout_secs`, `workdir`, `env`. Agent: `{"content": "…"}`.
    #[schema(value_type = Object)]
    pub input: serde_json::Value,
}

/// The input of an agent task.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentInput {
    /// The user's message.
    pub content: String,
}

/// How a run ended, as the runner reports it.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Done with a result.
    Completed(serde_json::Value),
    /// Done with an error that retrying will not fix.
    Failed {
        code: String,
        message: String,
        result: Option<serde_json::Value>,
    },
    /// Stopped on request (why).
    Canceled(String),
    /// An infrastructure failure: retry after a backoff.
    Retry { code: String, message: String },
    /// Waiting for the session's next message.
    InputRequired(serde_json::Value),
}

/// The tasks service.
pub struct Tasks {
    store: Store,
    sandboxes: Arc<Sandboxes>,
    plugins: Arc<PluginHost>,
    /// External MCP servers (the agent's tools beside the plugins').
    remotes: Arc<crate::remote::Remotes>,
    config: TasksConfig,
    /// The `[llm]` settings.
    llm: crate::agent::config::LlmConfig,
    /// Every skill source.
    skills: Arc<crate::skills::Skills>,
    hub: Arc<Hub>,
    /// This process's lease-holder name.
    holder: String,
    wake: Notify,
    /// Counts the tasks that ended (the channel outbox and the scheduler watch it).
    finished: tokio::sync::watch::Sender<u64>,
    /// Tasks this process runs, with the token that stops each.
    running: Mutex<HashMap<String, CancellationToken>>,
    /// The sessions channel conversations are bound to, read recently.
    conversations: crate::store::Recent<(String, String), crate::store::SessionRow>,
}

impl Tasks {
    /// The service; [`Tasks::start`] starts its dispatcher.
    pub fn new(
        store: Store,
        sandboxes: Arc<Sandboxes>,
        plugins: Arc<PluginHost>,
        skills: Arc<crate::skills::Skills>,
        remotes: Arc<crate::remote::Remotes>,
        config: &crate::config::Config,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            sandboxes,
            plugins,
            remotes,
            config: config.tasks.clone(),
            llm: config.llm.clone(),
            skills,
            hub: Arc::default(),
            holder: format!("host-{}", uuid::Uuid::now_v7().simple()),
            wake: Notify::new(),
            finished: tokio::sync::watch::Sender::new(0),
            running: Mutex::default(),
            conversations: crate::store::Recent::default(),
        })
    }

    /// Settings.
    pub fn config(&self) -> &TasksConfig {
        &self.config
    }

    /// The live plugins (the agent's tools).
    pub fn plugins(&self) -> &Arc<PluginHost> {
        &self.plugins
    }

    /// The live fan-out.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Changes whenever a task ends.
    pub fn finished(&self) -> tokio::sync::watch::Receiver<u64> {
        self.finished.subscribe()
    }

    /// Commit events to a task's log, then publish them.
    pub(crate) async fn emit(
        &self,
        task_id: &str,
        events: &[(&str, serde_json::Value)],
    ) -> Result<Vec<EventRow>, StoreError> {
        let rows = self.store.append_events(task_id, &encode(events)).await?;
        self.hub.publish(&rows);
        Ok(rows)
    }

    fn check_input_size(&self, value: &serde_json::Value) -> Result<(), TaskError> {
        let size = value.to_string().len();
        if size > self.config.max_input_bytes {
            return Err(TaskError::TooLarge(format!(
                "the task input is {size} bytes; the limit is {} ([tasks] max_input_bytes)",
                self.config.max_input_bytes
            )));
        }
        Ok(())
    }

    /// Queue a task (in a new session when none is named), applying the
    /// session's busy policy and the per-user queue limit.
    pub async fn create(
        &self,
        caller: &Caller,
        req: NewTask,
        origin: Origin,
    ) -> Result<Task, TaskError> {
        let title_hint = self.check_task(req.kind, &req.input)?;
        let session = match &req.session_id {
            Some(id) => self.session_row(caller, id).await?,
            None => {
                self.new_session(caller, sessions::NewSession::default())
                    .await?
            }
        };
        self.enqueue(caller, &session, req.kind, req.input, origin, &title_hint)
            .await
    }

    /// Check a task's input (size and shape) as `create` would; the text a new
    /// session's title is made from.
    pub(crate) fn check_task(
        &self,
        kind: TaskKind,
        input: &serde_json::Value,
    ) -> Result<String, TaskError> {
        check_task_input(self.config.max_input_bytes, kind, input)
    }

    /// Queue a task in `session` (policy and limits checked).
    pub(crate) async fn enqueue(
        &self,
        caller: &Caller,
        session: &crate::store::SessionRow,
        kind: TaskKind,
        input: serde_json::Value,
        origin: Origin,
        title_hint: &str,
    ) -> Result<Task, TaskError> {
        self.check_queue(&session.owner_id).await?;
        match session.busy_policy.as_str() {
            "reject" if self.store.session_open_tasks(&session.id).await? > 0 => {
                return Err(TaskError::Conflict(
                    "this session already has a task and its busy_policy is `reject`: wait for it, cancel it, or set busy_policy to `queue`".into(),
                ));
            }
            "interrupt" => self.interrupt_session(caller, &session.id).await?,
            _ => {}
        }
        let row = new_task_row(session, kind, input, origin);
        let events = pending_events(session);
        let rows = self.store.insert_task(&row, &events).await?;
        self.queued(session, row, &rows, title_hint).await
    }

    /// Refuse a new task when `owner_id` has the most queued or running tasks allowed.
    pub(crate) async fn check_queue(&self, owner_id: &str) -> Result<(), TaskError> {
        let open = self.store.user_open_tasks(owner_id).await?;
        if open >= i64::from(self.config.max_queued_per_user) {
            return Err(self.queue_full(open));
        }
        Ok(())
    }

    /// The error for a user who has `open` tasks, the most allowed.
    pub(crate) fn queue_full(&self, open: i64) -> TaskError {
        TaskError::TooMany {
            message: format!(
                "you have {open} tasks queued or running; the limit is {}: wait for some to finish or cancel them",
                self.config.max_queued_per_user
            ),
            retry_after: 5,
        }
    }

    /// Announce a task just committed with its first events `rows`.
    pub(crate) async fn queued(
        &self,
        session: &crate::store::SessionRow,
        row: TaskRow,
        rows: &[EventRow],
        title_hint: &str,
    ) -> Result<Task, TaskError> {
        self.hub.publish(rows);
        self.hub.task_created(&session.id, &row.id);
        metrics::counter!("switchyard_tasks_created_total", "kind" => row.kind.as_str(), "origin" => row.origin.clone())
            .increment(1);
        if session.title.is_empty() {
            self.name_session(session, title_hint).await;
        }
        self.wake.notify_one();
        self.view(&TaskRow {
            last_seq: rows.last().map_or(0, |r| r.seq),
            ..row
        })
    }

    /// Cancel a task on behalf of the system (a schedule's `cancel_other`),
    /// whoever owns it; a finished task is left alone.
    pub(crate) async fn cancel_for(&self, id: &str, reason: &str) -> Result<(), TaskError> {
        let Some(row) = self.store.task(id).await? else {
            return Ok(());
        };
        let system = Caller {
            user_id: row.owner_id.clone(),
            admin: true,
        };
        match self.cancel_row(&system, &row, reason).await {
            Ok(()) | Err(TaskError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn interrupt_session(
        &self,
        caller: &Caller,
        session_id: &str,
    ) -> Result<(), TaskError> {
        let filter = TaskFilter {
            session_id: Some(session_id),
            ..TaskFilter::default()
        };
        let page = self.store.tasks(&filter, None, 100).await?;
        for t in page.items.iter().filter(|t| !t.status.is_final()) {
            match self
                .cancel_row(caller, t, "interrupted by a newer task")
                .await
            {
                Ok(_) | Err(TaskError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn row(&self, caller: &Caller, id: &str) -> Result<TaskRow, TaskError> {
        let not_found = || TaskError::NotFound(format!("no task `{id}`"));
        let row = self.store.task(id).await?.ok_or_else(not_found)?;
        if row.owner_id != caller.user_id && !caller.admin {
            return Err(not_found());
        }
        Ok(row)
    }

    /// One task.
    pub async fn get(&self, caller: &Caller, id: &str) -> Result<Task, TaskError> {
        self.view(&self.row(caller, id).await?)
    }

    /// A page of tasks, newest first: the caller's, or everyone's for an admin with `all`.
    pub async fn list(
        &self,
        caller: &Caller,
        all: bool,
        mut filter: TaskFilter<'_>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Task>, TaskError> {
        if !(all && caller.admin) {
            filter.owner_id = Some(&caller.user_id);
        }
        let page = self.store.tasks(&filter, after, limit).await?;
        Ok(Page {
            items: page
                .items
                .iter()
                .map(|t| self.view(t))
                .collect::<Result<_, _>>()?,
            next: page.next,
        })
    }

    /// Cancel a task in any unfinished state; a finished one is a conflict.
    pub async fn cancel(&self, caller: &Caller, id: &str) -> Result<Task, TaskError> {
        let row = self.row(caller, id).await?;
        self.cancel_row(caller, &row, "canceled by its owner")
            .await?;
        self.get(caller, id).await
    }

    async fn cancel_row(
        &self,
        caller: &Caller,
        row: &TaskRow,
        reason: &str,
    ) -> Result<(), TaskError> {
        let _ = caller;
        let finished = |status: TaskStatus| {
            TaskError::Conflict(format!(
                "task `{}` is already {}: only unfinished tasks can be canceled",
                row.id,
                status.as_str()
            ))
        };
        match row.status {
            s if s.is_final() => Err(finished(s)),
            TaskStatus::Running => {
                self.store.request_cancel(&row.id).await?;
                let token = self
                    .running
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&row.id)
                    .cloned();
                if let Some(token) = token {
                    token.cancel();
                }
                Ok(())
            }
            from => {
                let done = self
                    .finish(&row.id, Some(from), Outcome::Canceled(reason.into()))
                    .await?;
                if done {
                    return Ok(());
                }
                // It moved meanwhile (claimed, answered): look again.
                let now = self
                    .store
                    .task(&row.id)
                    .await?
                    .ok_or_else(|| TaskError::NotFound(format!("no task `{}`", row.id)))?;
                if now.status == from {
                    return Err(TaskError::Failed("the task could not be canceled".into()));
                }
                Box::pin(self.cancel_row(caller, &now, reason)).await
            }
        }
    }

    /// Record a run's end (only from `from` when given): status and result,
    /// a `status` and a `done` event, all in one commit. False when the task
    /// was not in `from` (or already finished).
    pub(crate) async fn finish(
        &self,
        id: &str,
        from: Option<TaskStatus>,
        outcome: Outcome,
    ) -> Result<bool, StoreError> {
        let (status, result, error) = match outcome {
            Outcome::Completed(r) => (TaskStatus::Completed, Some(r), None),
            Outcome::Canceled(reason) => (
                TaskStatus::Canceled,
                None,
                Some(("canceled".to_string(), reason)),
            ),
            Outcome::Failed {
                code,
                message,
                result,
            } => (TaskStatus::Failed, result, Some((code, message))),
            Outcome::Retry { code, message } => (TaskStatus::Failed, None, Some((code, message))),
            Outcome::InputRequired(_) => {
                return Err(StoreError::Corrupt("input_required is not an end".into()));
            }
        };
        let result_text = result.as_ref().map(serde_json::Value::to_string);
        let error_json = error
            .as_ref()
            .map(|(code, message)| serde_json::json!({ "code": code, "message": message }));
        let mut done = serde_json::json!({ "status": status.as_str() });
        if let Some(r) = &result {
            done["result"] = r.clone();
        }
        if let Some(e) = &error_json {
            done["error"] = e.clone();
        }
        let events = encode(&[
            ("status", serde_json::json!({ "status": status.as_str() })),
            ("done", done),
        ]);
        let finish = Finish {
            status,
            from,
            result: result_text.as_deref(),
            error_code: error.as_ref().map(|e| e.0.as_str()),
            error_message: error.as_ref().map(|e| e.1.as_str()),
        };
        let Some(rows) = self.store.finish_task(id, &finish, &events).await? else {
            return Ok(false);
        };
        self.hub.publish(&rows);
        metrics::counter!("switchyard_tasks_finished_total", "status" => status.as_str())
            .increment(1);
        self.wake.notify_one();
        self.finished.send_modify(|n| *n = n.wrapping_add(1));
        Ok(true)
    }

    fn view(&self, row: &TaskRow) -> Result<Task, TaskError> {
        Ok(view::task(row))
    }

    /// Follow a task's events after `after`.
    pub async fn follow(&self, caller: &Caller, id: &str, after: i64) -> Result<Follow, TaskError> {
        self.row(caller, id).await?;
        Ok(Follow::new(&self.hub, self.store.clone(), id, after))
    }

    /// A page of a task's events after `after`.
    pub async fn events(
        &self,
        caller: &Caller,
        id: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Event>, TaskError> {
        self.row(caller, id).await?;
        let mut out = Vec::new();
        if let Some(first) = self.store.first_event_seq(id).await?
            && first > after.saturating_add(1)
        {
            out.push(Event {
                task_id: id.into(),
                seq: first - 1,
                kind: "gap".into(),
                data: serde_json::json!({ "from": after.saturating_add(1), "to": first - 1 }),
                time: now_ms(),
            });
        }
        let rows = self
            .store
            .events_after(id, after.max(0), limit.saturating_sub(out.len()).max(1))
            .await?;
        out.extend(rows.iter().map(Event::from_row));
        Ok(out)
    }

    /// How long a lease lasts.
    fn lease(&self) -> Duration {
        Duration::from_secs(self.config.lease_secs.max(3))
    }
}

/// Check a task's input as `POST /tasks` does (at most `max_input_bytes`,
/// the shape its kind needs); the text a new session's title is made from.
pub fn check_task_input(
    max_input_bytes: usize,
    kind: TaskKind,
    input: &serde_json::Value,
) -> Result<String, TaskError> {
    let size = input.to_string().len();
    if size > max_input_bytes {
        return Err(TaskError::TooLarge(format!(
            "the task input is {size} bytes; the limit is {max_input_bytes} ([tasks] max_input_bytes)"
        )));
    }
    Ok(match kind {
        TaskKind::Exec => {
            let exec: crate::sandbox::exec::ExecRequest = serde_json::from_value(input.clone())
                .map_err(|e| TaskError::Invalid(format!("invalid exec input: {e}")))?;
            exec::check(&exec)?;
            exec.command
                .clone()
                .or_else(|| exec.argv.as_ref().map(|a| a.join(" ")))
                .unwrap_or_default()
        }
        TaskKind::Agent => {
            let input: AgentInput = serde_json::from_value(input.clone())
                .map_err(|e| TaskError::Invalid(format!("invalid agent input: {e}")))?;
            if input.content.trim().is_empty() {
                return Err(TaskError::Invalid("content must not be empty".into()));
            }
            input.content
        }
    })
}

/// The first event of a task queued in `session`.
pub(crate) fn pending_events(session: &crate::store::SessionRow) -> Vec<(&'static str, String)> {
    encode(&[(
        "status",
        serde_json::json!({ "status": "pending", "session_id": session.id }),
    )])
}

/// A new pending task in `session`.
pub(crate) fn new_task_row(
    session: &crate::store::SessionRow,
    kind: TaskKind,
    input: serde_json::Value,
    origin: Origin,
) -> TaskRow {
    let now = now_ms();
    TaskRow {
        id: new_id(),
        session_id: session.id.clone(),
        owner_id: session.owner_id.clone(),
        kind,
        input: input.to_string(),
        status: TaskStatus::Pending,
        result: None,
        error_code: None,
        error_message: None,
        attempt: 0,
        origin: origin.as_str().into(),
        queued_at: now,
        started_at: None,
        finished_at: None,
        run_after: now,
        lease_owner: None,
        lease_until: None,
        cancel_requested: false,
        last_seq: 0,
        state: "{}".into(),
        input_tokens: 0,
        output_tokens: 0,
    }
}

/// Events as stored: type and JSON text.
fn encode<'a>(events: &[(&'a str, serde_json::Value)]) -> Vec<(&'a str, String)> {
    events.iter().map(|(k, v)| (*k, v.to_string())).collect()
}
