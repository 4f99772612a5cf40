//! `/sessions`: create, list, inspect, change, archive and delete sessions;
//! read a session's message history and post a message (a new agent turn, or
//! the answer its waiting task asked for).

use super::error::ApiError;
use super::{Ctx, ListOf, Segment, ctx, json_body, query, reply, respond};
use crate::server::Services;
use crate::tasks::sessions::{HistoryMessage, NewSession, PostMessage, Session, SessionPatch};
use crate::tasks::{Origin, Task};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

/// Session list filters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionQuery {
    /// Archived sessions instead of active ones.
    #[serde(default)]
    pub archived: Option<bool>,
    /// Only sessions whose title contains this (case-insensitive).
    #[param(max_length = 200)]
    pub q: Option<String>,
    /// Administrators: every user's sessions.
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

/// Where to read the history from.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Messages after this seq (default 0).
    #[param(minimum = 0)]
    #[serde(default, deserialize_with = "super::query_number")]
    pub after: Option<i64>,
    /// Messages per page, 1-1000 (default 200).
    #[param(minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "super::query_number")]
    pub limit: Option<i64>,
}

/// A page of a session's history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryPage {
    /// Messages in order.
    pub items: Vec<HistoryMessage>,
    /// Pass as `after` for the next page.
    pub next_after: i64,
}

/// What posting a message started.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Posted {
    /// The task that handles it (new, or the one that waited for this answer).
    pub task_id: String,
    /// That task.
    pub task: Task,
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if id.len() > 64 {
        return Err(ApiError::not_found("no such session"));
    }
    Ok(())
}

pub(super) fn routes(
    s: Arc<Services>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let base = warp::path("sessions");
    let list = base
        .and(warp::path::end())
        .and(warp::get())
        .and(ctx(s.clone()))
        .and(query::<SessionQuery>())
        .and_then(|c, q| async move { respond(list(c, q).await) });
    let create = base
        .and(warp::path::end())
        .and(warp::post())
        .and(ctx(s.clone()))
        .and(json_body())
        .and_then(|c, b| async move { respond(create(c, b).await) });
    let one = warp::path!("sessions" / Segment);
    let get = one
        .and(warp::get())
        .and(ctx(s.clone()))
        .and_then(|id: Segment, c| async move { respond(get(c, id.0).await) });
    let update = one
        .and(warp::patch())
        .and(ctx(s.clone()))
        .and(json_body())
        .and_then(|id: Segment, c, b| async move { respond(update(c, id.0, b).await) });
    let delete = one
        .and(warp::delete())
        .and(ctx(s.clone()))
        .and_then(|id: Segment, c| async move { respond(delete(c, id.0).await) });
    let messages = warp::path!("sessions" / Segment / "messages");
    let history = messages
        .and(warp::get())
        .and(ctx(s.clone()))
        .and(query::<HistoryQuery>())
        .and_then(|id: Segment, c, q| async move { respond(history(c, id.0, q).await) });
    let post = messages
        .and(warp::post())
        .and(ctx(s))
        .and(json_body())
        .and_then(|id: Segment, c, b| async move { respond(post(c, id.0, b).await) });
    list.or(create)
        .unify()
        .or(get)
        .unify()
        .or(update)
        .unify()
        .or(delete)
        .unify()
        .or(history)
        .unify()
        .or(post)
        .unify()
}

/// The caller's sessions, newest first.
#[utoipa::path(get, path = "/api/v1/sessions", tag = "sessions", params(SessionQuery), security(("bearer" = [])),
    responses((status = 200, body = ListOf<Session>), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody)))]
pub async fn list(c: Ctx, q: SessionQuery) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    let paging = super::Paging {
        limit: q.limit,
        after: q.after,
    };
    if q.q.as_ref().is_some_and(|s| !super::max_chars(s, 200)) {
        return Err(ApiError::bad_request("q is at most 200 characters"));
    }
    let page =
        c.s.tasks
            .sessions(
                &c.task_caller(),
                q.all == Some(true),
                q.archived == Some(true),
                q.q.as_deref().filter(|s| !s.is_empty()),
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

/// Create a session (from an agent profile, or your default one).
#[utoipa::path(post, path = "/api/v1/sessions", tag = "sessions", request_body = NewSession, security(("bearer" = [])),
    responses((status = 201, body = Session), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
              (status = 403, body = super::error::ErrorBody), (status = 404, description = "No such agent profile", body = super::error::ErrorBody)))]
pub async fn create(c: Ctx, body: NewSession) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("tasks")?;
    let session = c.s.tasks.create_session(&c.task_caller(), body).await?;
    Ok(reply(StatusCode::CREATED, &session))
}

/// One session.
#[utoipa::path(get, path = "/api/v1/sessions/{id}", tag = "sessions", params(("id" = String, Path, description = "Session id")), security(("bearer" = [])),
    responses((status = 200, body = Session), (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn get(c: Ctx, id: String) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    check_id(&id)?;
    Ok(reply(
        StatusCode::OK,
        &c.s.tasks.session(&c.task_caller(), &id).await?,
    ))
}

/// Change a session: title, instructions, model, skills, busy policy, archived.
#[utoipa::path(patch, path = "/api/v1/sessions/{id}", tag = "sessions", params(("id" = String, Path, description = "Session id")), request_body = SessionPatch, security(("bearer" = [])),
    responses((status = 200, body = Session), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
              (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn update(
    c: Ctx,
    id: String,
    body: SessionPatch,
) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("tasks")?;
    check_id(&id)?;
    let session =
        c.s.tasks
            .update_session(&c.task_caller(), &id, body)
            .await?;
    Ok(reply(StatusCode::OK, &session))
}

/// Delete a session: its unfinished tasks are canceled; its history, tasks
/// and events are removed; its sandbox stays (delete it at /sandboxes).
#[utoipa::path(delete, path = "/api/v1/sessions/{id}", tag = "sessions", params(("id" = String, Path, description = "Session id")), security(("bearer" = [])),
    responses((status = 204, description = "Deleted"), (status = 401, body = super::error::ErrorBody),
              (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn delete(c: Ctx, id: String) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("tasks")?;
    check_id(&id)?;
    let result = c.s.tasks.delete_session(&c.task_caller(), &id).await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    c.audit(
        "session.delete",
        &format!("session:{id}"),
        outcome,
        serde_json::json!({}),
    )
    .await;
    result?;
    Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
}

/// A session's message history (user, assistant, tool results), oldest first.
#[utoipa::path(get, path = "/api/v1/sessions/{id}/messages", tag = "sessions", params(("id" = String, Path, description = "Session id"), HistoryQuery), security(("bearer" = [])),
    responses((status = 200, body = HistoryPage), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
              (status = 404, body = super::error::ErrorBody)))]
pub async fn history(
    c: Ctx,
    id: String,
    q: HistoryQuery,
) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    check_id(&id)?;
    let after = q.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::bad_request("after must be 0 or more"));
    }
    let limit = super::seq_page_limit(q.limit)?;
    let items =
        c.s.tasks
            .history(&c.task_caller(), &id, after, limit)
            .await?;
    let next_after = items.last().map_or(after, |m| m.seq);
    Ok(reply(StatusCode::OK, &HistoryPage { items, next_after }))
}

/// Post a message: it answers the session's task that waits for input
/// (a question, or an approval with `approve`), or else starts an agent task.
#[utoipa::path(post, path = "/api/v1/sessions/{id}/messages", tag = "sessions", params(("id" = String, Path, description = "Session id")), request_body = PostMessage, security(("bearer" = [])),
    responses((status = 202, description = "Queued", body = Posted), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
              (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody),
              (status = 409, body = super::error::ErrorBody), (status = 413, body = super::error::ErrorBody),
              (status = 429, body = super::error::ErrorBody)))]
pub async fn post(
    c: Ctx,
    id: String,
    body: PostMessage,
) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("tasks")?;
    check_id(&id)?;
    let approve = body.approve;
    let result =
        c.s.tasks
            .post_message(&c.task_caller(), &id, body, Origin::Rest)
            .await;
    let task = super::tasks::audit_message(&c, approve, result).await?;
    Ok(reply(
        StatusCode::ACCEPTED,
        &Posted {
            task_id: task.id.clone(),
            task,
        },
    ))
}
