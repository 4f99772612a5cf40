//! The WebSocket at `/api/v1/ws`: chat and exec over one connection, with
//! live task events.
//!
//! JSON text frames both ways (docs/tasks.md has the protocol). Client:
//! `chat`, `exec`, `subscribe`/`unsubscribe` (`task_id` with optional `after`,
//! or `session_id`), `cancel`, `ping`. Server: `session_created`, `message`
//! (a task was queued for a `chat`/`exec`), `session_title`, every task event
//! (`status`, `text`, `tool_call`, `tool_result`, `log`, `output`, `error`,
//! `done`, `gap`) with `task_id` and `seq`, a `status` snapshot (`snapshot:
//! true`) on every subscribe, `pong`, and `error` for a bad frame (the
//! connection stays). A subscriber that falls too far behind is closed with
//! a reason naming the `after` to resume from; the task never waits for it.

use super::Ctx;
use super::error::ApiError;
use super::ws_auth::ws_ctx;
use crate::server::Services;
use crate::store::TaskKind;
use crate::tasks::sessions::{NewSession, PostMessage};
use crate::tasks::{Caller, NewTask, Origin, SessionNotice, TaskError, Tasks};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use warp::filters::ws::{Message, Ws};
use warp::{Filter, Rejection, Reply};

/// Frames queued for a connection before its subscriptions wait (events
/// are at most ~64 KiB, so a few MiB at most).
const OUTBOX: usize = 64;
/// The close code for a subscriber that fell behind (application-defined range).
const CLOSE_TOO_SLOW: u16 = 4008;

/// What a client sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ClientMessage {
    /// A message to the agent (or the answer a waiting task asked for).
    Chat {
        session_id: Option<String>,
        content: String,
        approve: Option<bool>,
        request_id: Option<String>,
    },
    /// Follow a task (from after `after`) or a session.
    Subscribe {
        task_id: Option<String>,
        session_id: Option<String>,
        after: Option<i64>,
    },
    /// Stop following.
    Unsubscribe {
        task_id: Option<String>,
        session_id: Option<String>,
    },
    /// Cancel a task.
    Cancel { task_id: String },
    /// Liveness.
    Ping { id: Option<serde_json::Value> },
}

pub(super) fn routes(
    s: Arc<Services>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("ws")
        .and(warp::get())
        .and(ws_ctx(s))
        .and(warp::ws())
        .and_then(|c: Ctx, ws: Ws| async move { super::respond(open(c, ws)) })
}

fn open(c: Ctx, ws: Ws) -> Result<warp::reply::Response, ApiError> {
    if !(c.who.allows("tasks") || c.who.allows("read")) {
        return Err(ApiError::forbidden(
            "this API token lacks the `tasks` (or `read`) scope",
        ));
    }
    let limit = c.s.tasks.config().max_input_bytes;
    // Frames up to four times the input limit get an error event; beyond,
    // the connection is closed by the protocol layer.
    Ok(ws
        .max_message_size(limit.saturating_mul(4).max(64 << 10))
        .on_upgrade(move |socket| Connection::new(c, limit).run(socket))
        .into_response())
}

/// A frame on its way out, with the task event it carries (if any).
struct Out(Message, Option<(String, i64)>);

impl From<Message> for Out {
    fn from(m: Message) -> Self {
        Self(m, None)
    }
}

/// One client connection.
struct Connection {
    c: Ctx,
    caller: Caller,
    limit: usize,
    out: mpsc::Sender<Out>,
    outbox: Option<mpsc::Receiver<Out>>,
    /// Closes the connection with a reason (a subscriber that fell behind).
    kill: mpsc::Sender<String>,
    killed: Option<mpsc::Receiver<String>>,
    tasks: HashMap<String, JoinHandle<()>>,
    sessions: HashMap<String, JoinHandle<()>>,
    /// Session watchers report new tasks here.
    created: mpsc::UnboundedSender<String>,
    created_rx: Option<mpsc::UnboundedReceiver<String>>,
}

fn text(value: serde_json::Value) -> Message {
    Message::text(value.to_string())
}

fn error(code: &str, message: impl std::fmt::Display) -> Message {
    text(serde_json::json!({ "type": "error", "code": code, "message": message.to_string() }))
}

fn task_error(e: &TaskError) -> Message {
    let code = match e {
        TaskError::NotFound(_) => "not_found",
        TaskError::Invalid(_) => "invalid_request",
        TaskError::Forbidden(_) => "forbidden",
        TaskError::Conflict(_) => "conflict",
        TaskError::TooMany { .. } => "too_many_tasks",
        TaskError::TooLarge(_) => "payload_too_large",
        TaskError::Failed(_) => "internal",
    };
    error(code, e)
}

impl Connection {
    fn new(c: Ctx, limit: usize) -> Self {
        let (out, outbox) = mpsc::channel(OUTBOX);
        let (created, created_rx) = mpsc::unbounded_channel();
        let (kill, killed) = mpsc::channel(1);
        Self {
            kill,
            killed: Some(killed),
            caller: c.task_caller(),
            c,
            limit,
            out,
            outbox: Some(outbox),
            tasks: HashMap::new(),
            sessions: HashMap::new(),
            created,
            created_rx: Some(created_rx),
        }
    }

    async fn run(mut self, socket: warp::ws::WebSocket) {
        let (mut tx, mut rx) = socket.split();
        let mut outbox = self.outbox.take().unwrap_or_else(|| mpsc::channel(1).1);
        let mut created = self
            .created_rx
            .take()
            .unwrap_or_else(|| mpsc::unbounded_channel().1);
        let mut killed = self.killed.take().unwrap_or_else(|| mpsc::channel(1).1);
        let writer = tokio::spawn(async move {
            // The last seq of each task written to the socket: where a
            // subscriber that is let go resumes.
            let mut written: HashMap<String, i64> = HashMap::new();
            let slow = loop {
                let Out(m, event) = tokio::select! {
                    m = outbox.recv() => match m {
                        Some(m) => m,
                        None => break None,
                    },
                    r = killed.recv() => break r,
                };
                let closing = m.is_close();
                tokio::select! {
                    sent = tx.send(m) => if sent.is_err() || closing { break None },
                    r = killed.recv() => break r,
                }
                if let Some((task, seq)) = event {
                    written.insert(task, seq);
                }
            };
            // A stuck client may never take the close frame: bounded waits.
            if let Some(task) = slow {
                let after = written.get(&task).copied().unwrap_or(0);
                let reason = format!("too slow: resume task {task} with after={after}");
                let close = Message::close_with(CLOSE_TOO_SLOW, truncate(&reason));
                let _ = tokio::time::timeout(Duration::from_secs(5), tx.send(close)).await;
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), tx.close()).await;
        });
        loop {
            tokio::select! {
                incoming = rx.next() => match incoming {
                    Some(Ok(m)) if m.is_text() => self.handle(m.as_bytes()).await,
                    Some(Ok(m)) if m.is_close() => break,
                    Some(Ok(m)) if m.is_binary() => {
                        self.send(error("invalid_request", "send JSON text frames; binary frames are not part of this protocol")).await;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        let _ = self.out.try_send(Message::close_with(1009u16, truncate(&e.to_string())).into());
                        break;
                    }
                    None => break,
                },
                Some(task_id) = created.recv() => {
                    // Already followed (for the `chat`/`exec` that queued it): once is enough.
                    if !self.tasks.contains_key(&task_id) {
                        self.follow(task_id, 0).await;
                    }
                }
                () = self.out.closed() => break,
            }
        }
        for (_, h) in self.tasks.drain().chain(self.sessions.drain()) {
            h.abort();
        }
        drop(self.out);
        let _ = writer.await;
    }

    async fn send(&self, m: Message) {
        let _ = self.out.send(m.into()).await;
    }

    async fn handle(&mut self, bytes: &[u8]) {
        if bytes.len() > self.limit {
            let limit = self.limit;
            self.send(error(
                "payload_too_large",
                format!(
                    "the message is {} bytes; the limit is {limit} ([tasks] max_input_bytes)",
                    bytes.len()
                ),
            ))
            .await;
            return;
        }
        let parsed = serde_json::from_slice::<serde_json::Value>(bytes)
            .map_err(|e| e.to_string())
            .and_then(|v| match v {
                serde_json::Value::Object(mut map) if map.get("type") == Some(&"exec".into()) => {
                    map.remove("type");
                    Ok(Err(map))
                }
                other => serde_json::from_value::<ClientMessage>(other)
                    .map(Ok)
                    .map_err(|e| e.to_string()),
            });
        let message = match parsed {
            Ok(Ok(m)) => m,
            Ok(Err(exec)) => return self.exec(exec).await,
            Err(e) => {
                self.send(error(
                    "invalid_request",
                    format!("not a message of this protocol ({e}); types: chat, exec, subscribe, unsubscribe, cancel, ping"),
                ))
                .await;
                return;
            }
        };
        match message {
            ClientMessage::Ping { id } => {
                self.send(text(serde_json::json!({ "type": "pong", "id": id })))
                    .await;
            }
            ClientMessage::Chat {
                session_id,
                content,
                approve,
                request_id,
            } => {
                if !self.c.who.allows("tasks") {
                    return self
                        .send(error("forbidden", "this API token lacks the `tasks` scope"))
                        .await;
                }
                let session = match self.session_for(session_id).await {
                    Ok(s) => s,
                    Err(e) => return self.send(task_error(&e)).await,
                };
                let posted = self
                    .tasks()
                    .post_message(
                        &self.caller,
                        &session,
                        PostMessage { content, approve },
                        Origin::Ws,
                    )
                    .await;
                let posted = super::tasks::audit_message(&self.c, approve, posted).await;
                self.queued(posted, request_id).await;
            }
            ClientMessage::Subscribe {
                task_id,
                session_id,
                after,
            } => match (task_id, session_id) {
                (Some(t), None) => {
                    if let Err(e) = self.tasks().get(&self.caller, &t).await {
                        return self.send(task_error(&e)).await;
                    }
                    self.follow(t, after.unwrap_or(0).max(0)).await;
                }
                (None, Some(s)) => {
                    if let Err(e) = self.tasks().session(&self.caller, &s).await {
                        return self.send(task_error(&e)).await;
                    }
                    self.watch(s).await;
                }
                _ => {
                    self.send(error(
                        "invalid_request",
                        "subscribe to a `task_id` (with an optional `after`) or a `session_id`",
                    ))
                    .await
                }
            },
            ClientMessage::Unsubscribe {
                task_id,
                session_id,
            } => {
                if let Some(h) = task_id.and_then(|t| self.tasks.remove(&t)) {
                    h.abort();
                }
                if let Some(h) = session_id.and_then(|s| self.sessions.remove(&s)) {
                    h.abort();
                }
            }
            ClientMessage::Cancel { task_id } => {
                if !self.c.who.allows("tasks") {
                    return self
                        .send(error("forbidden", "this API token lacks the `tasks` scope"))
                        .await;
                }
                let result = self.tasks().cancel(&self.caller, &task_id).await;
                let outcome = if result.is_ok() { "ok" } else { "error" };
                self.c
                    .audit(
                        "task.cancel",
                        &format!("task:{task_id}"),
                        outcome,
                        serde_json::json!({}),
                    )
                    .await;
                if let Err(e) = result {
                    self.send(task_error(&e)).await;
                }
            }
        }
    }

    /// `exec`: the frame's other fields (besides `session_id` and
    /// `request_id`) are the command, as for `POST /tasks` with kind `exec`.
    async fn exec(&mut self, mut input: serde_json::Map<String, serde_json::Value>) {
        if !self.c.who.allows("tasks") {
            return self
                .send(error("forbidden", "this API token lacks the `tasks` scope"))
                .await;
        }
        let text = |v: Option<serde_json::Value>| -> Result<Option<String>, String> {
            match v {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s)),
                Some(_) => Err("session_id and request_id are strings".into()),
            }
        };
        let (session_id, request_id) = match (
            text(input.remove("session_id")),
            text(input.remove("request_id")),
        ) {
            (Ok(s), Ok(r)) => (s, r),
            (Err(e), _) | (_, Err(e)) => return self.send(error("invalid_request", e)).await,
        };
        let session = match self.session_for(session_id).await {
            Ok(s) => s,
            Err(e) => return self.send(task_error(&e)).await,
        };
        let req = NewTask {
            kind: TaskKind::Exec,
            session_id: Some(session),
            input: serde_json::Value::Object(input),
        };
        let created = self.tasks().create(&self.caller, req, Origin::Ws).await;
        super::tasks::audit_create(&self.c, "exec", &created).await;
        self.queued(created, request_id).await;
    }

    fn tasks(&self) -> &Arc<Tasks> {
        &self.c.s.tasks
    }

    /// The named session (checked), or a new one announced with `session_created`.
    async fn session_for(&mut self, id: Option<String>) -> Result<String, TaskError> {
        if let Some(id) = id {
            self.tasks().session(&self.caller, &id).await?;
            if !self.sessions.contains_key(&id) {
                self.watch(id.clone()).await;
            }
            return Ok(id);
        }
        let session = self
            .tasks()
            .create_session(&self.caller, NewSession::default())
            .await?;
        self.send(text(serde_json::json!({
            "type": "session_created",
            "session_id": session.id,
            "session": session,
        })))
        .await;
        self.watch(session.id.clone()).await;
        Ok(session.id)
    }

    async fn queued(
        &mut self,
        result: Result<crate::tasks::Task, TaskError>,
        request_id: Option<String>,
    ) {
        match result {
            Ok(task) => {
                self.send(text(serde_json::json!({
                    "type": "message",
                    "task_id": task.id,
                    "session_id": task.session_id,
                    "status": task.status,
                    "request_id": request_id,
                })))
                .await;
                if !self.tasks.contains_key(&task.id) {
                    self.follow(task.id, 0).await;
                }
            }
            Err(e) => self.send(task_error(&e)).await,
        }
    }

    /// Follow a session: its unfinished tasks from their start, new tasks, its title.
    async fn watch(&mut self, session_id: String) {
        if self.sessions.contains_key(&session_id) {
            return;
        }
        let mut notices = self.tasks().hub().watch_session(&session_id);
        let open = self
            .tasks()
            .list(
                &self.caller,
                false,
                crate::store::TaskFilter {
                    session_id: Some(&session_id),
                    ..Default::default()
                },
                None,
                100,
            )
            .await
            .map(|p| p.items)
            .unwrap_or_default();
        let out = self.out.clone();
        let created = self.created.clone();
        let handle = tokio::spawn(async move {
            loop {
                match notices.recv().await {
                    Ok(SessionNotice::TaskCreated { task_id, .. }) => {
                        if created.send(task_id).is_err() {
                            break;
                        }
                    }
                    Ok(n @ SessionNotice::SessionTitle { .. }) => {
                        let v = serde_json::to_value(&n).unwrap_or_default();
                        if out.send(text(v).into()).await.is_err() {
                            break;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break,
                }
            }
        });
        self.sessions.insert(session_id, handle);
        for t in open.into_iter().filter(|t| !t.status.is_final()) {
            if !self.tasks.contains_key(&t.id) {
                self.follow(t.id, 0).await;
            }
        }
    }

    /// Follow one task from after `after`: a `status` snapshot first, then
    /// its events (a follow in progress is replaced).
    async fn follow(&mut self, task_id: String, after: i64) {
        if let Some(h) = self.tasks.remove(&task_id) {
            h.abort();
        }
        let tasks = self.tasks().clone();
        let snapshot = match tasks.get(&self.caller, &task_id).await {
            Ok(t) => t,
            Err(e) => return self.send(task_error(&e)).await,
        };
        let mut follow = match tasks.follow(&self.caller, &task_id, after).await {
            Ok(f) => f,
            Err(e) => return self.send(task_error(&e)).await,
        };
        self.send(text(serde_json::json!({
            "type": "status",
            "snapshot": true,
            "task_id": snapshot.id,
            "seq": snapshot.last_seq,
            "data": { "status": snapshot.status, "task": snapshot },
        })))
        .await;
        let out = self.out.clone();
        let kill = self.kill.clone();
        let patience = Duration::from_secs(tasks.config().slow_subscriber_secs.max(1));
        let handle = tokio::spawn(async move {
            loop {
                match follow.next().await {
                    Ok(Some(event)) => {
                        let frame = Out(
                            text(serde_json::to_value(&event).unwrap_or_default()),
                            Some((event.task_id.clone(), event.seq)),
                        );
                        match tokio::time::timeout(patience, out.send(frame)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => return,
                            Err(_) => {
                                // The client does not read: it never slows the
                                // task; it is let go with where to resume.
                                metrics::counter!("switchyard_ws_slow_subscribers_total")
                                    .increment(1);
                                let _ = kill.try_send(event.task_id.clone());
                                return;
                            }
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        let _ = out.send(error("store_unavailable", &e).into()).await;
                        return;
                    }
                }
            }
        });
        self.tasks.insert(task_id, handle);
    }
}

/// A close reason fits in 123 bytes.
fn truncate(reason: &str) -> String {
    let mut end = reason.len().min(120);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_string()
}
