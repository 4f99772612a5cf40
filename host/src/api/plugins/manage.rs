//! Changing an installed plugin: enable/disable, grant/revoke, configuration,
//! secrets, removal. Shared plugins are changed by administrators; private ones by
//! their owner too. Granting is always an administrator's decision.

use super::super::error::ApiError;
use super::super::{Ctx, Segment, ctx, json_body, max_chars, reply, respond};
use super::{detail, no_content, visible};
use crate::plugins::manifest::{Capabilities, KvAccess};
use crate::server::Services;
use serde::Deserialize;
use std::sync::Arc;
use warp::http::StatusCode;
use warp::{Filter, Rejection};

/// Changes to a plugin (absent fields stay as they are).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginUpdate {
    /// Allow or stop calls.
    pub enabled: Option<bool>,
}

/// Capabilities to grant, each one requested by the manifest (an empty request
/// changes nothing).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// Grant everything the manifest requests.
    #[serde(default)]
    pub all: bool,
    /// Host patterns to allow: `host`, `host:port`, `*.domain`, `host:*`.
    #[serde(default)]
    pub http: Vec<String>,
    /// Key-value storage with a space per user.
    #[serde(default)]
    pub kv: bool,
    /// One key-value space shared by every caller (only when the manifest asks for `kv = "shared"`).
    #[serde(default)]
    pub kv_shared: bool,
    /// Secret names.
    #[serde(default)]
    pub secrets: Vec<String>,
}

/// A value to set.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValueBody {
    /// The value (at most 65,536 characters).
    #[schema(max_length = 65536)]
    pub value: String,
}

/// Longest config or secret value (characters).
const MAX_VALUE_CHARS: usize = 65_536;

pub(super) fn routes(
    s: Arc<Services>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let update = warp::path!("plugins" / Segment)
        .and(warp::patch())
        .and(ctx(s.clone()))
        .and(json_body())
        .and_then(|n: Segment, c, b| async move { respond(update(c, n.0, b).await) });
    let delete = warp::path!("plugins" / Segment)
        .and(warp::delete())
        .and(ctx(s.clone()))
        .and_then(|n: Segment, c| async move { respond(delete(c, n.0).await) });
    let grant = warp::path!("plugins" / Segment / "grants")
        .and(warp::post())
        .and(ctx(s.clone()))
        .and(json_body())
        .and_then(|n: Segment, c, b| async move { respond(grant(c, n.0, b).await) });
    let revoke = warp::path!("plugins" / Segment / "grants")
        .and(warp::delete())
        .and(ctx(s.clone()))
        .and_then(|n: Segment, c| async move { respond(revoke(c, n.0).await) });
    let set_config = warp::path!("plugins" / Segment / "config" / Segment)
        .and(warp::put())
        .and(ctx(s.clone()))
        .and(json_body())
        .and_then(|n: Segment, k: Segment, c, b: ValueBody| async move {
            respond(config(c, n.0, k.0, Some(b.value)).await)
        });
    let unset_config = warp::path!("plugins" / Segment / "config" / Segment)
        .and(warp::delete())
        .and(ctx(s.clone()))
        .and_then(
            |n: Segment, k: Segment, c| async move { respond(unset_config(c, n.0, k.0).await) },
        );
    let set_secret = warp::path!("plugins" / Segment / "secrets" / Segment)
        .and(warp::put())
        .and(ctx(s.clone()))
        .and(json_body())
        .and_then(|n: Segment, k: Segment, c, b: ValueBody| async move {
            respond(secret(c, n.0, k.0, Some(b.value)).await)
        });
    let unset_secret = warp::path!("plugins" / Segment / "secrets" / Segment)
        .and(warp::delete())
        .and(ctx(s))
        .and_then(
            |n: Segment, k: Segment, c| async move { respond(unset_secret(c, n.0, k.0).await) },
        );
    update
        .or(delete)
        .unify()
        .or(grant)
        .unify()
        .or(revoke)
        .unify()
        .or(set_config)
        .unify()
        .or(unset_config)
        .unify()
        .or(set_secret)
        .unify()
        .or(unset_secret)
        .unify()
}

/// Check that the caller may change plugin `name`: visible, scope, and admin for
/// shared plugins. Failures are audited.
async fn may_change(c: &Ctx, name: &str, action: &str, admin_only: bool) -> Result<(), ApiError> {
    let live = visible(c, name)?;
    let target = format!("plugin:{name}");
    let shared = live.installed.state.owner_id.is_none();
    let check = c.require_scope("plugins:write").and_then(|()| {
        if (shared || admin_only) && !c.who.is_admin() {
            Err(ApiError::forbidden(if admin_only {
                "only admins can change what a plugin is granted"
            } else {
                "only admins can change shared plugins"
            }))
        } else {
            Ok(())
        }
    });
    match check {
        Ok(()) => Ok(()),
        Err(e) => Err(c.deny(action, &target, e).await),
    }
}

async fn changed(
    c: &Ctx,
    name: &str,
    action: &str,
    details: serde_json::Value,
) -> Result<warp::reply::Response, ApiError> {
    c.s.plugins.sync().await?;
    c.audit(action, &format!("plugin:{name}"), "ok", details)
        .await;
    let live = visible(c, name)?;
    Ok(reply(StatusCode::OK, &detail(c, &live).await?))
}

async fn failed(c: &Ctx, name: &str, action: &str, e: crate::plugins::PluginsError) -> ApiError {
    let err = ApiError::from(e);
    c.audit(
        action,
        &format!("plugin:{name}"),
        "error",
        serde_json::json!({ "error": err.message }),
    )
    .await;
    err
}

/// Enable or disable a plugin.
#[utoipa::path(patch, path = "/api/v1/plugins/{name}", tag = "plugins", params(("name" = String, Path, description = "Plugin name")),
    request_body = PluginUpdate, security(("bearer" = [])),
    responses((status = 200, body = super::PluginDetail), (status = 400, body = super::super::error::ErrorBody),
              (status = 401, body = super::super::error::ErrorBody), (status = 403, body = super::super::error::ErrorBody),
              (status = 404, body = super::super::error::ErrorBody)))]
pub async fn update(
    c: Ctx,
    name: String,
    body: PluginUpdate,
) -> Result<warp::reply::Response, ApiError> {
    let Some(enabled) = body.enabled else {
        c.require_scope("read")?;
        let live = visible(&c, &name)?;
        return Ok(reply(StatusCode::OK, &detail(&c, &live).await?));
    };
    let action = if enabled {
        "plugin.enable"
    } else {
        "plugin.disable"
    };
    may_change(&c, &name, action, false).await?;
    if let Err(e) = c.s.plugins.manager().set_enabled(&name, enabled).await {
        return Err(failed(&c, &name, action, e).await);
    }
    changed(&c, &name, action, serde_json::json!({ "enabled": enabled })).await
}

/// Uninstall a plugin with its key-value data and secrets.
#[utoipa::path(delete, path = "/api/v1/plugins/{name}", tag = "plugins", params(("name" = String, Path, description = "Plugin name")),
    security(("bearer" = [])),
    responses((status = 204, description = "Removed"), (status = 401, body = super::super::error::ErrorBody),
              (status = 403, body = super::super::error::ErrorBody), (status = 404, body = super::super::error::ErrorBody)))]
pub async fn delete(c: Ctx, name: String) -> Result<warp::reply::Response, ApiError> {
    let failed_install = super::job::status_of(&c, &name).is_some_and(|j| {
        j.state == crate::plugins::installs::InstallState::Failed
            && (c.who.is_admin() || j.owner_id.as_deref() == Some(c.who.user.id.as_str()))
    });
    if failed_install && visible(&c, &name).is_err() && c.require_scope("plugins:write").is_ok() {
        // A new plugin whose install failed: dismissing it is all there is to remove.
        c.s.plugins.installs().forget_failed(&name);
        return Ok(no_content());
    }
    may_change(&c, &name, "plugin.remove", false).await?;
    if let Err(e) = c.s.plugins.manager().remove(&name).await {
        return Err(failed(&c, &name, "plugin.remove", e).await);
    }
    c.s.plugins.sync().await?;
    c.audit(
        "plugin.remove",
        &format!("plugin:{name}"),
        "ok",
        serde_json::json!({}),
    )
    .await;
    Ok(no_content())
}

/// Grant requested capabilities (administrators).
#[utoipa::path(post, path = "/api/v1/plugins/{name}/grants", tag = "plugins", params(("name" = String, Path, description = "Plugin name")),
    request_body = GrantRequest, security(("bearer" = [])),
    responses((status = 200, body = super::PluginDetail), (status = 400, body = super::super::error::ErrorBody),
              (status = 401, body = super::super::error::ErrorBody), (status = 403, body = super::super::error::ErrorBody),
              (status = 404, body = super::super::error::ErrorBody), (status = 409, body = super::super::error::ErrorBody)))]
pub async fn grant(
    c: Ctx,
    name: String,
    body: GrantRequest,
) -> Result<warp::reply::Response, ApiError> {
    may_change(&c, &name, "plugin.grant", true).await?;
    let what = Capabilities {
        http: body.http,
        kv: if body.kv_shared {
            KvAccess::Shared
        } else if body.kv {
            KvAccess::User
        } else {
            KvAccess::None
        },
        secrets: body.secrets,
    };
    if !body.all && what.is_empty() {
        let live = visible(&c, &name)?;
        return Ok(reply(StatusCode::OK, &detail(&c, &live).await?));
    }
    let result =
        c.s.plugins
            .manager()
            .grant(&name, (!body.all).then_some(&what))
            .await;
    match result {
        Ok(_) => {
            changed(
                &c,
                &name,
                "plugin.grant",
                serde_json::json!({ "all": body.all, "granted": what }),
            )
            .await
        }
        Err(e) => Err(failed(&c, &name, "plugin.grant", e).await),
    }
}

/// Revoke every grant (administrators).
#[utoipa::path(delete, path = "/api/v1/plugins/{name}/grants", tag = "plugins", params(("name" = String, Path, description = "Plugin name")),
    security(("bearer" = [])),
    responses((status = 200, body = super::PluginDetail), (status = 401, body = super::super::error::ErrorBody),
              (status = 403, body = super::super::error::ErrorBody), (status = 404, body = super::super::error::ErrorBody)))]
pub async fn revoke(c: Ctx, name: String) -> Result<warp::reply::Response, ApiError> {
    may_change(&c, &name, "plugin.revoke", true).await?;
    if let Err(e) = c.s.plugins.manager().revoke(&name).await {
        return Err(failed(&c, &name, "plugin.revoke", e).await);
    }
    changed(&c, &name, "plugin.revoke", serde_json::json!({})).await
}

/// Set a configuration value declared in the manifest.
#[utoipa::path(put, path = "/api/v1/plugins/{name}/config/{key}", tag = "plugins",
    params(("name" = String, Path, description = "Plugin name"), ("key" = String, Path, description = "Config key")),
    request_body = ValueBody, security(("bearer" = [])),
    responses((status = 200, body = super::PluginDetail), (status = 400, body = super::super::error::ErrorBody),
              (status = 401, body = super::super::error::ErrorBody), (status = 403, body = super::super::error::ErrorBody),
              (status = 404, body = super::super::error::ErrorBody)))]
pub async fn config(
    c: Ctx,
    name: String,
    key: String,
    value: Option<String>,
) -> Result<warp::reply::Response, ApiError> {
    may_change(&c, &name, "plugin.config", false).await?;
    if value
        .as_ref()
        .is_some_and(|v| !max_chars(v, MAX_VALUE_CHARS))
    {
        return Err(ApiError::bad_request(
            "config values are at most 65,536 characters",
        ));
    }
    match c
        .s
        .plugins
        .manager()
        .set_config(&name, &key, value.as_deref())
        .await
    {
        Ok(_) => {
            changed(
                &c,
                &name,
                "plugin.config",
                serde_json::json!({ "key": key, "set": value.is_some() }),
            )
            .await
        }
        Err(e) => Err(failed(&c, &name, "plugin.config", e).await),
    }
}

/// Set a secret declared in the manifest; values are never returned.
#[utoipa::path(put, path = "/api/v1/plugins/{name}/secrets/{secret}", tag = "plugins",
    params(("name" = String, Path, description = "Plugin name"), ("secret" = String, Path, description = "Secret name")),
    request_body = ValueBody, security(("bearer" = [])),
    responses((status = 204, description = "Stored"), (status = 400, body = super::super::error::ErrorBody),
              (status = 401, body = super::super::error::ErrorBody), (status = 403, body = super::super::error::ErrorBody),
              (status = 404, body = super::super::error::ErrorBody)))]
pub async fn secret(
    c: Ctx,
    name: String,
    secret: String,
    value: Option<String>,
) -> Result<warp::reply::Response, ApiError> {
    may_change(&c, &name, "plugin.secret", false).await?;
    if value
        .as_ref()
        .is_some_and(|v| !max_chars(v, MAX_VALUE_CHARS))
    {
        return Err(ApiError::bad_request(
            "secret values are at most 65,536 characters",
        ));
    }
    match c
        .s
        .plugins
        .manager()
        .set_secret(&name, &secret, value.as_deref())
        .await
    {
        Ok(()) => {
            c.s.plugins.sync().await?;
            c.audit(
                "plugin.secret",
                &format!("plugin:{name}"),
                "ok",
                serde_json::json!({ "secret": secret, "set": value.is_some() }),
            )
            .await;
            Ok(no_content())
        }
        Err(e) => Err(failed(&c, &name, "plugin.secret", e).await),
    }
}

/// Unset a configuration value (its manifest default applies again).
#[utoipa::path(delete, path = "/api/v1/plugins/{name}/config/{key}", tag = "plugins",
    params(("name" = String, Path, description = "Plugin name"), ("key" = String, Path, description = "Config key")),
    security(("bearer" = [])),
    responses((status = 200, body = super::PluginDetail),
              (status = 401, body = super::super::error::ErrorBody), (status = 403, body = super::super::error::ErrorBody),
              (status = 404, body = super::super::error::ErrorBody)))]
pub async fn unset_config(
    c: Ctx,
    name: String,
    key: String,
) -> Result<warp::reply::Response, ApiError> {
    config(c, name, key, None).await
}

/// Delete a secret's value.
#[utoipa::path(delete, path = "/api/v1/plugins/{name}/secrets/{secret}", tag = "plugins",
    params(("name" = String, Path, description = "Plugin name"), ("secret" = String, Path, description = "Secret name")),
    security(("bearer" = [])),
    responses((status = 204, description = "Deleted"),
              (status = 401, body = super::super::error::ErrorBody), (status = 403, body = super::super::error::ErrorBody),
              (status = 404, body = super::super::error::ErrorBody)))]
pub async fn unset_secret(
    c: Ctx,
    name: String,
    secret: String,
) -> Result<warp::reply::Response, ApiError> {
    self::secret(c, name, secret, None).await
}
