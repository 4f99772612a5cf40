//! `/tokens`: API tokens for machines. The value is shown once at creation.

use super::error::ApiError;
use super::{Ctx, ListOf, Paging, Segment, ctx, json_body, query, reply, respond};
use crate::auth::Scope;
use crate::server::Services;
use crate::store::ApiToken;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

/// A token to create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// A label: 1-100 characters, not only blanks.
    #[schema(min_length = 1, max_length = 100, pattern = r"[^\x00-\x20\x7f]")]
    pub name: String,
    /// Limit the token to these scopes. Empty or absent: everything the owner may do.
    #[serde(default)]
    pub scopes: Vec<Scope>,
    /// Days until the token expires (1-3650); absent: never.
    #[serde(default, deserialize_with = "super::whole_number")]
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<i64>,
}

/// A created token with its value.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedToken {
    /// The token (as listed later).
    pub token: ApiToken,
    /// The value for `Authorization: Bearer`; shown only now.
    pub value: String,
}

pub(super) fn routes(
    s: Arc<Services>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let list = warp::path!("tokens")
        .and(warp::get())
        .and(ctx(s.clone()))
        .and(query::<Paging>())
        .and_then(|c, p| async move { respond(list(c, p).await) });
    let create = warp::path!("tokens")
        .and(warp::post())
        .and(ctx(s.clone()))
        .and(json_body())
        .and_then(|c, b| async move { respond(create(c, b).await) });
    let delete = warp::path!("tokens" / Segment)
        .and(warp::delete())
        .and(ctx(s))
        .and_then(|id: Segment, c| async move { respond(delete(c, id.0).await) });
    list.or(create).unify().or(delete).unify()
}

fn owner_filter(c: &Ctx) -> Option<&str> {
    (!c.who.is_admin()).then_some(c.who.user.id.as_str())
}

/// Live API tokens (yours; administrators see everyone's).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", params(Paging), security(("bearer" = [])),
    responses((status = 200, body = ListOf<ApiToken>), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody)))]
pub async fn list(c: Ctx, p: Paging) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    let page =
        c.s.store
            .api_tokens(owner_filter(&c), p.after()?, p.limit()?)
            .await?;
    Ok(reply(
        StatusCode::OK,
        &ListOf {
            items: page.items,
            next: page.next,
        },
    ))
}

/// Create an API token for yourself.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewToken, security(("bearer" = [])),
    responses((status = 201, body = CreatedToken), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
              (status = 403, body = super::error::ErrorBody)))]
pub async fn create(c: Ctx, body: NewToken) -> Result<warp::reply::Response, ApiError> {
    if let Err(e) = c.require_scope("tokens:write") {
        return Err(c
            .deny("token.create", &format!("token:{}", body.name), e)
            .await);
    }
    let wanted: Vec<String> = body.scopes.iter().map(|s| s.as_str().to_string()).collect();
    if let Some(scopes) = &c.who.scopes
        && !scopes.is_empty()
        && (wanted.is_empty() || wanted.iter().any(|s| !scopes.contains(s)))
    {
        return Err(ApiError::forbidden(
            "a scoped token can only create tokens with a subset of its scopes",
        ));
    }
    let expires_at = match body.expires_in_days {
        None => None,
        Some(d @ 1..=3650) => Some(crate::store::now_ms() + d * 86_400_000),
        Some(_) => {
            return Err(ApiError::bad_request(
                "expires_in_days must be between 1 and 3650",
            ));
        }
    };
    let (token, value) =
        c.s.auth
            .create_api_token(&c.who.user.id, &body.name, &wanted, expires_at)
            .await?;
    c.audit(
        "token.create",
        &format!("token:{}", token.id),
        "ok",
        serde_json::json!({ "name": token.name, "scopes": token.scopes }),
    )
    .await;
    Ok(reply(StatusCode::CREATED, &CreatedToken { token, value }))
}

/// Revoke an API token (yours; administrators: anyone's).
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = String, Path, description = "Token id")),
    security(("bearer" = [])),
    responses((status = 204, description = "Revoked"), (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
              (status = 404, body = super::error::ErrorBody)))]
pub async fn delete(c: Ctx, id: String) -> Result<warp::reply::Response, ApiError> {
    let target = format!("token:{id}");
    if let Err(e) = c.require_scope("tokens:write") {
        return Err(c.deny("token.revoke", &target, e).await);
    }
    match c.s.store.revoke_api_token(&id, owner_filter(&c)).await {
        Err(crate::store::StoreError::NotFound) => {
            return Err(ApiError::not_found("no such token"));
        }
        other => other?,
    }
    c.s.auth.forget_sessions();
    c.audit("token.revoke", &target, "ok", serde_json::json!({}))
        .await;
    Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
}
