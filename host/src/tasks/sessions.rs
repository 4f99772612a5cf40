//! Sessions: a conversation's settings (instructions, model choice, skills,
//! busy policy), its persisted message history, its title, and the sandbox
//! bound to it on first need (one per session, in its owner's quota).

use super::{Caller, Origin, Task, TaskError, Tasks};
use crate::store::{Page, SessionRow, TaskKind, TaskStatus, new_id, now_ms};
use serde::{Deserialize, Serialize};

/// Longest title.
const MAX_TITLE: usize = 200;
/// Longest instructions (characters).
const MAX_INSTRUCTIONS: usize = 64 << 10;

/// What a session does with a new task while one runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BusyPolicy {
    /// Run it after the others, in order.
    #[default]
    Queue,
    /// Refuse it (409).
    Reject,
    /// Cancel the running task (and any queued before) and run it next.
    Interrupt,
}

impl BusyPolicy {
    fn as_str(self) -> &'static str {
        match self {
            Self::Queue => "queue",
            Self::Reject => "reject",
            Self::Interrupt => "interrupt",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "reject" => Self::Reject,
            "interrupt" => Self::Interrupt,
            _ => Self::Queue,
        }
    }
}

/// LLM providers a session or agent may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderName {
    /// An OpenAI-compatible chat completions server.
    Openai,
    /// The Anthropic Messages API.
    Anthropic,
}

impl ProviderName {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Openai => "openai",
            Self::Anthropic => "anthropic",
        }
    }
}

/// A session.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Session {
    /// Stable id.
    pub id: String,
    /// The owner's user id.
    pub owner_id: String,
    /// The agent profile it started from.
    pub agent_id: Option<String>,
    /// Its title (from the first message until renamed).
    pub title: String,
    /// Its system prompt.
    pub instructions: String,
    /// Provider override (the server's `[llm]` provider when absent).
    pub provider: Option<String>,
    /// Model override.
    pub model: Option<String>,
    /// Enabled skills.
    pub skills: Vec<String>,
    /// What a new task does while one runs.
    pub busy_policy: BusyPolicy,
    /// Its sandbox, once a task needed one.
    pub sandbox_id: Option<String>,
    /// Hidden from the default list.
    pub archived: bool,
    /// Created (ms since the epoch).
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

/// What creating a session takes (everything optional).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSession {
    /// Title (generated from the first message when absent).
    #[schema(max_length = 200, pattern = "^[^\\x00]*$")]
    pub title: Option<String>,
    /// Start from this agent profile (yours or a shared one); your default profile when absent.
    #[schema(max_length = 64)]
    pub agent_id: Option<String>,
    /// System prompt (the profile's when absent).
    #[schema(max_length = 65536, pattern = "^[^\\x00]*$")]
    pub instructions: Option<String>,
    /// Provider override.
    pub provider: Option<ProviderName>,
    /// Model override.
    #[schema(min_length = 1, max_length = 200, pattern = "^[^\\x00-\\x1f\\x7f]+$")]
    pub model: Option<String>,
    /// Skills to enable.
    #[schema(schema_with = skill_names_schema)]
    pub skills: Option<Vec<String>>,
    /// What a new task does while one runs (default `queue`).
    pub busy_policy: Option<BusyPolicy>,
}

/// A change to a session (absent fields stay).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionPatch {
    /// New title.
    #[schema(max_length = 200, pattern = "^[^\\x00]*$")]
    pub title: Option<String>,
    /// New system prompt.
    #[schema(max_length = 65536, pattern = "^[^\\x00]*$")]
    pub instructions: Option<String>,
    /// Provider override (`null` clears it).
    #[serde(default, deserialize_with = "some")]
    pub provider: Option<Option<ProviderName>>,
    /// Model override (`null` clears it).
    #[serde(default, deserialize_with = "some")]
    #[schema(min_length = 1, max_length = 200, pattern = "^[^\\x00-\\x1f\\x7f]+$")]
    pub model: Option<Option<String>>,
    /// Enabled skills.
    #[schema(schema_with = skill_names_schema)]
    pub skills: Option<Vec<String>>,
    /// Busy policy.
    pub busy_policy: Option<BusyPolicy>,
    /// Archive or restore.
    pub archived: Option<bool>,
}

fn some<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// One message of a session's history.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HistoryMessage {
    /// Its place in the history, from 1.
    pub seq: i64,
    /// The task that added it.
    pub task_id: Option<String>,
    /// `user`, `assistant` or `tool_result`.
    pub role: String,
    /// The message: `content` for user messages, `text` and `tool_calls` for
    /// assistant ones, `call_id`, `name`, `content`, `is_error` for tool results.
    #[schema(value_type = Object)]
    pub message: serde_json::Value,
    /// When it was added (ms since the epoch).
    pub created_at: i64,
}

/// A message posted to a session: a new agent turn, or the answer to the
/// question or approval its task waits for.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostMessage {
    /// The text.
    #[schema(min_length = 1)]
    pub content: String,
    /// For an approval request: approve (`true`) or deny (`false`) the tool call.
    pub approve: Option<bool>,
}

fn check_text(name: &str, value: &str, max: usize) -> Result<(), TaskError> {
    if !crate::api::max_chars(value, max) {
        return Err(TaskError::Invalid(format!(
            "{name} is longer than {max} characters"
        )));
    }
    if value.contains('\0') {
        return Err(TaskError::Invalid(format!("{name} cannot contain NUL")));
    }
    Ok(())
}

/// The OpenAPI schema of a list of skill names (what [`check_skills`] accepts).
pub(super) fn skill_names_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^(?:[a-z0-9@_.-]*/)?[a-z0-9]+(?:-[a-z0-9]+)*$"))
                .max_length(Some(64)),
        )
        .max_items(Some(100))
        .build()
}

pub(super) fn check_skills(skills: &[String]) -> Result<String, TaskError> {
    if skills.len() > 100 {
        return Err(TaskError::Invalid("at most 100 skills".into()));
    }
    for s in skills {
        let (source, name) = s.rsplit_once('/').unwrap_or(("", s));
        let source_ok = source.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.' | '@')
        });
        let name_ok = !name.is_empty()
            && name.split('-').all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        if s.len() > 64 || !source_ok || !name_ok {
            return Err(TaskError::Invalid(format!(
                "`{}` is not a skill: name it NAME, or SOURCE/NAME (e.g. @alice/csv-chart), at most 64 characters",
                s.chars().take(64).collect::<String>()
            )));
        }
    }
    Ok(serde_json::to_string(skills).unwrap_or_else(|_| "[]".into()))
}

pub(super) fn check_model(model: &Option<String>) -> Result<(), TaskError> {
    if let Some(m) = model
        && (m.is_empty()
            || !crate::api::max_chars(m, 200)
            || m.chars().any(|c| c < ' ' || c == '\u{7f}'))
    {
        return Err(TaskError::Invalid(
            "model is 1-200 printable characters".into(),
        ));
    }
    Ok(())
}

/// The view of a stored session.
pub fn session_view(row: &SessionRow) -> Session {
    Session {
        id: row.id.clone(),
        owner_id: row.owner_id.clone(),
        agent_id: row.agent_id.clone(),
        title: row.title.clone(),
        instructions: row.instructions.clone(),
        provider: row.provider.clone(),
        model: row.model.clone(),
        skills: serde_json::from_str(&row.skills).unwrap_or_default(),
        busy_policy: BusyPolicy::parse(&row.busy_policy),
        sandbox_id: row.sandbox_id.clone(),
        archived: row.archived,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// A title from the first words of a message.
pub fn title_from(text: &str) -> String {
    let words = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty());
    let mut title = String::new();
    for w in words {
        if title.chars().count() + w.chars().count() + 1 > 60 {
            if title.is_empty() {
                title = w.chars().take(60).collect();
            }
            break;
        }
        if !title.is_empty() {
            title.push(' ');
        }
        title.push_str(w);
    }
    title
}

impl Tasks {
    /// A session the caller may use (404 for anyone else's).
    pub(crate) async fn session_row(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<SessionRow, TaskError> {
        let not_found = || TaskError::NotFound(format!("no session `{id}`"));
        let row = self.store.session(id).await?.ok_or_else(not_found)?;
        if row.owner_id != caller.user_id && !caller.admin {
            return Err(not_found());
        }
        Ok(row)
    }

    /// Create a session, from an agent profile (or the caller's default one).
    pub async fn create_session(
        &self,
        caller: &Caller,
        req: NewSession,
    ) -> Result<Session, TaskError> {
        Ok(session_view(&self.new_session(caller, req).await?))
    }

    pub(crate) async fn new_session(
        &self,
        caller: &Caller,
        req: NewSession,
    ) -> Result<SessionRow, TaskError> {
        let row = self.build_session(caller, req).await?;
        self.store.insert_session(&row).await?;
        Ok(row)
    }

    /// A new session's row, checked but not stored (a caller's transaction stores it).
    pub(crate) async fn build_session(
        &self,
        caller: &Caller,
        req: NewSession,
    ) -> Result<SessionRow, TaskError> {
        let profile = match &req.agent_id {
            Some(id) => Some(self.agent_row(caller, id).await?),
            None => self.store.default_agent(&caller.user_id).await?,
        };
        let title = req.title.unwrap_or_default();
        check_text("title", &title, MAX_TITLE)?;
        check_model(&req.model)?;
        let instructions = req
            .instructions
            .or_else(|| profile.as_ref().map(|p| p.instructions.clone()))
            .unwrap_or_default();
        check_text("instructions", &instructions, MAX_INSTRUCTIONS)?;
        let skills = match req.skills {
            Some(s) => check_skills(&s)?,
            None => profile
                .as_ref()
                .map_or_else(|| "[]".to_string(), |p| p.skills.clone()),
        };
        let now = now_ms();
        let row = SessionRow {
            id: new_id(),
            owner_id: caller.user_id.clone(),
            agent_id: profile.as_ref().map(|p| p.id.clone()),
            title: title.trim().to_string(),
            instructions,
            provider: req
                .provider
                .map(|p| p.as_str().to_string())
                .or_else(|| profile.as_ref().and_then(|p| p.provider.clone())),
            model: req
                .model
                .or_else(|| profile.as_ref().and_then(|p| p.model.clone())),
            skills,
            busy_policy: req.busy_policy.unwrap_or_default().as_str().into(),
            sandbox_id: None,
            archived: false,
            created_at: now,
            updated_at: now,
        };
        Ok(row)
    }

    /// One session.
    pub async fn session(&self, caller: &Caller, id: &str) -> Result<Session, TaskError> {
        Ok(session_view(&self.session_row(caller, id).await?))
    }

    /// A page of the caller's sessions (everyone's for an admin with `all`), newest first.
    pub async fn sessions(
        &self,
        caller: &Caller,
        all: bool,
        archived: bool,
        search: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Session>, TaskError> {
        let owner = (!(all && caller.admin)).then_some(caller.user_id.as_str());
        let page = self
            .store
            .sessions(owner, archived, search, after, limit)
            .await?;
        Ok(Page {
            items: page.items.iter().map(session_view).collect(),
            next: page.next,
        })
    }

    /// Change a session's settings.
    pub async fn update_session(
        &self,
        caller: &Caller,
        id: &str,
        patch: SessionPatch,
    ) -> Result<Session, TaskError> {
        let mut row = self.session_row(caller, id).await?;
        if let Some(t) = patch.title {
            check_text("title", &t, MAX_TITLE)?;
            row.title = t.trim().to_string();
        }
        if let Some(i) = patch.instructions {
            check_text("instructions", &i, MAX_INSTRUCTIONS)?;
            row.instructions = i;
        }
        if let Some(p) = patch.provider {
            row.provider = p.map(|p| p.as_str().to_string());
        }
        if let Some(m) = patch.model {
            check_model(&m)?;
            row.model = m;
        }
        if let Some(s) = patch.skills {
            row.skills = check_skills(&s)?;
        }
        if let Some(b) = patch.busy_policy {
            row.busy_policy = b.as_str().into();
        }
        if let Some(a) = patch.archived {
            row.archived = a;
        }
        self.store.update_session(&row).await?;
        self.session(caller, id).await
    }

    /// Delete a session: its unfinished tasks are canceled first; its history,
    /// tasks and events go; its sandbox stays (delete it separately).
    pub async fn delete_session(&self, caller: &Caller, id: &str) -> Result<(), TaskError> {
        self.session_row(caller, id).await?;
        self.interrupt_session(caller, id).await?;
        self.store.delete_session(id).await?;
        self.conversations.clear();
        Ok(())
    }

    /// A page of a session's history after `after`.
    pub async fn history(
        &self,
        caller: &Caller,
        id: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<HistoryMessage>, TaskError> {
        self.session_row(caller, id).await?;
        Ok(self
            .store
            .messages(id, after.max(0), limit)
            .await?
            .into_iter()
            .map(|m| HistoryMessage {
                seq: m.seq,
                task_id: m.task_id,
                role: m.role,
                message: serde_json::from_str(&m.body).unwrap_or_default(),
                created_at: m.created_at,
            })
            .collect())
    }

    /// Post a message: the answer to the task waiting for input in this
    /// session (then `true`), or else a new agent task.
    pub async fn post_message(
        &self,
        caller: &Caller,
        id: &str,
        msg: PostMessage,
        origin: Origin,
    ) -> Result<(Task, bool), TaskError> {
        if msg.content.trim().is_empty() {
            return Err(TaskError::Invalid("content must not be empty".into()));
        }
        let input = serde_json::json!({ "content": msg.content });
        self.check_input_size(&input)?;
        let session = self.session_row(caller, id).await?;
        if let Some(waiting) = self.store.session_active_task(id).await?
            && waiting.status == TaskStatus::InputRequired
        {
            return Ok((self.answer(caller, &waiting, msg).await?, true));
        }
        let task = self
            .enqueue(
                caller,
                &session,
                TaskKind::Agent,
                input,
                origin,
                &msg.content,
            )
            .await?;
        Ok((task, false))
    }

    async fn answer(
        &self,
        caller: &Caller,
        task: &crate::store::TaskRow,
        msg: PostMessage,
    ) -> Result<Task, TaskError> {
        let mut state: serde_json::Value =
            serde_json::from_str(&task.state).unwrap_or_else(|_| serde_json::json!({}));
        let approval =
            state.pointer("/waiting_for/type").and_then(|t| t.as_str()) == Some("approval");
        if approval && msg.approve.is_none() {
            return Err(TaskError::Invalid(
                "this task waits for an approval: send `approve: true` or `approve: false` (with the reason in content)".into(),
            ));
        }
        state["answer"] = serde_json::json!({ "content": msg.content, "approve": msg.approve });
        self.store
            .save_task_state(
                &task.id,
                &state.to_string(),
                task.input_tokens,
                task.output_tokens,
            )
            .await?;
        let events = super::encode(&[(
            "status",
            serde_json::json!({ "status": "pending", "reason": "answered" }),
        )]);
        let moved = self
            .store
            .move_task(
                &task.id,
                TaskStatus::InputRequired,
                TaskStatus::Pending,
                None,
                &events,
            )
            .await?;
        let Some(rows) = moved else {
            return Err(TaskError::Conflict(
                "the task stopped waiting for input meanwhile".into(),
            ));
        };
        self.hub.publish(&rows);
        self.wake.notify_one();
        self.get(caller, &task.id).await
    }

    /// Name an untitled session after the first words of its first message.
    pub(crate) async fn name_session(&self, session: &SessionRow, text: &str) {
        let title = title_from(text);
        if title.is_empty() {
            return;
        }
        match self
            .store
            .set_session_title_if_empty(&session.id, &title)
            .await
        {
            Ok(true) => self.hub.session_title(&session.id, &title),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, session = %session.id, "cannot title the session"),
        }
    }

    /// The session's sandbox, created (in the owner's quota, with the agent
    /// profile's limits) when it has none yet.
    pub(crate) async fn ensure_sandbox(
        &self,
        session: &SessionRow,
    ) -> Result<String, crate::sandbox::SandboxError> {
        let owner = Caller {
            user_id: session.owner_id.clone(),
            admin: false,
        };
        if let Some(id) = &session.sandbox_id
            && self.sandboxes.get(&owner, id).await.is_ok()
        {
            return Ok(id.clone());
        }
        let limits = match &session.agent_id {
            Some(a) => self
                .store
                .agent(a)
                .await
                .ok()
                .flatten()
                .and_then(|p| serde_json::from_str(&p.sandbox_limits).ok())
                .unwrap_or_default(),
            None => Default::default(),
        };
        let simple = session.id.replace('-', "");
        let name = format!("session-{}", &simple[simple.len().saturating_sub(16)..]);
        // Created before a crash that kept it from being bound: bind it now.
        let existing = self
            .store
            .owner_sandboxes(&session.owner_id)
            .await
            .map_err(|e| crate::sandbox::SandboxError::Failed(e.to_string()))?
            .into_iter()
            .find(|s| s.name == name);
        if let Some(found) = existing {
            self.store
                .set_session_sandbox(&session.id, &found.id)
                .await
                .map_err(|e| crate::sandbox::SandboxError::Failed(e.to_string()))?;
            return Ok(found.id);
        }
        let created = self
            .sandboxes
            .create(
                &owner,
                crate::sandbox::CreateSandbox {
                    name: Some(name),
                    limits,
                },
            )
            .await?;
        self.store
            .set_session_sandbox(&session.id, &created.id)
            .await
            .map_err(|e| crate::sandbox::SandboxError::Failed(e.to_string()))?;
        Ok(created.id)
    }
}

#[cfg(test)]
mod tests {
    use super::title_from;

    #[test]
    fn titles_are_the_first_words() {
        assert_eq!(
            title_from("  list the   files\nplease "),
            "list the files please"
        );
        let long = "word ".repeat(40);
        assert!(title_from(&long).chars().count() <= 60);
        assert_eq!(title_from(&"x".repeat(100)).chars().count(), 60);
    }
}
