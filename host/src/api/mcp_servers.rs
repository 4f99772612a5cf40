//! `/mcp-servers`: register, list, inspect, change, reconnect and remove the
//! external MCP servers whose tools join the caller's tool set, and read the
//! tools each offers. Header values are write-only; every change is audited.

use super::error::ApiError;
use super::{Ctx, Segment, ctx, json_body, query, reply, respond};
use crate::remote::{NewServer, RemoteError, Server, ServerPatch};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

impl From<RemoteError> for ApiError {
    fn from(e: RemoteError) -> Self {
        let message = e.to_string();
        match e {
            RemoteError::NotFound(_) => ApiError::not_found(message),
            RemoteError::Invalid(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_mcp_server",
                message,
            ),
            RemoteError::Forbidden(_) => ApiError::forbidden(message),
            RemoteError::Conflict(_) => ApiError::conflict(message),
            RemoteError::TooMany(_) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_mcp_servers",
                message,
            ),
            RemoteError::Store(m) => ApiError::internal("the MCP server operation", &m),
        }
    }
}

/// Server list options.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ServerQuery {
    /// Administrators: every user's servers.
    #[serde(default)]
    pub all: Option<bool>,
}

/// Servers, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServerList {
    /// The servers.
    pub items: Vec<Server>,
}

/// One tool an external server offers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RemoteTool {
    /// The name agents and MCP clients call it by (`SERVER__TOOL`).
    pub name: String,
    /// Its name on the server.
    pub tool: String,
    /// What it does.
    pub description: String,
    /// JSON Schema of its arguments.
    pub input_schema: serde_json::Value,
}

/// The tools a server offers now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ToolList {
    /// The tools (none unless the server is ready).
    pub items: Vec<RemoteTool>,
}

pub(super) fn routes(
    s: Arc<crate::server::Services>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let base = warp::path("mcp-servers");
    let list = base
        .and(warp::path::end())
        .and(warp::get())
        .and(ctx(s.clone()))
        .and(query::<ServerQuery>())
        .and_then(|c, q| async move { respond(list(c, q).await) });
    let create = base
        .and(warp::path::end())
        .and(warp::post())
        .and(ctx(s.clone()))
        .and(json_body())
        .and_then(|c, b| async move { respond(create(c, b).await) });
    let one = warp::path!("mcp-servers" / Segment);
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
    let reconnect = warp::path!("mcp-servers" / Segment / "reconnect")
        .and(warp::post())
        .and(ctx(s.clone()))
        .and_then(|id: Segment, c| async move { respond(reconnect(c, id.0).await) });
    let tools = warp::path!("mcp-servers" / Segment / "tools")
        .and(warp::get())
        .and(ctx(s))
        .and_then(|id: Segment, c| async move { respond(tools(c, id.0).await) });
    list.or(create)
        .unify()
        .or(get)
        .unify()
        .or(update)
        .unify()
        .or(delete)
        .unify()
        .or(reconnect)
        .unify()
        .or(tools)
        .unify()
}

async fn audited<T>(
    c: &Ctx,
    action: &str,
    target: &str,
    result: Result<T, RemoteError>,
) -> Result<T, ApiError> {
    let (outcome, details) = match &result {
        Ok(_) => ("ok", serde_json::json!({})),
        Err(RemoteError::Forbidden(m)) => ("denied", serde_json::json!({ "reason": m })),
        Err(e) => ("error", serde_json::json!({ "reason": e.to_string() })),
    };
    c.audit(action, target, outcome, details).await;
    Ok(result?)
}

/// Your external MCP servers and the shared ones (everyone's for an
/// administrator with `all=true`), each with its connection status.
#[utoipa::path(get, path = "/api/v1/mcp-servers", tag = "mcp-servers", params(ServerQuery), security(("bearer" = [])),
    responses((status = 200, body = ServerList), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody)))]
pub async fn list(c: Ctx, q: ServerQuery) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    let items =
        c.s.remotes
            .list(&super::tools::caller(&c), q.all == Some(true))
            .await?;
    Ok(reply(StatusCode::OK, &ServerList { items }))
}

/// Register an external MCP server (streamable HTTP `url` with optional sealed
/// `headers`; administrators may give a stdio `command` run in a sandbox
/// instead). Answers once the first connection attempt is done (at most ~5 s),
/// with its status.
#[utoipa::path(post, path = "/api/v1/mcp-servers", tag = "mcp-servers", request_body = NewServer, security(("bearer" = [])),
    responses((status = 201, body = Server), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
              (status = 403, description = "A private address, a stdio command or sharing, for a non-administrator", body = super::error::ErrorBody),
              (status = 409, description = "The name is taken (by a plugin or a server you see)", body = super::error::ErrorBody),
              (status = 413, body = super::error::ErrorBody),
              (status = 422, description = "Bad settings", body = super::error::ErrorBody),
              (status = 429, description = "Too many servers", body = super::error::ErrorBody)))]
pub async fn create(c: Ctx, body: NewServer) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("plugins:write")?;
    let name = body.name.clone();
    let result = c.s.remotes.create(&super::tools::caller(&c), body).await;
    let target = result.as_ref().map_or_else(
        |_| {
            format!(
                "mcp-server-name:{}",
                name.chars().take(64).collect::<String>()
            )
        },
        |s| format!("mcp-server:{}", s.id),
    );
    let server = audited(&c, "mcp_server.create", &target, result).await?;
    Ok(reply(StatusCode::CREATED, &server))
}

/// One server with its connection status.
#[utoipa::path(get, path = "/api/v1/mcp-servers/{id}", tag = "mcp-servers", params(("id" = String, Path, description = "Server id")), security(("bearer" = [])),
    responses((status = 200, body = Server), (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn get(c: Ctx, id: String) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    Ok(reply(
        StatusCode::OK,
        &c.s.remotes.get(&super::tools::caller(&c), &id).await?,
    ))
}

/// Change a server (new headers replace all the old ones); it reconnects.
#[utoipa::path(patch, path = "/api/v1/mcp-servers/{id}", tag = "mcp-servers", params(("id" = String, Path, description = "Server id")), request_body = ServerPatch, security(("bearer" = [])),
    responses((status = 200, body = Server), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
              (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody),
              (status = 409, body = super::error::ErrorBody), (status = 413, body = super::error::ErrorBody),
              (status = 422, body = super::error::ErrorBody)))]
pub async fn update(
    c: Ctx,
    id: String,
    body: ServerPatch,
) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("plugins:write")?;
    let result =
        c.s.remotes
            .update(&super::tools::caller(&c), &id, body)
            .await;
    let target = format!("mcp-server:{}", id.chars().take(64).collect::<String>());
    let server = audited(&c, "mcp_server.update", &target, result).await?;
    Ok(reply(StatusCode::OK, &server))
}

/// Remove a server: its tools disappear at once.
#[utoipa::path(delete, path = "/api/v1/mcp-servers/{id}", tag = "mcp-servers", params(("id" = String, Path, description = "Server id")), security(("bearer" = [])),
    responses((status = 204, description = "Removed"), (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn delete(c: Ctx, id: String) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("plugins:write")?;
    let result = c.s.remotes.delete(&super::tools::caller(&c), &id).await;
    let target = format!("mcp-server:{}", id.chars().take(64).collect::<String>());
    audited(&c, "mcp_server.delete", &target, result).await?;
    Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
}

/// Reconnect a server now (instead of waiting for the next retry) and answer
/// with the outcome.
#[utoipa::path(post, path = "/api/v1/mcp-servers/{id}/reconnect", tag = "mcp-servers", params(("id" = String, Path, description = "Server id")), security(("bearer" = [])),
    responses((status = 200, body = Server), (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn reconnect(c: Ctx, id: String) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("plugins:write")?;
    Ok(reply(
        StatusCode::OK,
        &c.s.remotes
            .reconnect(&super::tools::caller(&c), &id)
            .await?,
    ))
}

/// The tools a server offers now (none while it is not connected).
#[utoipa::path(get, path = "/api/v1/mcp-servers/{id}/tools", tag = "mcp-servers", params(("id" = String, Path, description = "Server id")), security(("bearer" = [])),
    responses((status = 200, body = ToolList), (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn tools(c: Ctx, id: String) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    let items =
        c.s.remotes
            .tools(&super::tools::caller(&c), &id)
            .await?
            .into_iter()
            .map(|t| RemoteTool {
                name: format!("{}__{}", t.plugin, t.name),
                tool: t.name,
                description: t.description,
                input_schema: t.input_schema,
            })
            .collect();
    Ok(reply(StatusCode::OK, &ToolList { items }))
}
