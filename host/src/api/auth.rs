//! `/auth`: log in, refresh, log out, who am I.

use super::error::ApiError;
use super::serve::Peer;
use super::{Ctx, ctx, json_body, reply, request_id, respond, with};
use crate::server::Services;
use crate::store::{NewAudit, User};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use warp::http::StatusCode;
use warp::{Filter, Rejection};

/// Login credentials.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// A refresh token to trade (or to end its session).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from a login or an earlier refresh.
    pub refresh_token: String,
}

/// Tokens for a session.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// JWT for `Authorization: Bearer` (120 minutes).
    pub access_token: String,
    /// One-time token for `POST /auth/refresh` (7 days, rotated on use).
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Always `Bearer`.
    pub token_type: String,
    /// The user.
    pub user: User,
}

/// The caller.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    /// The user.
    pub user: User,
    /// `session` (logged in with a password) or `api_token`.
    pub via: String,
    /// The API token's id, when used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// The API token's scopes (empty: unrestricted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

pub(super) fn routes(
    s: Arc<Services>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let login = warp::path!("auth" / "login")
        .and(warp::post())
        .and(with(s.clone()))
        .and(warp::ext::optional::<Peer>())
        .and(request_id())
        .and(json_body())
        .and_then(|s, peer, rid, body| async move { respond(login(s, peer, rid, body).await) });
    let refresh = warp::path!("auth" / "refresh")
        .and(warp::post())
        .and(with(s.clone()))
        .and(json_body())
        .and_then(|s, body| async move { respond(refresh(s, body).await) });
    let logout = warp::path!("auth" / "logout")
        .and(warp::post())
        .and(ctx(s.clone()))
        .and(warp::header::optional::<String>("content-type"))
        .and(super::limited_body(super::MAX_JSON_BODY))
        .and_then(|c, ct: Option<String>, body| async move { respond(logout(c, ct, body).await) });
    let me = warp::path!("auth" / "me")
        .and(warp::get())
        .and(ctx(s))
        .and_then(|c: Ctx| async move { respond(Ok(me(c))) });
    login.or(refresh).unify().or(logout).unify().or(me).unify()
}

pub(super) fn token_response(user: User, t: crate::auth::Tokens) -> TokenResponse {
    TokenResponse {
        access_token: t.access_token,
        refresh_token: t.refresh_token,
        expires_in: t.expires_in,
        token_type: "Bearer".into(),
        user,
    }
}

/// Log in with a user name and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 400, body = super::error::ErrorBody),
              (status = 401, body = super::error::ErrorBody), (status = 429, body = super::error::ErrorBody)))]
pub async fn login(
    s: Arc<Services>,
    peer: Option<Peer>,
    request_id: String,
    body: LoginRequest,
) -> Result<warp::reply::Response, ApiError> {
    if body.username.is_empty() || body.username.len() > 64 {
        return Err(ApiError::unauthenticated("wrong user name or password"));
    }
    let client = peer.map_or(std::net::IpAddr::from([127, 0, 0, 1]), |p| p.0.ip());
    let result = s.auth.login(&body.username, &body.password, client).await;
    let (outcome, actor_id) = match &result {
        Ok((user, _)) => ("ok", Some(user.id.clone())),
        Err(crate::auth::AuthError::Store(_)) => ("error", None),
        Err(_) => ("denied", None),
    };
    let target = format!("user:{}", body.username);
    let audit = s.store.audit(NewAudit {
        actor_id: actor_id.as_deref(),
        actor: &body.username,
        action: "auth.login",
        target: &target,
        outcome,
        details: serde_json::json!({ "client": client.to_string() }),
        request_id: Some(&request_id),
    });
    if let Err(e) = audit.await {
        tracing::error!(error = %e, "cannot write the audit log");
    }
    let (user, tokens) = result?;
    Ok(reply(StatusCode::OK, &token_response(user, tokens)))
}

/// Trade a refresh token for new tokens; the old one stops working.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 400, body = super::error::ErrorBody),
              (status = 401, body = super::error::ErrorBody)))]
pub async fn refresh(
    s: Arc<Services>,
    body: RefreshRequest,
) -> Result<warp::reply::Response, ApiError> {
    if body.refresh_token.len() > 200 {
        return Err(ApiError::unauthenticated("the refresh token is invalid"));
    }
    let (user, tokens) = s.auth.refresh(&body.refresh_token).await?;
    Ok(reply(StatusCode::OK, &token_response(user, tokens)))
}

/// End the caller's session (or, with a body, the session of that refresh token).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body(content = Option<RefreshRequest>),
    security(("bearer" = [])),
    responses((status = 204, description = "Logged out"), (status = 400, body = super::error::ErrorBody),
              (status = 401, body = super::error::ErrorBody),
              (status = 404, description = "The refresh token is not a live session of the caller", body = super::error::ErrorBody),
              (status = 409, description = "Called with an API token and no refresh token: there is no session to end", body = super::error::ErrorBody)))]
pub async fn logout(
    c: Ctx,
    content_type: Option<String>,
    body: Vec<u8>,
) -> Result<warp::reply::Response, ApiError> {
    let req: Option<RefreshRequest> = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else if !content_type.as_deref().is_some_and(super::is_json) {
        return Err(super::unsupported_media_type(content_type.as_deref()));
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let from_body = match req {
        None => None,
        Some(req) => Some(
            c.s.auth
                .session_of(&req.refresh_token, &c.who.user.id)
                .await?
                .ok_or_else(|| {
                    ApiError::not_found("that refresh token is not a live session of yours")
                })?,
        ),
    };
    let session = from_body.or_else(|| c.who.session.clone()).ok_or_else(|| {
        ApiError::conflict("API tokens have no session: revoke the token with DELETE /api/v1/tokens/{id}, or pass a refresh_token")
    })?;
    c.s.auth.logout(&session).await?;
    c.audit(
        "auth.logout",
        &format!("user:{}", c.who.user.username),
        "ok",
        serde_json::json!({}),
    )
    .await;
    Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
}

use warp::Reply;

/// Who the caller is.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = super::error::ErrorBody)))]
pub fn me(c: Ctx) -> warp::reply::Response {
    let via = if c.who.token_id.is_some() {
        "api_token"
    } else {
        "session"
    };
    reply(
        StatusCode::OK,
        &Me {
            via: via.into(),
            token_id: c.who.token_id.clone(),
            scopes: c.who.scopes.clone(),
            user: c.who.user,
        },
    )
}
