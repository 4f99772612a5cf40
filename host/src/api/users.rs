//! `/users`: administrators manage accounts; users see and update themselves.

use super::error::ApiError;
use super::serve::Peer;
use super::{Ctx, ListOf, Paging, Segment, ctx, json_body, query, reply, respond};
use crate::auth::password;
use crate::server::Services;
use crate::store::{Role, User};
use serde::Deserialize;
use std::sync::Arc;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

/// A new account.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Login name: 1-64 chars of a-z, 0-9, `.`, `_`, `-`.
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9._-]+$")]
    pub username: String,
    /// Password: 8-256 characters.
    #[schema(min_length = 8, max_length = 256)]
    pub password: String,
    /// Role (default `user`).
    #[serde(default)]
    pub role: Option<Role>,
}

/// Changes to an account.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    /// New role (admins only).
    pub role: Option<Role>,
    /// Disable or enable (admins only); disabling ends the user's sessions.
    pub disabled: Option<bool>,
    /// New password: 8-256 characters. Other login sessions of the user end;
    /// the caller's own session and API tokens stay (see docs/api.md).
    #[schema(min_length = 8, max_length = 256)]
    pub password: Option<String>,
    /// The current password: required to change your own password
    /// (not when an administrator changes someone else's); ignored otherwise.
    #[schema(max_length = 1024)]
    pub current_password: Option<String>,
}

pub(super) fn routes(
    s: Arc<Services>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let list = warp::path!("users")
        .and(warp::get())
        .and(ctx(s.clone()))
        .and(query::<Paging>())
        .and_then(|c, p| async move { respond(list(c, p).await) });
    let create = warp::path!("users")
        .and(warp::post())
        .and(ctx(s.clone()))
        .and(json_body())
        .and_then(|c, b| async move { respond(create(c, b).await) });
    let get = warp::path!("users" / Segment)
        .and(warp::get())
        .and(ctx(s.clone()))
        .and_then(|id: Segment, c| async move { respond(get(c, id.0).await) });
    let update = warp::path!("users" / Segment)
        .and(warp::patch())
        .and(ctx(s.clone()))
        .and(warp::ext::optional::<Peer>())
        .and(json_body())
        .and_then(|id: Segment, c, peer, b| async move { respond(update(c, id.0, peer, b).await) });
    let delete = warp::path!("users" / Segment)
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

/// Check a new user name.
pub fn check_username(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err("user names are 1-64 chars of a-z, 0-9, `.`, `_` and `-`".into())
    }
}

/// List users (administrators: everyone; users: themselves).
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(Paging), security(("bearer" = [])),
    responses((status = 200, body = ListOf<User>), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody)))]
pub async fn list(c: Ctx, p: Paging) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    let limit = p.limit()?;
    if !c.who.is_admin() {
        let me = c.who.user.clone();
        let items = if p.after()?.is_none_or(|a| a < me.id.as_str()) {
            vec![me]
        } else {
            vec![]
        };
        return Ok(reply(StatusCode::OK, &ListOf { items, next: None }));
    }
    let page = c.s.store.users(p.after()?, limit).await?;
    Ok(reply(
        StatusCode::OK,
        &ListOf {
            items: page.items,
            next: page.next,
        },
    ))
}

/// Create a user (administrators).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUser, security(("bearer" = [])),
    responses((status = 201, body = User), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
              (status = 403, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn create(c: Ctx, body: NewUser) -> Result<warp::reply::Response, ApiError> {
    let target = format!("user:{}", body.username);
    if let Err(e) = c
        .require_admin()
        .and_then(|()| c.require_scope("users:write"))
    {
        return Err(c.deny("user.create", &target, e).await);
    }
    check_username(&body.username).map_err(ApiError::bad_request)?;
    password::check_new(&body.password).map_err(ApiError::bad_request)?;
    let pass = body.password;
    let hash = tokio::task::spawn_blocking(move || password::hash(&pass))
        .await
        .map_err(|e| ApiError::internal("password hashing", &e))?
        .map_err(|e| ApiError::internal("password hashing", &e))?;
    let role = body.role.unwrap_or(Role::User);
    let user = c.s.store.create_user(&body.username, &hash, role).await?;
    c.audit(
        "user.create",
        &target,
        "ok",
        serde_json::json!({ "role": role }),
    )
    .await;
    Ok(reply(StatusCode::CREATED, &user))
}

async fn visible_user(c: &Ctx, id: &str) -> Result<User, ApiError> {
    if !c.who.is_admin() && c.who.user.id != id {
        return Err(ApiError::not_found("no such user"));
    }
    c.s.store.user(id).await.map_err(|e| match e {
        crate::store::StoreError::NotFound => ApiError::not_found("no such user"),
        other => other.into(),
    })
}

/// One user (administrators: anyone; users: themselves).
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path, description = "User id")),
    security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn get(c: Ctx, id: String) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    Ok(reply(StatusCode::OK, &visible_user(&c, &id).await?))
}

/// Change a user: role and disabled flag (administrators), password (administrators,
/// or the user with `current_password`). A password change ends the user's other
/// login sessions.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path, description = "User id")),
    request_body = UserUpdate, security(("bearer" = [])),
    responses((status = 200, body = User), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
              (status = 403, description = "Not allowed, or `current_password` is missing or wrong", body = super::error::ErrorBody),
              (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody),
              (status = 429, description = "Too many wrong current passwords", body = super::error::ErrorBody)))]
pub async fn update(
    c: Ctx,
    id: String,
    peer: Option<Peer>,
    body: UserUpdate,
) -> Result<warp::reply::Response, ApiError> {
    let user = visible_user(&c, &id).await?;
    let target = format!("user:{}", user.username);
    let privileged = body.role.is_some() || body.disabled.is_some();
    if let Err(e) = c.require_scope("users:write").and_then(|()| {
        if privileged {
            c.require_admin()
        } else {
            Ok(())
        }
    }) {
        return Err(c.deny("user.update", &target, e).await);
    }
    let demotes = body.role == Some(Role::User) || body.disabled == Some(true);
    if demotes && user.id == c.who.user.id && user.role == Role::Admin {
        return Err(ApiError::conflict(
            "you cannot disable or demote yourself; another admin can",
        ));
    }
    if demotes && user.role == Role::Admin && !user.disabled && c.s.store.admin_count().await? <= 1
    {
        return Err(ApiError::conflict(
            "this is the last enabled admin; make another admin first",
        ));
    }
    let own = user.id == c.who.user.id;
    if body
        .current_password
        .as_deref()
        .is_some_and(|p| !super::max_chars(p, password::MAX_PASSWORD_LEN))
    {
        return Err(ApiError::bad_request(
            "current_password must be at most 1024 characters",
        ));
    }
    if body.password.is_some() && own {
        let Some(current) = body.current_password.as_deref() else {
            let e = ApiError::new(
                StatusCode::FORBIDDEN,
                "current_password_required",
                "changing your own password needs `current_password`",
            );
            return Err(c.deny("user.password", &target, e).await);
        };
        let client = peer.map_or(std::net::IpAddr::from([127, 0, 0, 1]), |p| p.0.ip());
        if let Err(e) = c.s.auth.check_password(&user, current, client).await {
            let e = ApiError::from(e);
            return Err(c.deny("user.password", &target, e).await);
        }
    }
    let hash = match body.password {
        Some(pass) => {
            password::check_new(&pass).map_err(ApiError::bad_request)?;
            Some(
                tokio::task::spawn_blocking(move || password::hash(&pass))
                    .await
                    .map_err(|e| ApiError::internal("password hashing", &e))?
                    .map_err(|e| ApiError::internal("password hashing", &e))?,
            )
        }
        None => None,
    };
    let updated =
        c.s.store
            .update_user(&id, body.role, body.disabled, hash.as_deref())
            .await?;
    let mut ended_sessions = 0;
    if body.disabled == Some(true) {
        ended_sessions = c.s.store.revoke_user_refresh_tokens(&id, None).await?;
    } else if hash.is_some() {
        let keep = if own { c.who.session.as_deref() } else { None };
        ended_sessions = c.s.store.revoke_user_refresh_tokens(&id, keep).await?;
    }
    c.s.auth.forget_sessions();
    c.audit(
        "user.update",
        &target,
        "ok",
        serde_json::json!({
            "role": body.role, "disabled": body.disabled, "password_changed": hash.is_some(),
            "ended_sessions": ended_sessions
        }),
    )
    .await;
    Ok(reply(StatusCode::OK, &updated))
}

/// Delete a user with their tokens and private plugins (administrators).
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path, description = "User id")),
    security(("bearer" = [])),
    responses((status = 204, description = "Deleted"), (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
              (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn delete(c: Ctx, id: String) -> Result<warp::reply::Response, ApiError> {
    if let Err(e) = c
        .require_admin()
        .and_then(|()| c.require_scope("users:write"))
    {
        return Err(c.deny("user.delete", &format!("user-id:{id}"), e).await);
    }
    let user = visible_user(&c, &id).await?;
    if user.id == c.who.user.id {
        return Err(ApiError::conflict("you cannot delete yourself"));
    }
    if user.role == Role::Admin && !user.disabled && c.s.store.admin_count().await? <= 1 {
        return Err(ApiError::conflict("this is the last enabled admin"));
    }
    let owned: Vec<String> =
        c.s.plugins
            .snapshot()
            .values()
            .filter(|l| l.installed.state.owner_id.as_deref() == Some(id.as_str()))
            .map(|l| l.name().to_string())
            .collect();
    for name in &owned {
        c.s.plugins.manager().remove(name).await?;
    }
    c.s.store.delete_user(&id).await?;
    c.s.auth.forget_sessions();
    if !owned.is_empty() {
        c.s.plugins.sync().await?;
    }
    c.audit(
        "user.delete",
        &format!("user:{}", user.username),
        "ok",
        serde_json::json!({ "removed_plugins": owned }),
    )
    .await;
    Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
}
