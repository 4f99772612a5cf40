//! MCP tasks (protocol 2025-11-25) on switchyard's durable task queue: a
//! task-augmented `tools/call` of `task_run` queues a switchyard task and is
//! answered at once with `CreateTaskResult`; `tasks/get`, `tasks/result`,
//! `tasks/list` and `tasks/cancel` read and steer the same task. The MCP task
//! id is the switchyard task id, so a task outlives the session and the host.
//!
//! rmcp 3.9 models only the later `io.modelcontextprotocol/tasks` extension
//! (SEP-2663), so these messages are answered here, on the HTTP face, before
//! rmcp sees them; [`patch`] adds the `tasks` capability to `initialize` and
//! `execution.taskSupport` to `task_run` in `tools/list`.

use super::hub::Hub;
use super::task_tools;
use crate::auth::Identity;
use crate::server::Services;
use crate::store::{TaskFilter, TaskStatus};
use crate::tasks::{Caller, Origin, Task, TaskError};
use rmcp::model::{CustomNotification, ServerNotification};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;
use warp::Reply;

/// The only tool whose calls may be task-augmented (`taskSupport: "optional"`).
pub const TASK_TOOL: &str = "task_run";
/// The polling interval suggested to clients (ms).
pub const POLL_INTERVAL_MS: u64 = 1000;
/// Tasks per `tasks/list` page.
const PAGE: usize = 50;
/// The `_meta` key that ties a result to its task.
const RELATED_TASK: &str = "io.modelcontextprotocol/related-task";
/// The status notification's method.
const STATUS_NOTIFICATION: &str = "notifications/tasks/status";
/// How long a session is sent status notifications for one task.
const WATCH_LIMIT: Duration = Duration::from_secs(3600);

/// A JSON-RPC error of the task methods.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// Bad params, an unknown (or someone else's) task, a finished task to cancel: -32602.
    #[error("{0}")]
    InvalidParams(String),
    /// A tool that cannot run as a task: -32601.
    #[error("{0}")]
    MethodNotFound(String),
    /// The credential lacks a scope: -32600.
    #[error("{0}")]
    InvalidRequest(String),
    /// The store failed: -32603.
    #[error("{0}")]
    Internal(String),
}

impl RpcError {
    /// The JSON-RPC error code.
    pub fn code(&self) -> i32 {
        match self {
            Self::InvalidParams(_) => -32602,
            Self::MethodNotFound(_) => -32601,
            Self::InvalidRequest(_) => -32600,
            Self::Internal(_) => -32603,
        }
    }
}

impl From<TaskError> for RpcError {
    fn from(e: TaskError) -> Self {
        match e {
            TaskError::NotFound(m)
            | TaskError::Invalid(m)
            | TaskError::Forbidden(m)
            | TaskError::Conflict(m)
            | TaskError::TooLarge(m) => Self::InvalidParams(m),
            TaskError::TooMany { message, .. } => Self::InvalidRequest(message),
            TaskError::Failed(m) => Self::Internal(m),
        }
    }
}

/// One JSON-RPC request this module answers.
struct Request {
    id: Value,
    method: String,
    params: Map<String, Value>,
}

/// The request in `body` when it is a task message: a `tools/call` carrying
/// `task`, or a `tasks/*` method. Anything else (or malformed) goes on to rmcp.
fn parse(body: &[u8]) -> Option<Request> {
    if !body.starts_with(b"{") {
        return None;
    }
    let mut message: Map<String, Value> = serde_json::from_slice(body).ok()?;
    if message.get("jsonrpc")? != "2.0" {
        return None;
    }
    let id = message
        .remove("id")
        .filter(|id| id.is_string() || id.is_i64())?;
    let method = message.get("method")?.as_str()?.to_string();
    let params = match message.remove("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p,
        Some(_) => return None,
    };
    let ours = match method.as_str() {
        "tools/call" => params.contains_key("task"),
        "tasks/get" | "tasks/result" | "tasks/list" | "tasks/cancel" => true,
        _ => false,
    };
    ours.then_some(Request { id, method, params })
}

/// Answer `body` when it is a task message from `who` (in HTTP session
/// `session`, if any); `None` hands it to rmcp.
pub async fn answer(
    s: &Arc<Services>,
    hub: &Arc<Hub>,
    session: Option<&str>,
    who: &Identity,
    body: &[u8],
) -> Option<warp::reply::Response> {
    let request = parse(body)?;
    // MCP tasks are bound to their creator, administrators included.
    let caller = Caller {
        user_id: who.user.id.clone(),
        admin: false,
    };
    let params = &request.params;
    let outcome = match request.method.as_str() {
        "tools/call" => create(s, hub, session, who, &caller, params).await,
        "tasks/get" => get(s, who, &caller, params).await,
        "tasks/result" => result(s, who, &caller, params).await,
        "tasks/list" => list(s, who, &caller, params).await,
        _ => cancel(s, who, &caller, params).await,
    };
    let message = match outcome {
        Ok(result) => json!({ "jsonrpc": "2.0", "id": request.id, "result": result }),
        Err(e) => json!({ "jsonrpc": "2.0", "id": request.id,
            "error": { "code": e.code(), "message": e.to_string() } }),
    };
    Some(warp::reply::json(&message).into_response())
}

fn require(who: &Identity, scope: &str) -> Result<(), RpcError> {
    if who.allows(scope) {
        Ok(())
    } else {
        Err(RpcError::InvalidRequest(format!(
            "this API token lacks the `{scope}` scope"
        )))
    }
}

fn task_id(params: &Map<String, Value>) -> Result<&str, RpcError> {
    params
        .get("taskId")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty() && id.len() <= 64)
        .ok_or_else(|| RpcError::InvalidParams("`taskId` must be a task id (a string)".into()))
}

/// `tools/call` with `task`: queue a `task_run` task and answer `CreateTaskResult`.
async fn create(
    s: &Arc<Services>,
    hub: &Arc<Hub>,
    session: Option<&str>,
    who: &Identity,
    caller: &Caller,
    params: &Map<String, Value>,
) -> Result<Value, RpcError> {
    let Some(Value::Object(task)) = params.get("task") else {
        return Err(RpcError::InvalidParams(
            "`task` must be an object, e.g. {\"ttl\": 60000}".into(),
        ));
    };
    if task.get("ttl").is_some_and(|t| !t.is_null() && !t.is_u64()) {
        return Err(RpcError::InvalidParams(
            "`task.ttl` must be a number of milliseconds".into(),
        ));
    }
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::InvalidParams("tools/call needs `name`".into()))?;
    if name != TASK_TOOL {
        return Err(RpcError::MethodNotFound(format!(
            "tool `{name}` cannot run as a task (its taskSupport is forbidden): call it without `task`, or queue work with `{TASK_TOOL}`"
        )));
    }
    require(who, "tasks")?;
    let args = match params.get("arguments") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(a)) => a.clone(),
        Some(_) => {
            return Err(RpcError::InvalidParams(
                "`arguments` must be an object".into(),
            ));
        }
    };
    let new = task_tools::new_task(&args).map_err(RpcError::InvalidParams)?;
    let created = s.tasks.create(caller, new, Origin::Mcp).await;
    task_tools::audit(s, who, "task.create", &created).await;
    let task = created?;
    if let Some(session) = session {
        watch(s, hub, session, caller, &task.id);
    }
    Ok(json!({ "task": wire(&task) }))
}

async fn get(
    s: &Services,
    who: &Identity,
    caller: &Caller,
    params: &Map<String, Value>,
) -> Result<Value, RpcError> {
    require(who, "read")?;
    Ok(wire(&s.tasks.get(caller, task_id(params)?).await?))
}

/// `tasks/result`: wait until the task is final, then the `task_run` result.
async fn result(
    s: &Services,
    who: &Identity,
    caller: &Caller,
    params: &Map<String, Value>,
) -> Result<Value, RpcError> {
    require(who, "read")?;
    let id = task_id(params)?;
    let task = final_task(s, caller, id, None).await?;
    let mut result = task_tools::task_result(task);
    result.result_type = None;
    let mut value = serde_json::to_value(result).map_err(|e| RpcError::Internal(e.to_string()))?;
    value["_meta"] = json!({ RELATED_TASK: { "taskId": id } });
    Ok(value)
}

/// The task once final (or when `limit` passes, as it is then).
async fn final_task(
    s: &Services,
    caller: &Caller,
    id: &str,
    limit: Option<Duration>,
) -> Result<Task, RpcError> {
    let started = std::time::Instant::now();
    loop {
        let task = s.tasks.get(caller, id).await?;
        let left = limit.map(|l| l.saturating_sub(started.elapsed()));
        if task.status.is_final() || left.is_some_and(|l| l.is_zero()) {
            return Ok(task);
        }
        // Follow from the last seq seen: a `done` after it ends the wait; the
        // periodic re-read covers a follower that fails.
        let mut follow = s.tasks.follow(caller, id, task.last_seq).await?;
        let step = left.unwrap_or(Duration::MAX).min(Duration::from_secs(5));
        let _ = tokio::time::timeout(step, async {
            while let Ok(Some(event)) = follow.next().await {
                if event.is_done() {
                    break;
                }
            }
        })
        .await;
    }
}

/// `tasks/list`: a page of the caller's tasks, newest first.
async fn list(
    s: &Services,
    who: &Identity,
    caller: &Caller,
    params: &Map<String, Value>,
) -> Result<Value, RpcError> {
    require(who, "read")?;
    let cursor = match params.get("cursor") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) => Some(c.as_str()),
        Some(_) => return Err(RpcError::InvalidParams("`cursor` must be a string".into())),
    };
    let page = s
        .tasks
        .list(caller, false, TaskFilter::default(), cursor, PAGE)
        .await?;
    let mut out = json!({ "tasks": page.items.iter().map(wire).collect::<Vec<_>>() });
    if let Some(next) = page.next {
        out["nextCursor"] = next.into();
    }
    Ok(out)
}

/// `tasks/cancel`: cancel an unfinished task (a finished one is -32602).
async fn cancel(
    s: &Services,
    who: &Identity,
    caller: &Caller,
    params: &Map<String, Value>,
) -> Result<Value, RpcError> {
    require(who, "tasks")?;
    let id = task_id(params)?;
    let canceled = s.tasks.cancel(caller, id).await;
    task_tools::audit(s, who, "task.cancel", &canceled).await;
    let task = canceled?;
    // A running command stops shortly: answer with its final state.
    let task = if task.status.is_final() {
        task
    } else {
        final_task(s, caller, id, Some(Duration::from_secs(10))).await?
    };
    Ok(wire(&task))
}

/// Send `notifications/tasks/status` to the session whenever the task's status changes.
fn watch(s: &Arc<Services>, hub: &Arc<Hub>, session: &str, caller: &Caller, id: &str) {
    let Some(peer) = hub.attached(session).map(|a| a.peer) else {
        return;
    };
    let (s, caller, id) = (s.clone(), caller.clone(), id.to_string());
    let watching = async move {
        let Ok(mut follow) = s.tasks.follow(&caller, &id, 0).await else {
            return;
        };
        while let Ok(Some(event)) = follow.next().await {
            if event.kind != "status" {
                continue;
            }
            let Ok(task) = s.tasks.get(&caller, &id).await else {
                return;
            };
            let note = CustomNotification::new(STATUS_NOTIFICATION, Some(wire(&task)));
            let sent = peer
                .send_notification(ServerNotification::CustomNotification(note))
                .await;
            if sent.is_err() || task.status.is_final() {
                return;
            }
        }
    };
    tokio::spawn(async move {
        let _ = tokio::time::timeout(WATCH_LIMIT, watching).await;
    });
}

/// A switchyard task as an MCP `Task`.
pub fn wire(task: &Task) -> Value {
    let status = match task.status {
        TaskStatus::Pending | TaskStatus::Running => "working",
        TaskStatus::InputRequired => "input_required",
        TaskStatus::Completed => "completed",
        TaskStatus::Failed => "failed",
        TaskStatus::Canceled => "cancelled",
    };
    let updated = [Some(task.queued_at), task.started_at, task.finished_at]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(task.queued_at);
    let mut out = json!({
        "taskId": task.id,
        "status": status,
        "createdAt": iso8601(task.queued_at),
        "lastUpdatedAt": iso8601(updated),
        "ttl": null,
        "pollInterval": POLL_INTERVAL_MS,
    });
    let message = match (&task.error, task.status) {
        (Some(error), _) => Some(error.message.clone()),
        (None, TaskStatus::InputRequired) => Some(format!(
            "waiting for input: see task_status for what it asks, and answer in session {}",
            task.session_id
        )),
        _ => None,
    };
    if let Some(message) = message {
        out["statusMessage"] = message.into();
    }
    out
}

/// Milliseconds since the epoch as ISO 8601 UTC (`2026-01-02T03:04:05.678Z`).
pub fn iso8601(ms: i64) -> String {
    let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, sec, milli) = (
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{sec:02}.{milli:03}Z")
}

/// Which rmcp answers [`patch`] must amend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patch {
    /// `initialize`: add the `tasks` capability.
    Initialize,
    /// `tools/list`: mark `task_run` `taskSupport: "optional"`.
    ToolsList,
}

/// Whether the answer to `body` needs a [`Patch`].
pub fn needs_patch(body: &[u8]) -> Option<Patch> {
    #[derive(serde::Deserialize)]
    struct Method<'a> {
        #[serde(borrow)]
        method: &'a str,
    }
    match serde_json::from_slice::<Method<'_>>(body).ok()?.method {
        "initialize" => Some(Patch::Initialize),
        "tools/list" => Some(Patch::ToolsList),
        _ => None,
    }
}

/// Amend one rmcp answer message (a no-op for errors and other messages).
fn amend(patch: Patch, message: &mut Value) {
    let Some(result) = message.get_mut("result").and_then(Value::as_object_mut) else {
        return;
    };
    match patch {
        Patch::Initialize => {
            if let Some(caps) = result
                .get_mut("capabilities")
                .and_then(Value::as_object_mut)
            {
                caps.insert(
                    "tasks".into(),
                    json!({ "list": {}, "cancel": {}, "requests": { "tools": { "call": {} } } }),
                );
            }
        }
        Patch::ToolsList => {
            let tools = result.get_mut("tools").and_then(Value::as_array_mut);
            for tool in tools.into_iter().flatten() {
                if tool["name"] == TASK_TOOL {
                    tool["execution"] = json!({ "taskSupport": "optional" });
                }
            }
        }
    }
}

/// Amend a response body: one JSON message, or an SSE stream of them.
pub fn patch(kind: Patch, body: &[u8]) -> Vec<u8> {
    if let Ok(mut message) = serde_json::from_slice::<Value>(body) {
        amend(kind, &mut message);
        return serde_json::to_vec(&message).unwrap_or_else(|_| body.to_vec());
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return body.to_vec();
    };
    let lines = text.split('\n').map(|line| {
        let parsed = line
            .strip_prefix("data:")
            .and_then(|d| serde_json::from_str::<Value>(d.trim()).ok());
        match parsed {
            Some(mut message) => {
                amend(kind, &mut message);
                format!("data: {message}")
            }
            None => line.to_string(),
        }
    });
    lines.collect::<Vec<_>>().join("\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_formats_utc() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso8601(1_798_761_599_999), "2026-12-31T23:59:59.999Z");
    }

    #[test]
    fn sse_answers_are_amended() {
        let body =
            "id: 0\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"capabilities\":{}}}\n\n";
        let out = String::from_utf8(patch(Patch::Initialize, body.as_bytes())).unwrap();
        assert!(out.starts_with("id: 0\ndata: {"), "{out}");
        assert!(
            out.contains("\"requests\":{\"tools\":{\"call\":{}}}"),
            "{out}"
        );
        assert!(out.ends_with("}\n\n"), "{out}");
    }
}
