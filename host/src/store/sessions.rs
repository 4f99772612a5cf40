//! Sessions (a conversation with its instructions, model choice, skills and
//! sandbox), their message history, and agent profiles (reusable session
//! templates).

use super::{Page, Store, StoreError, now_ms};
use sqlx::Row;
use sqlx::any::AnyRow;

/// A stored session.
#[derive(Debug, Clone)]
pub struct SessionRow {
    /// Stable id (UUIDv7).
    pub id: String,
    /// The user it belongs to.
    pub owner_id: String,
    /// The agent profile it started from.
    pub agent_id: Option<String>,
    /// Its title.
    pub title: String,
    /// Its system prompt.
    pub instructions: String,
    /// Provider override.
    pub provider: Option<String>,
    /// Model override.
    pub model: Option<String>,
    /// Enabled skills (JSON list of names).
    pub skills: String,
    /// What a new task does while one runs: `queue`, `reject`, `interrupt`.
    pub busy_policy: String,
    /// Its sandbox, once one was needed.
    pub sandbox_id: Option<String>,
    /// Hidden from the default list.
    pub archived: bool,
    /// Created (ms since the epoch).
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

const SESSION_COLUMNS: &str = "id, owner_id, agent_id, title, instructions, provider, model, skills, busy_policy, \
     sandbox_id, archived, created_at, updated_at";

fn session(row: &AnyRow) -> Result<SessionRow, StoreError> {
    Ok(SessionRow {
        id: row.try_get("id")?,
        owner_id: row.try_get("owner_id")?,
        agent_id: row.try_get("agent_id")?,
        title: row.try_get("title")?,
        instructions: row.try_get("instructions")?,
        provider: row.try_get("provider")?,
        model: row.try_get("model")?,
        skills: row.try_get("skills")?,
        busy_policy: row.try_get("busy_policy")?,
        sandbox_id: row.try_get("sandbox_id")?,
        archived: row.try_get::<i64, _>("archived")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// A stored agent profile.
#[derive(Debug, Clone)]
pub struct AgentRow {
    /// Stable id.
    pub id: String,
    /// The user it belongs to.
    pub owner_id: String,
    /// Its name, unique per owner.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Its system prompt.
    pub instructions: String,
    /// Provider.
    pub provider: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Tools it may use (JSON list of `PLUGIN__TOOL` names or `PLUGIN__*`; `["*"]` for all).
    pub tools: String,
    /// Skills enabled in its sessions (JSON list).
    pub skills: String,
    /// Which tool calls need a person's approval: `never`, `destructive`, `always`.
    pub approval: String,
    /// Sandbox limits for its sessions (JSON).
    pub sandbox_limits: String,
    /// Visible to every user.
    pub shared: bool,
    /// The owner's default for new sessions.
    pub is_default: bool,
    /// Created.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

const AGENT_COLUMNS: &str = "id, owner_id, name, description, instructions, provider, model, tools, skills, approval, \
     sandbox_limits, shared, is_default, created_at, updated_at";

fn agent(row: &AnyRow) -> Result<AgentRow, StoreError> {
    Ok(AgentRow {
        id: row.try_get("id")?,
        owner_id: row.try_get("owner_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        instructions: row.try_get("instructions")?,
        provider: row.try_get("provider")?,
        model: row.try_get("model")?,
        tools: row.try_get("tools")?,
        skills: row.try_get("skills")?,
        approval: row.try_get("approval")?,
        sandbox_limits: row.try_get("sandbox_limits")?,
        shared: row.try_get::<i64, _>("shared")? != 0,
        is_default: row.try_get::<i64, _>("is_default")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// One stored message of a session's history.
#[derive(Debug, Clone)]
pub struct MessageRow {
    /// Its place in the history, from 1.
    pub seq: i64,
    /// The task that added it.
    pub task_id: Option<String>,
    /// `user`, `assistant` or `tool_result`.
    pub role: String,
    /// The message (JSON).
    pub body: String,
    /// When it was added.
    pub created_at: i64,
}

impl Store {
    /// Store a new session.
    pub async fn insert_session(&self, s: &SessionRow) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        insert_session_row(&mut conn, s).await
    }

    /// One session by id.
    pub async fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        self.session_where("id = $1", &[id]).await
    }

    /// The session matching `condition` (a fixed SQL condition over `args`).
    pub(crate) async fn session_where(
        &self,
        condition: &'static str,
        args: &[&str],
    ) -> Result<Option<SessionRow>, StoreError> {
        let mut query = sqlx::query(sql!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE {condition}"
        ));
        for a in args {
            query = query.bind(*a);
        }
        query
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(session)
            .transpose()
    }

    /// A page of one owner's sessions (everyone's with `None`), newest first;
    /// archived ones only with `archived`, titles containing `search`.
    pub async fn sessions(
        &self,
        owner_id: Option<&str>,
        archived: bool,
        search: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<SessionRow>, StoreError> {
        let pattern = search.map(|s| {
            format!(
                "%{}%",
                s.to_lowercase()
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            )
        });
        let rows = sqlx::query(sql!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE ($1 = '' OR owner_id = $1) AND archived = $2 \
             AND ($3 = '' OR LOWER(title) LIKE $3 ESCAPE '\\') AND ($4 = '' OR id < $4) ORDER BY id DESC LIMIT $5"
        ))
        .bind(owner_id.unwrap_or(""))
        .bind(i64::from(archived))
        .bind(pattern.as_deref().unwrap_or(""))
        .bind(after.unwrap_or(""))
        .bind((limit + 1) as i64)
        .fetch_all(self.pool())
        .await?;
        let items = rows.iter().map(session).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_fetched(items, limit, |s| s.id.clone()))
    }

    /// Write a session's editable fields back.
    pub async fn update_session(&self, s: &SessionRow) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET title = $2, instructions = $3, provider = $4, model = $5, skills = $6, \
             busy_policy = $7, archived = $8, updated_at = $9 WHERE id = $1",
        )
        .bind(&s.id)
        .bind(&s.title)
        .bind(&s.instructions)
        .bind(&s.provider)
        .bind(&s.model)
        .bind(&s.skills)
        .bind(&s.busy_policy)
        .bind(i64::from(s.archived))
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Set a session's title unless someone already did (true when set).
    pub async fn set_session_title_if_empty(
        &self,
        id: &str,
        title: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET title = $2, updated_at = $3 WHERE id = $1 AND title = ''",
        )
        .bind(id)
        .bind(title)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Replace a session's title if it is still `expected` (true when replaced).
    pub async fn replace_session_title(
        &self,
        id: &str,
        expected: &str,
        title: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET title = $3, updated_at = $4 WHERE id = $1 AND title = $2",
        )
        .bind(id)
        .bind(expected)
        .bind(title)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Bind a sandbox to a session.
    pub async fn set_session_sandbox(&self, id: &str, sandbox_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET sandbox_id = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(sandbox_id)
            .bind(now_ms())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Delete a session with its tasks, events and history.
    ///
    /// The delete cascades through the session's tasks, events and history
    /// while a task of it may still be writing them: when Postgres picks the
    /// delete as a deadlock's victim, it is tried again.
    pub async fn delete_session(&self, id: &str) -> Result<(), StoreError> {
        let mut attempt = 0;
        loop {
            match sqlx::query("DELETE FROM sessions WHERE id = $1")
                .bind(id)
                .execute(self.pool())
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if attempt < 5 && super::lost_a_deadlock(&e) => {
                    attempt += 1;
                    tracing::debug!(session = %id, attempt, "deleting a session lost a deadlock; trying again");
                    tokio::time::sleep(std::time::Duration::from_millis(10 * attempt)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Append messages to a session's history in one transaction.
    pub async fn append_messages(
        &self,
        session_id: &str,
        task_id: Option<&str>,
        messages: &[(&str, String)],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let last: Option<i64> =
            sqlx::query_scalar("SELECT MAX(seq) FROM session_messages WHERE session_id = $1")
                .bind(session_id)
                .fetch_one(&mut *tx)
                .await?;
        let now = now_ms();
        for (i, (role, body)) in messages.iter().enumerate() {
            sqlx::query(
                "INSERT INTO session_messages (session_id, seq, task_id, role, body, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(session_id)
            .bind(last.unwrap_or(0) + 1 + i as i64)
            .bind(task_id)
            .bind(*role)
            .bind(body)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Up to `limit` messages of a session's history after `after`, in order.
    pub async fn messages(
        &self,
        session_id: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<MessageRow>, StoreError> {
        sqlx::query(
            "SELECT seq, task_id, role, body, created_at FROM session_messages WHERE session_id = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3",
        )
        .bind(session_id)
        .bind(after)
        .bind(limit as i64)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|r| {
            Ok(MessageRow {
                seq: r.try_get("seq")?,
                task_id: r.try_get("task_id")?,
                role: r.try_get("role")?,
                body: r.try_get("body")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
    }

    /// Store a new agent profile; a name its owner already uses is a conflict.
    pub async fn insert_agent(&self, a: &AgentRow) -> Result<(), StoreError> {
        sqlx::query(sql!(
            "INSERT INTO agents ({AGENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .bind(&a.id)
        .bind(&a.owner_id)
        .bind(&a.name)
        .bind(&a.description)
        .bind(&a.instructions)
        .bind(&a.provider)
        .bind(&a.model)
        .bind(&a.tools)
        .bind(&a.skills)
        .bind(&a.approval)
        .bind(&a.sandbox_limits)
        .bind(i64::from(a.shared))
        .bind(i64::from(a.is_default))
        .bind(a.created_at)
        .bind(a.updated_at)
        .execute(self.pool())
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!("agent `{}`", a.name)),
            other => other,
        })?;
        Ok(())
    }

    /// One agent profile by id.
    pub async fn agent(&self, id: &str) -> Result<Option<AgentRow>, StoreError> {
        sqlx::query(sql!("SELECT {AGENT_COLUMNS} FROM agents WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(agent)
            .transpose()
    }

    /// The profiles a user sees: their own and the shared ones (every one with `None`), by name.
    pub async fn agents(&self, viewer: Option<&str>) -> Result<Vec<AgentRow>, StoreError> {
        sqlx::query(sql!(
            "SELECT {AGENT_COLUMNS} FROM agents WHERE $1 = '' OR owner_id = $1 OR shared = 1 ORDER BY name, id"
        ))
        .bind(viewer.unwrap_or(""))
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(agent)
        .collect()
    }

    /// The user's default profile, if they chose one.
    pub async fn default_agent(&self, owner_id: &str) -> Result<Option<AgentRow>, StoreError> {
        sqlx::query(sql!(
            "SELECT {AGENT_COLUMNS} FROM agents WHERE owner_id = $1 AND is_default = 1 LIMIT 1"
        ))
        .bind(owner_id)
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(agent)
        .transpose()
    }

    /// Write an agent profile back; a default one makes the owner's others non-default.
    pub async fn update_agent(&self, a: &AgentRow) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        if a.is_default {
            sqlx::query("UPDATE agents SET is_default = 0 WHERE owner_id = $1 AND id <> $2")
                .bind(&a.owner_id)
                .bind(&a.id)
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query(
            "UPDATE agents SET name = $2, description = $3, instructions = $4, provider = $5, model = $6, tools = $7, \
             skills = $8, approval = $9, sandbox_limits = $10, shared = $11, is_default = $12, updated_at = $13 WHERE id = $1",
        )
        .bind(&a.id)
        .bind(&a.name)
        .bind(&a.description)
        .bind(&a.instructions)
        .bind(&a.provider)
        .bind(&a.model)
        .bind(&a.tools)
        .bind(&a.skills)
        .bind(&a.approval)
        .bind(&a.sandbox_limits)
        .bind(i64::from(a.shared))
        .bind(i64::from(a.is_default))
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!("agent `{}`", a.name)),
            other => other,
        })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    /// Delete an agent profile (sessions started from it keep their settings).
    pub async fn delete_agent(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM agents WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

/// Insert a session on `conn` (inside a caller's transaction).
pub(crate) async fn insert_session_row(
    conn: &mut sqlx::AnyConnection,
    s: &SessionRow,
) -> Result<(), StoreError> {
    sqlx::query(sql!(
            "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(&s.id)
        .bind(&s.owner_id)
        .bind(&s.agent_id)
        .bind(&s.title)
        .bind(&s.instructions)
        .bind(&s.provider)
        .bind(&s.model)
        .bind(&s.skills)
        .bind(&s.busy_policy)
        .bind(&s.sandbox_id)
        .bind(i64::from(s.archived))
        .bind(s.created_at)
        .bind(s.updated_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
