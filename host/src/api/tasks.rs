//! `/tasks`: queue exec and agent tasks, list and inspect them, cancel them,
//! and read their events — a JSON page, or with `Accept: text/event-stream`
//! a live SSE stream that resumes from `Last-Event-ID`.

use super::error::ApiError;
use super::{Ctx, ListOf, Segment, ctx, json_body, query, reply, respond};
use crate::server::Services;
use crate::store::{TaskFilter, TaskStatus};
use crate::tasks::{Caller, Event, FollowError, NewTask, Origin, Task, TaskError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use warp::http::{HeaderMap, StatusCode};
use warp::{Filter, Rejection, Reply};

/// How often an idle event stream sends a keep-alive comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

impl From<TaskError> for ApiError {
    fn from(e: TaskError) -> Self {
        let (status, code) = match &e {
            TaskError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            TaskError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            TaskError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            TaskError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            TaskError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            TaskError::TooMany { retry_after, .. } => {
                let mut err = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_tasks",
                    e.to_string(),
                );
                err.retry_after = Some(*retry_after);
                return err;
            }
            TaskError::Failed(m) => return ApiError::internal("the task operation", m),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl Ctx {
    /// The caller as the tasks service sees them.
    pub fn task_caller(&self) -> Caller {
        self.sandbox_caller()
    }
}

/// Task list filters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskQuery {
    /// Only tasks in this status.
    pub status: Option<TaskStatus>,
    /// Only this session's tasks.
    #[param(max_length = 64)]
    pub session_id: Option<String>,
    /// Only tasks from this origin (`rest`, `ws`, `mcp`, `webhook`).
    #[param(max_length = 16)]
    pub origin: Option<String>,
    /// Administrators: every user's tasks.
    #[serde(default)]
    pub all: Option<bool>,
    /// Items per page, 1-500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    #[serde(default, deserialize_with = "super::query_number")]
    pub limit: Option<i64>,
    /// The `next` cursor of the previous page.
    #[param(max_length = 200)]
    pub after: Option<String>,
}

/// Where to read events from.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Events after this seq (default 0: from the start). For a stream,
    /// `Last-Event-ID` wins.
    #[param(minimum = 0)]
    #[serde(default, deserialize_with = "super::query_number")]
    pub after: Option<i64>,
    /// Events per page, 1-1000 (default 200; pages only).
    #[param(minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "super::query_number")]
    pub limit: Option<i64>,
}

/// A page of a task's events.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventPage {
    /// The events, in seq order.
    pub items: Vec<Event>,
    /// Pass as `after` for the next page (the last seq here, or the one given).
    pub next_after: i64,
    /// The task's status when the page was read.
    pub status: TaskStatus,
}

/// Task ids are UUIDs: anything longer is not one.
fn check_id(id: &str) -> Result<(), ApiError> {
    if id.len() > 64 {
        return Err(ApiError::not_found(format!(
            "no task `{}…`",
            id.chars().take(64).collect::<String>()
        )));
    }
    Ok(())
}

pub(super) fn routes(
    s: Arc<Services>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let base = warp::path("tasks");
    let list = base
        .and(warp::path::end())
        .and(warp::get())
        .and(ctx(s.clone()))
        .and(query::<TaskQuery>())
        .and_then(|c, q| async move { respond(list(c, q).await) });
    let create = base
        .and(warp::path::end())
        .and(warp::post())
        .and(ctx(s.clone()))
        .and(json_body())
        .and_then(|c, b| async move { respond(create(c, b).await) });
    let get = warp::path!("tasks" / Segment)
        .and(warp::get())
        .and(ctx(s.clone()))
        .and_then(|id: Segment, c| async move { respond(get(c, id.0).await) });
    let cancel = warp::path!("tasks" / Segment / "cancel")
        .and(warp::post())
        .and(ctx(s.clone()))
        .and_then(|id: Segment, c| async move { respond(cancel(c, id.0).await) });
    let events = warp::path!("tasks" / Segment / "events")
        .and(warp::get())
        .and(ctx(s))
        .and(query::<EventsQuery>())
        .and(warp::header::headers_cloned())
        .and_then(|id: Segment, c, q, h| async move { respond(events(c, id.0, q, h).await) });
    list.or(create)
        .unify()
        .or(get)
        .unify()
        .or(cancel)
        .unify()
        .or(events)
        .unify()
}

/// Queue a task: `exec` runs a command in the session's sandbox, `agent` a
/// model turn. Without `session_id` a new session is created.
#[utoipa::path(post, path = "/api/v1/tasks", tag = "tasks", request_body = NewTask, security(("bearer" = [])),
    responses((status = 202, description = "Queued", body = Task), (status = 400, body = super::error::ErrorBody),
              (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
              (status = 404, description = "No such session", body = super::error::ErrorBody),
              (status = 409, description = "The session's busy_policy is `reject` and it has a task", body = super::error::ErrorBody),
              (status = 413, body = super::error::ErrorBody),
              (status = 429, description = "Too many queued tasks (see Retry-After)", body = super::error::ErrorBody)))]
pub async fn create(c: Ctx, body: NewTask) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("tasks")?;
    let kind = body.kind;
    let result = c.s.tasks.create(&c.task_caller(), body, Origin::Rest).await;
    audit_create(&c, kind.as_str(), &result).await;
    Ok(reply(StatusCode::ACCEPTED, &result?))
}

/// Record a task creation in the audit log.
pub(super) async fn audit_create(c: &Ctx, kind: &str, result: &Result<Task, TaskError>) {
    let (outcome, target, details) = match result {
        Ok(t) => (
            "ok",
            format!("task:{}", t.id),
            serde_json::json!({ "kind": kind, "session_id": t.session_id }),
        ),
        Err(e) => (
            "error",
            "task".to_string(),
            serde_json::json!({ "kind": kind, "reason": e.to_string() }),
        ),
    };
    c.audit("task.create", &target, outcome, details).await;
}

/// Record a posted message in the audit log: an answer to a waiting task
/// (`task.answer`, with the approval given) or a new task (`task.create`).
pub(super) async fn audit_message(
    c: &Ctx,
    approve: Option<bool>,
    result: Result<(Task, bool), TaskError>,
) -> Result<Task, TaskError> {
    match result {
        Ok((task, true)) => {
            c.audit(
                "task.answer",
                &format!("task:{}", task.id),
                "ok",
                serde_json::json!({ "approve": approve }),
            )
            .await;
            Ok(task)
        }
        Ok((task, false)) => {
            let result = Ok(task);
            audit_create(c, "agent", &result).await;
            result
        }
        Err(e) => {
            let result = Err(e);
            audit_create(c, "agent", &result).await;
            result
        }
    }
}

/// The caller's tasks, newest first (everyone's for an administrator with `all=true`).
#[utoipa::path(get, path = "/api/v1/tasks", tag = "tasks", params(TaskQuery), security(("bearer" = [])),
    responses((status = 200, body = ListOf<Task>), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody)))]
pub async fn list(c: Ctx, q: TaskQuery) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    let paging = super::Paging {
        limit: q.limit,
        after: q.after.clone(),
    };
    if q.session_id
        .as_ref()
        .is_some_and(|s| !super::max_chars(s, 64))
        || q.origin.as_ref().is_some_and(|s| !super::max_chars(s, 16))
    {
        return Err(ApiError::bad_request("session_id or origin is too long"));
    }
    let filter = TaskFilter {
        owner_id: None,
        session_id: q.session_id.as_deref(),
        status: q.status,
        origin: q.origin.as_deref(),
    };
    let page =
        c.s.tasks
            .list(
                &c.task_caller(),
                q.all == Some(true),
                filter,
                paging.after()?,
                paging.limit()?,
            )
            .await?;
    Ok(reply(
        StatusCode::OK,
        &ListOf {
            items: page.items,
            next: page.next,
        },
    ))
}

/// One task.
#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "tasks", params(("id" = String, Path, description = "Task id")), security(("bearer" = [])),
    responses((status = 200, body = Task), (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn get(c: Ctx, id: String) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    check_id(&id)?;
    Ok(reply(
        StatusCode::OK,
        &c.s.tasks.get(&c.task_caller(), &id).await?,
    ))
}

/// Cancel a task: a queued one at once, a running one as soon as its step or
/// command is interrupted (the sandbox stays usable). A finished task is a 409.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/cancel", tag = "tasks", params(("id" = String, Path, description = "Task id")), security(("bearer" = [])),
    responses((status = 202, description = "Canceled, or being canceled", body = Task), (status = 401, body = super::error::ErrorBody),
              (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody),
              (status = 409, description = "Already finished", body = super::error::ErrorBody)))]
pub async fn cancel(c: Ctx, id: String) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("tasks")?;
    check_id(&id)?;
    let result = c.s.tasks.cancel(&c.task_caller(), &id).await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    c.audit(
        "task.cancel",
        &format!("task:{id}"),
        outcome,
        serde_json::json!({}),
    )
    .await;
    Ok(reply(StatusCode::ACCEPTED, &result?))
}

/// A task's events after `after`: a JSON page, or with `Accept:
/// text/event-stream` a live stream (event id = seq, type = event type; it
/// resumes after `Last-Event-ID` and ends after `done`).
#[utoipa::path(get, path = "/api/v1/tasks/{id}/events", tag = "tasks", params(("id" = String, Path, description = "Task id"), EventsQuery), security(("bearer" = [])),
    responses((status = 200, description = "A page of events (or, with `Accept: text/event-stream`, an SSE stream of them)",
                content((EventPage = "application/json"), (String = "text/event-stream"))),
              (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn events(
    c: Ctx,
    id: String,
    q: EventsQuery,
    headers: HeaderMap,
) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    check_id(&id)?;
    let after = q.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::bad_request("after must be 0 or more"));
    }
    let wants_stream = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    if wants_stream {
        let resume = match headers.get("last-event-id") {
            None => after,
            Some(v) => v
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| ApiError::bad_request("Last-Event-ID must be an event seq"))?,
        };
        let follow = c.s.tasks.follow(&c.task_caller(), &id, resume).await?;
        let patience = Duration::from_secs(c.s.tasks.config().slow_subscriber_secs.max(1));
        return Ok(sse(follow, patience));
    }
    let limit = super::seq_page_limit(q.limit)?;
    let caller = c.task_caller();
    let items = c.s.tasks.events(&caller, &id, after, limit).await?;
    let status = c.s.tasks.get(&caller, &id).await?.status;
    let next_after = items.last().map_or(after, |e| e.seq);
    Ok(reply(
        StatusCode::OK,
        &EventPage {
            items,
            next_after,
            status,
        },
    ))
}

fn sse(mut follow: crate::tasks::Follow, patience: Duration) -> warp::reply::Response {
    use warp::sse::Event as Sse;
    let (tx, rx) = tokio::sync::mpsc::channel::<Sse>(64);
    tokio::spawn(async move {
        loop {
            let frame = match follow.next().await {
                Ok(Some(event)) => Sse::default()
                    .id(event.seq.to_string())
                    .event(event.kind.clone())
                    .json_data(&event)
                    .unwrap_or_else(|_| Sse::default().comment("unencodable event")),
                Ok(None) => return,
                Err(FollowError::Store(e)) => {
                    let data = serde_json::json!({ "code": "store_unavailable", "message": e.to_string(), "after": follow.cursor() });
                    let _ = tx
                        .send(Sse::default().event("error").data(data.to_string()))
                        .await;
                    return;
                }
            };
            // A reader that takes nothing for `patience` is let go; it
            // resumes with Last-Event-ID.
            if !matches!(
                tokio::time::timeout(patience, tx.send(frame)).await,
                Ok(Ok(()))
            ) {
                return;
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let frame = rx.recv().await?;
        Some((Ok::<_, std::convert::Infallible>(frame), rx))
    });
    warp::sse::reply(warp::sse::keep_alive().interval(KEEP_ALIVE).stream(stream)).into_response()
}
