//! `/audit`: the audit trail. Administrators see everything; users see their own actions.

use super::error::ApiError;
use super::{Ctx, ListOf, ctx, query, reply, respond};
use crate::server::Services;
use crate::store::{AuditEntry, AuditFilter};
use serde::Deserialize;
use std::sync::Arc;
use warp::http::StatusCode;
use warp::{Filter, Rejection};

/// Audit filters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this actor (user id).
    #[param(max_length = 200)]
    pub actor: Option<String>,
    /// Only this action (`plugin.install`), or a family with a trailing dot (`plugin.`).
    #[param(max_length = 200)]
    pub action: Option<String>,
    /// Only this outcome: `ok`, `denied`, `error`.
    #[param(max_length = 200)]
    pub outcome: Option<String>,
    /// Only at or after this time (ms since the epoch).
    #[serde(default, deserialize_with = "super::query_number")]
    pub since: Option<i64>,
    /// Only before this time (ms since the epoch).
    #[serde(default, deserialize_with = "super::query_number")]
    pub until: Option<i64>,
    /// Items per page, 1-500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    #[serde(default, deserialize_with = "super::query_number")]
    pub limit: Option<i64>,
    /// The `next` cursor of the previous page (entries come newest first).
    #[param(max_length = 200)]
    pub after: Option<String>,
}

pub(super) fn routes(
    s: Arc<Services>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("audit")
        .and(warp::get())
        .and(ctx(s))
        .and(query::<AuditQuery>())
        .and_then(|c, q| async move { respond(list(c, q).await) })
}

/// The audit trail, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery), security(("bearer" = [])),
    responses((status = 200, body = ListOf<AuditEntry>), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody)))]
pub async fn list(c: Ctx, q: AuditQuery) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    let paging = super::Paging {
        limit: q.limit,
        after: q.after.clone(),
    };
    let limit = paging.limit()?;
    let too_long = |v: &Option<String>| v.as_ref().is_some_and(|s| !super::max_chars(s, 200));
    if too_long(&q.actor) || too_long(&q.action) || too_long(&q.outcome) {
        return Err(ApiError::bad_request(
            "filter values are at most 200 characters",
        ));
    }
    let actor = if c.who.is_admin() {
        q.actor
    } else {
        Some(c.who.user.id.clone())
    };
    let filter = AuditFilter {
        actor_id: actor,
        action: q.action,
        since: q.since,
        until: q.until,
        outcome: q.outcome,
    };
    let page =
        c.s.store
            .audit_entries(&filter, paging.after()?, limit)
            .await?;
    Ok(reply(
        StatusCode::OK,
        &ListOf {
            items: page.items,
            next: page.next,
        },
    ))
}
