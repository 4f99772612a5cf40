//! Tasks that arrive from outside the API: a channel message becomes an agent
//! task in the session bound to its conversation, queued in one transaction
//! with its dedupe record and its outbox row, so a redelivery of the same
//! message never makes a second task and a queued task always gets its reply.
//! Messages arriving together share a transaction (the store's intake). The
//! session a conversation is bound to is remembered briefly; a task queued in
//! a session deleted meanwhile fails its foreign key, and the message is
//! queued again in the conversation's new session.

use super::sessions::NewSession;
use super::{Caller, Origin, Task, TaskError, Tasks, new_task_row, pending_events};
use crate::store::{
    ChannelTask, DeliveryRow, Queued, SessionRow, StoreError, TaskKind, new_id, now_ms,
};

/// One message received through a channel instance.
#[derive(Debug, Clone)]
pub struct Inbound<'a> {
    /// The channel instance.
    pub instance_id: &'a str,
    /// Who owns the sessions and tasks the instance creates.
    pub owner_id: &'a str,
    /// The agent profile a new session starts from.
    pub agent_id: Option<&'a str>,
    /// The conversation (thread, issue) the message belongs to.
    pub conversation_key: &'a str,
    /// The provider's delivery id; `None`: the message is not deduplicated.
    pub delivery_key: Option<&'a str>,
    /// The message text (the agent task's input).
    pub text: &'a str,
    /// Where the reply goes.
    pub reply_target: &'a str,
    /// The message's metadata (JSON list of pairs), passed back on delivery.
    pub metadata: String,
}

/// What became of an inbound message.
#[derive(Debug)]
pub enum Accepted {
    /// A new task was queued.
    Queued(Box<Task>),
    /// The delivery id was seen before: nothing was queued (the earlier task's id).
    Duplicate(Option<String>),
}

impl Tasks {
    /// Queue `m` as an agent task with its reply in the outbox, unless its
    /// delivery id was received before.
    pub async fn accept_inbound(
        &self,
        m: &Inbound<'_>,
        origin: Origin,
    ) -> Result<Accepted, TaskError> {
        if m.text.trim().is_empty() {
            return Err(TaskError::Invalid("the message text is empty".into()));
        }
        let input = serde_json::json!({ "content": m.text });
        self.check_input_size(&input)?;
        let key = (m.instance_id.to_string(), m.conversation_key.to_string());
        let (session, queued) = match self.conversations.get(&key) {
            Some(session) => match self.queue_inbound(m, &session, &input, origin).await {
                Err(StoreError::Dangling(_)) => {
                    self.conversations.forget(&key);
                    let session = self.conversation(m).await?;
                    let queued = self.queue_inbound(m, &session, &input, origin).await?;
                    (session, queued)
                }
                queued => (session, queued?),
            },
            None => {
                let session = self.conversation(m).await?;
                let queued = self.queue_inbound(m, &session, &input, origin).await?;
                (session, queued)
            }
        };
        match queued {
            Queued::Fresh(task, rows) => {
                let task = self.queued(&session, *task, &rows, m.text).await?;
                // A session still untitled is named now: read it again next time.
                if !session.title.is_empty() {
                    self.conversations.put(key, session);
                }
                Ok(Accepted::Queued(Box::new(task)))
            }
            Queued::Duplicate(earlier) => Ok(Accepted::Duplicate(earlier)),
            Queued::Full(open) => Err(self.queue_full(open)),
        }
    }

    /// Queue `m` in `session` with its reply in the outbox.
    async fn queue_inbound(
        &self,
        m: &Inbound<'_>,
        session: &SessionRow,
        input: &serde_json::Value,
        origin: Origin,
    ) -> Result<Queued, StoreError> {
        let task = new_task_row(session, TaskKind::Agent, input.clone(), origin);
        let now = now_ms();
        let delivery = DeliveryRow {
            id: new_id(),
            task_id: task.id.clone(),
            instance_id: m.instance_id.to_string(),
            conversation_key: m.conversation_key.to_string(),
            reply_target: m.reply_target.to_string(),
            metadata: m.metadata.clone(),
            idempotency_key: format!("switchyard-{}", task.id),
            state: "waiting".into(),
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            lease_owner: None,
            lease_until: None,
            created_at: now,
            updated_at: now,
        };
        let item = ChannelTask {
            task,
            events: pending_events(session),
            receipt: m
                .delivery_key
                .map(|key| (m.instance_id.to_string(), key.to_string())),
            delivery,
            max_open: i64::from(self.config.max_queued_per_user),
        };
        self.store.queue_channel_task(item).await
    }

    /// The session bound to `m`'s conversation, created (owned by the
    /// instance's owner) and bound on its first message.
    async fn conversation(&self, m: &Inbound<'_>) -> Result<SessionRow, TaskError> {
        if let Some(row) = self
            .store
            .conversation_session_row(m.instance_id, m.conversation_key)
            .await?
        {
            return Ok(row);
        }
        let owner = Caller {
            user_id: m.owner_id.to_string(),
            admin: false,
        };
        let created = self
            .new_session(
                &owner,
                NewSession {
                    agent_id: m.agent_id.map(str::to_string),
                    ..NewSession::default()
                },
            )
            .await?;
        let bound = self
            .store
            .bind_conversation(m.instance_id, m.conversation_key, &created.id)
            .await?;
        if bound == created.id {
            return Ok(created);
        }
        if let Err(e) = self.store.delete_session(&created.id).await {
            tracing::warn!(session = %created.id, error = %e, "cannot drop a session that lost a race");
        }
        self.store
            .session(&bound)
            .await?
            .ok_or_else(|| TaskError::NotFound(format!("no session `{bound}`")))
    }
}
