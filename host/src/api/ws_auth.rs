//! How WebSockets authenticate and which pages may open them. Browsers cannot
//! set headers on a WebSocket, so besides `Authorization: Bearer` a socket
//! accepts `?ticket=` (single-use, 30 s, from `POST /ws-tickets`) or
//! `?access_token=` with a JWT access token (never an API token: those live
//! for months and URLs end up in logs and histories). `Host` and `Origin` are
//! checked against the same allow-list as `/mcp` (DNS-rebinding and
//! cross-site WebSocket hijacking protection).

use super::error::ApiError;
use super::{Ctx, ctx, reply, request_id, respond, with};
use crate::mcp::access::Access;
use crate::server::Services;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use warp::http::{HeaderMap, StatusCode};
use warp::{Filter, Rejection};

/// A WebSocket ticket.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WsTicket {
    /// Pass as `?ticket=` when opening a WebSocket; works once.
    pub ticket: String,
    /// Seconds until the ticket expires.
    pub expires_in: u64,
}

pub(super) fn routes(
    s: Arc<Services>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("ws-tickets")
        .and(warp::post())
        .and(ctx(s))
        .and_then(|c: Ctx| async move { respond(Ok(create_ticket(c))) })
}

/// Get a single-use ticket to open one WebSocket as yourself within 30 s.
#[utoipa::path(post, path = "/api/v1/ws-tickets", tag = "auth", security(("bearer" = [])),
    responses((status = 201, body = WsTicket), (status = 401, body = super::error::ErrorBody)))]
pub fn create_ticket(c: Ctx) -> warp::reply::Response {
    let ticket = c.s.auth.issue_ticket(&c.who);
    reply(
        StatusCode::CREATED,
        &WsTicket {
            ticket,
            expires_in: crate::auth::TICKET_TTL.as_secs(),
        },
    )
}

/// The caller of a WebSocket request, after the `Host`/`Origin` check: the
/// Bearer header, a `ticket`, or a JWT `access_token` in the query.
pub(super) fn ws_ctx(s: Arc<Services>) -> impl Filter<Extract = (Ctx,), Error = Rejection> + Clone {
    let access = Arc::new(Access::new(&s.config));
    warp::header::headers_cloned()
        .and(warp::host::optional())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(with(s))
        .and(warp::any().map(move || access.clone()))
        .and(request_id())
        .and_then(
            |headers: HeaderMap,
             host: Option<warp::host::Authority>,
             raw: String,
             s: Arc<Services>,
             access: Arc<Access>,
             request_id: String| async move {
                access
                    .check(host.as_ref().map(|a| a.as_str()), &headers)
                    .map_err(|m| warp::reject::custom(ApiError::forbidden(m)))?;
                let query: HashMap<String, String> =
                    serde_urlencoded::from_str(&raw).unwrap_or_default();
                let who = if headers.contains_key("authorization") {
                    super::authenticate(&s, &headers).await
                } else if let Some(ticket) = query.get("ticket") {
                    s.auth.redeem_ticket(ticket).map_err(ApiError::from)
                } else if let Some(token) = query.get("access_token") {
                    url_token(&s, token).await
                } else {
                    super::authenticate(&s, &headers).await
                }
                .map_err(warp::reject::custom)?;
                Ok::<_, Rejection>(Ctx { s, who, request_id })
            },
        )
}

async fn url_token(s: &Services, token: &str) -> Result<crate::auth::Identity, ApiError> {
    if token.starts_with(crate::auth::API_TOKEN_PREFIX) {
        return Err(ApiError::unauthenticated(
            "API tokens are not accepted in URLs; send `Authorization: Bearer`, or get a ticket from POST /api/v1/ws-tickets and pass `?ticket=`",
        ));
    }
    Ok(s.auth.authenticate(token).await?)
}
