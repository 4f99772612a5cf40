//! `/agents`: agent profiles — create, list (your own and shared ones),
//! inspect, change and delete; every change is audited.

use super::error::ApiError;
use super::{Ctx, Segment, ctx, json_body, reply, respond};
use crate::server::Services;
use crate::tasks::agents::{Agent, AgentSpec};
use serde::Serialize;
use std::sync::Arc;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

/// The profiles you may use.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentList {
    /// Your own and the shared ones, by name.
    pub items: Vec<Agent>,
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if id.len() > 64 {
        return Err(ApiError::not_found("no such agent"));
    }
    Ok(())
}

pub(super) fn routes(
    s: Arc<Services>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let base = warp::path("agents");
    let list = base
        .and(warp::path::end())
        .and(warp::get())
        .and(ctx(s.clone()))
        .and_then(|c| async move { respond(list(c).await) });
    let create = base
        .and(warp::path::end())
        .and(warp::post())
        .and(ctx(s.clone()))
        .and(json_body())
        .and_then(|c, b| async move { respond(create(c, b).await) });
    let one = warp::path!("agents" / Segment);
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
        .and(ctx(s))
        .and_then(|id: Segment, c| async move { respond(delete(c, id.0).await) });
    list.or(create)
        .unify()
        .or(get)
        .unify()
        .or(update)
        .unify()
        .or(delete)
        .unify()
}

async fn audited<T>(
    c: &Ctx,
    action: &str,
    target: &str,
    result: Result<T, crate::tasks::TaskError>,
) -> Result<T, ApiError> {
    let outcome = if result.is_ok() { "ok" } else { "error" };
    c.audit(action, target, outcome, serde_json::json!({}))
        .await;
    Ok(result?)
}

/// Your agent profiles and the shared ones.
#[utoipa::path(get, path = "/api/v1/agents", tag = "agents", security(("bearer" = [])),
    responses((status = 200, body = AgentList), (status = 401, body = super::error::ErrorBody)))]
pub async fn list(c: Ctx) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    let items = c.s.tasks.agents(&c.task_caller()).await?;
    Ok(reply(StatusCode::OK, &AgentList { items }))
}

/// Create an agent profile.
#[utoipa::path(post, path = "/api/v1/agents", tag = "agents", request_body = AgentSpec, security(("bearer" = [])),
    responses((status = 201, body = Agent), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
              (status = 403, body = super::error::ErrorBody), (status = 409, description = "You have a profile of that name", body = super::error::ErrorBody)))]
pub async fn create(c: Ctx, body: AgentSpec) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("tasks")?;
    let result = c.s.tasks.create_agent(&c.task_caller(), body).await;
    let target = result
        .as_ref()
        .map_or_else(|_| "agent".to_string(), |a| format!("agent:{}", a.id));
    let agent = audited(&c, "agent.create", &target, result).await?;
    Ok(reply(StatusCode::CREATED, &agent))
}

/// One agent profile (yours or a shared one).
#[utoipa::path(get, path = "/api/v1/agents/{id}", tag = "agents", params(("id" = String, Path, description = "Agent id")), security(("bearer" = [])),
    responses((status = 200, body = Agent), (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn get(c: Ctx, id: String) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    check_id(&id)?;
    Ok(reply(
        StatusCode::OK,
        &c.s.tasks.agent(&c.task_caller(), &id).await?,
    ))
}

/// Change one of your agent profiles.
#[utoipa::path(patch, path = "/api/v1/agents/{id}", tag = "agents", params(("id" = String, Path, description = "Agent id")), request_body = AgentSpec, security(("bearer" = [])),
    responses((status = 200, body = Agent), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
              (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn update(
    c: Ctx,
    id: String,
    body: AgentSpec,
) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("tasks")?;
    check_id(&id)?;
    let result = c.s.tasks.update_agent(&c.task_caller(), &id, body).await;
    let agent = audited(&c, "agent.update", &format!("agent:{id}"), result).await?;
    Ok(reply(StatusCode::OK, &agent))
}

/// Delete one of your agent profiles (sessions started from it keep their settings).
#[utoipa::path(delete, path = "/api/v1/agents/{id}", tag = "agents", params(("id" = String, Path, description = "Agent id")), security(("bearer" = [])),
    responses((status = 204, description = "Deleted"), (status = 401, body = super::error::ErrorBody),
              (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn delete(c: Ctx, id: String) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("tasks")?;
    check_id(&id)?;
    let result = c.s.tasks.delete_agent(&c.task_caller(), &id).await;
    audited(&c, "agent.delete", &format!("agent:{id}"), result).await?;
    Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
}
