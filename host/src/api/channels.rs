//! `/channels`: configured channel instances (administrators manage them,
//! owners read them), their outbox, and the unauthenticated webhook routes
//! `POST /channels/{plugin}/webhook` and `POST /channels/{plugin}/{instance}/webhook`,
//! where the channel plugin's signature check is the authentication.

use super::error::ApiError;
use super::{Ctx, Segment, ctx, json_body, limited_body, reply, respond, with};
use crate::channels::{Channel, ChannelError, ChannelPatch, Delivery, NewChannel, WebhookCall};
use crate::server::Services;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use warp::http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode};
use warp::{Filter, Rejection, Reply};

impl From<ChannelError> for ApiError {
    fn from(e: ChannelError) -> Self {
        let message = e.to_string();
        match e {
            ChannelError::Invalid(_) => ApiError::bad_request(message),
            ChannelError::NotFound(_) => ApiError::not_found(message),
            ChannelError::Forbidden(_) => ApiError::forbidden(message),
            ChannelError::Conflict(_) => ApiError::conflict(message),
            ChannelError::RateLimited { retry_after } => {
                let mut err = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
                err.retry_after = Some(retry_after);
                err
            }
            ChannelError::Unavailable(_) => {
                let mut err =
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
                err.retry_after = Some(5);
                err
            }
            ChannelError::Plugin(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "plugin_failed", message)
            }
        }
    }
}

/// The channel instances you may see.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChannelList {
    /// By plugin, then name.
    pub items: Vec<Channel>,
}

/// An instance's newest replies.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryList {
    /// Newest first.
    pub items: Vec<Delivery>,
}

/// How many replies to list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// At most this many (1-500, default 50).
    #[param(minimum = 1, maximum = 500)]
    #[serde(default, deserialize_with = "super::query_number")]
    pub limit: Option<i64>,
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if id.len() > 64 {
        return Err(ApiError::not_found("no such channel"));
    }
    Ok(())
}

/// A webhook request's parts, as received.
pub struct Raw {
    method: Method,
    query: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Raw {
    fn call(self, plugin: String, instance: Option<String>) -> WebhookCall {
        WebhookCall {
            plugin,
            instance,
            method: self.method.as_str().to_string(),
            query: self.query,
            headers: self
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: self.body,
        }
    }
}

fn raw_query() -> impl Filter<Extract = (String,), Error = std::convert::Infallible> + Clone {
    warp::query::raw().or(warp::any().map(String::new)).unify()
}

pub(super) fn routes(
    s: Arc<Services>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let base = warp::path("channels");
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
    let one = warp::path!("channels" / Segment);
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
    let deliveries = warp::path!("channels" / Segment / "deliveries")
        .and(warp::get())
        .and(ctx(s.clone()))
        .and(warp::query::<DeliveryQuery>())
        .and_then(|id: Segment, c, q| async move { respond(deliveries(c, id.0, q).await) });
    let retry = warp::path!("channels" / Segment / "deliveries" / Segment / "retry")
        .and(warp::post())
        .and(ctx(s.clone()))
        .and_then(|id: Segment, d: Segment, c| async move { respond(retry(c, id.0, d.0).await) });
    let limit = s.config.channels.max_body_bytes;
    let request = warp::post()
        .and(warp::method())
        .and(raw_query())
        .and(warp::header::headers_cloned())
        .and(limited_body(limit))
        .map(
            |method: Method, query: String, headers: HeaderMap, body: Vec<u8>| Raw {
                method,
                query,
                headers,
                body,
            },
        );
    let hook_default = warp::path!("channels" / Segment / "webhook")
        .and(request.clone())
        .and(with(s.clone()))
        .and_then(
            |p: Segment, raw: Raw, s| async move { respond(webhook_default(s, p.0, raw).await) },
        );
    let hook_named = warp::path!("channels" / Segment / Segment / "webhook")
        .and(request)
        .and(with(s))
        .and_then(|p: Segment, i: Segment, raw: Raw, s| async move {
            respond(webhook_named(s, p.0, i.0, raw).await)
        });
    let hook = hook_default.or(hook_named).unify();
    hook.or(list)
        .unify()
        .or(create)
        .unify()
        .or(get)
        .unify()
        .or(update)
        .unify()
        .or(delete)
        .unify()
        .or(deliveries)
        .unify()
        .or(retry)
        .unify()
}

/// Receive a webhook for the `default` instance of a channel plugin.
///
/// No token: the plugin verifies the provider's signature. The plugin's own
/// reply is sent once every message it carried is queued.
#[utoipa::path(post, path = "/api/v1/channels/{plugin}/webhook", tag = "channels",
    params(("plugin" = String, Path, description = "Channel plugin")),
    request_body(content = String, description = "The provider's request, byte for byte", content_type = "application/octet-stream"),
    responses((status = 200, description = "The plugin's reply"), (status = 401, description = "The signature did not verify"),
              (status = 404, body = super::error::ErrorBody), (status = 413, body = super::error::ErrorBody),
              (status = 429, body = super::error::ErrorBody), (status = 502, body = super::error::ErrorBody),
              (status = 503, body = super::error::ErrorBody)))]
pub async fn webhook_default(
    s: Arc<Services>,
    plugin: String,
    raw: Raw,
) -> Result<warp::reply::Response, ApiError> {
    webhook(s, raw.call(plugin, None)).await
}

/// Receive a webhook for a named instance of a channel plugin.
#[utoipa::path(post, path = "/api/v1/channels/{plugin}/{instance}/webhook", tag = "channels",
    params(("plugin" = String, Path, description = "Channel plugin"), ("instance" = String, Path, description = "Instance name")),
    request_body(content = String, description = "The provider's request, byte for byte", content_type = "application/octet-stream"),
    responses((status = 200, description = "The plugin's reply"), (status = 401, description = "The signature did not verify"),
              (status = 404, body = super::error::ErrorBody), (status = 413, body = super::error::ErrorBody),
              (status = 429, body = super::error::ErrorBody), (status = 502, body = super::error::ErrorBody),
              (status = 503, body = super::error::ErrorBody)))]
pub async fn webhook_named(
    s: Arc<Services>,
    plugin: String,
    instance: String,
    raw: Raw,
) -> Result<warp::reply::Response, ApiError> {
    webhook(s, raw.call(plugin, Some(instance))).await
}

async fn webhook(s: Arc<Services>, call: WebhookCall) -> Result<warp::reply::Response, ApiError> {
    let reply = s.channels.webhook(call).await?;
    let mut response = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        let valid =
            HeaderName::from_bytes(name.as_bytes()).is_ok() && HeaderValue::from_str(value).is_ok();
        let hop = matches!(
            name.to_ascii_lowercase().as_str(),
            "content-length" | "transfer-encoding" | "connection" | "set-cookie"
        );
        if valid && !hop {
            response = response.header(name.as_str(), value.as_str());
        }
    }
    response
        .body(reply.body.into())
        .map_err(|e| ApiError::internal("the webhook reply", &e))
}

/// The channel instances you may see (administrators: all; others: those they own).
#[utoipa::path(get, path = "/api/v1/channels", tag = "channels", security(("bearer" = [])),
    responses((status = 200, body = ChannelList), (status = 401, body = super::error::ErrorBody)))]
pub async fn list(c: Ctx) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    let items = c.s.channels.list(&c.task_caller()).await?;
    Ok(reply(StatusCode::OK, &ChannelList { items }))
}

/// Add a channel instance (administrators).
#[utoipa::path(post, path = "/api/v1/channels", tag = "channels", request_body = NewChannel, security(("bearer" = [])),
    responses((status = 201, body = Channel), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
              (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody),
              (status = 409, description = "The plugin has an instance of that name", body = super::error::ErrorBody)))]
pub async fn create(c: Ctx, body: NewChannel) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("plugins:write")?;
    let plugin = body.plugin.clone();
    let result = c.s.channels.create(&c.task_caller(), body).await;
    let (target, outcome) = match &result {
        Ok(ch) => (format!("channel:{}", ch.id), "ok"),
        Err(ChannelError::Forbidden(_)) => (format!("plugin:{plugin}"), "denied"),
        Err(_) => (format!("plugin:{plugin}"), "error"),
    };
    c.audit("channel.create", &target, outcome, serde_json::json!({}))
        .await;
    Ok(reply(StatusCode::CREATED, &result?))
}

/// One channel instance (its owner or an administrator).
#[utoipa::path(get, path = "/api/v1/channels/{id}", tag = "channels", params(("id" = String, Path, description = "Channel id")), security(("bearer" = [])),
    responses((status = 200, body = Channel), (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn get(c: Ctx, id: String) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    check_id(&id)?;
    Ok(reply(
        StatusCode::OK,
        &c.s.channels.get(&c.task_caller(), &id).await?,
    ))
}

/// Change a channel instance (administrators).
#[utoipa::path(patch, path = "/api/v1/channels/{id}", tag = "channels", params(("id" = String, Path, description = "Channel id")), request_body = ChannelPatch, security(("bearer" = [])),
    responses((status = 200, body = Channel), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
              (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn update(
    c: Ctx,
    id: String,
    body: ChannelPatch,
) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("plugins:write")?;
    check_id(&id)?;
    let result = c.s.channels.update(&c.task_caller(), &id, body).await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    c.audit(
        "channel.update",
        &format!("channel:{id}"),
        outcome,
        serde_json::json!({}),
    )
    .await;
    Ok(reply(StatusCode::OK, &result?))
}

/// Remove a channel instance with its secrets, dedupe records and outbox (administrators).
#[utoipa::path(delete, path = "/api/v1/channels/{id}", tag = "channels", params(("id" = String, Path, description = "Channel id")), security(("bearer" = [])),
    responses((status = 204, description = "Removed"), (status = 401, body = super::error::ErrorBody),
              (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn delete(c: Ctx, id: String) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("plugins:write")?;
    check_id(&id)?;
    let result = c.s.channels.delete(&c.task_caller(), &id).await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    c.audit(
        "channel.delete",
        &format!("channel:{id}"),
        outcome,
        serde_json::json!({}),
    )
    .await;
    result?;
    Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
}

/// A channel instance's newest replies and how each went.
#[utoipa::path(get, path = "/api/v1/channels/{id}/deliveries", tag = "channels",
    params(("id" = String, Path, description = "Channel id"), DeliveryQuery), security(("bearer" = [])),
    responses((status = 200, body = DeliveryList), (status = 400, body = super::error::ErrorBody),
              (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn deliveries(
    c: Ctx,
    id: String,
    q: DeliveryQuery,
) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    check_id(&id)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit must be 1-500"));
    }
    let items =
        c.s.channels
            .deliveries(&c.task_caller(), &id, limit as usize)
            .await?;
    Ok(reply(StatusCode::OK, &DeliveryList { items }))
}

/// Send a failed reply again (administrators).
#[utoipa::path(post, path = "/api/v1/channels/{id}/deliveries/{delivery}/retry", tag = "channels",
    params(("id" = String, Path, description = "Channel id"), ("delivery" = String, Path, description = "Delivery id")), security(("bearer" = [])),
    responses((status = 200, body = Delivery), (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
              (status = 404, body = super::error::ErrorBody), (status = 409, description = "The reply has not failed", body = super::error::ErrorBody)))]
pub async fn retry(
    c: Ctx,
    id: String,
    delivery: String,
) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("tasks")?;
    check_id(&id)?;
    if delivery.len() > 64 {
        return Err(ApiError::not_found("no such delivery"));
    }
    let result = c.s.channels.retry(&c.task_caller(), &id, &delivery).await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    c.audit(
        "channel.delivery.retry",
        &format!("delivery:{delivery}"),
        outcome,
        serde_json::json!({}),
    )
    .await;
    Ok(reply(StatusCode::OK, &result?))
}
