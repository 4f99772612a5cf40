//! `/setup`: whether the server still needs its first administrator, and
//! creating that administrator with the one-time token `serve` printed.

use super::auth::{TokenResponse, token_response};
use super::error::ApiError;
use super::{json_body, reply, request_id, respond, with};
use crate::server::Services;
use crate::store::NewAudit;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use warp::http::StatusCode;
use warp::{Filter, Rejection};

/// Whether setup is needed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SetupState {
    /// True while no user exists: open the setup link `switchyard serve` printed.
    pub required: bool,
}

/// The first administrator.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    /// The one-time token from the link `switchyard serve` printed.
    pub token: String,
    /// The administrator's user name.
    pub username: String,
    /// Their password (at least 8 characters).
    pub password: String,
}

pub(super) fn routes(
    s: Arc<Services>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let state = warp::path!("setup")
        .and(warp::get())
        .and(with(s.clone()))
        .and_then(|s| async move { respond(state(s).await) });
    let create = warp::path!("setup")
        .and(warp::post())
        .and(with(s))
        .and(request_id())
        .and(json_body())
        .and_then(|s, rid, body| async move { respond(set_up(s, rid, body).await) });
    state.or(create).unify()
}

/// Whether the server still needs its first administrator (no auth).
#[utoipa::path(get, path = "/api/v1/setup", tag = "auth",
    responses((status = 200, body = SetupState)))]
pub async fn state(s: Arc<Services>) -> Result<warp::reply::Response, ApiError> {
    let required = s.auth.setup_required().await?;
    Ok(reply(StatusCode::OK, &SetupState { required }))
}

/// Create the first administrator with the one-time setup token, signed in.
#[utoipa::path(post, path = "/api/v1/setup", tag = "auth", request_body = SetupRequest,
    responses((status = 201, body = TokenResponse), (status = 400, body = super::error::ErrorBody),
              (status = 401, description = "The token is wrong or used up", body = super::error::ErrorBody),
              (status = 409, description = "A user exists already", body = super::error::ErrorBody),
              (status = 415, body = super::error::ErrorBody)))]
pub async fn set_up(
    s: Arc<Services>,
    request_id: String,
    body: SetupRequest,
) -> Result<warp::reply::Response, ApiError> {
    if body.token.len() > 200 {
        return Err(ApiError::unauthenticated("the setup token is wrong"));
    }
    super::users::check_username(&body.username).map_err(ApiError::bad_request)?;
    let result = s
        .auth
        .set_up(&body.token, &body.username, &body.password)
        .await;
    let target = format!("user:{}", body.username);
    let audit = s.store.audit(NewAudit {
        actor_id: result.as_ref().ok().map(|(u, _)| u.id.as_str()),
        actor: &body.username,
        action: "auth.setup",
        target: &target,
        outcome: if result.is_ok() { "ok" } else { "denied" },
        details: serde_json::json!({}),
        request_id: Some(&request_id),
    });
    if let Err(e) = audit.await {
        tracing::error!(error = %e, "cannot write the audit log");
    }
    let (user, tokens) = result?;
    tracing::info!(user = %user.username, "created the first admin through the setup link");
    Ok(reply(StatusCode::CREATED, &token_response(user, tokens)))
}
