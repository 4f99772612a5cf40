//! `/tools`: what the live plugins and the caller's external MCP servers offer,
//! and tool calls with the caller's identity.

use super::error::ApiError;
use super::{Ctx, ListOf, Segment, ctx, json_body, reply, respond};
use crate::server::Services;
use crate::tools::{self, Caller, ToolEntry};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use warp::http::StatusCode;
use warp::{Filter, Rejection};

/// A tool call.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallRequest {
    /// Arguments matching the tool's input schema (default `{}`).
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub arguments: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

/// A tool's result.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallResult {
    /// Content blocks: `{"type":"text","text"}`, `{"type":"json","json"}`, `{"type":"bytes","mime","data"(base64)}`.
    #[schema(value_type = Vec<Object>)]
    pub content: Vec<serde_json::Value>,
    /// Structured result matching the tool's output schema, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub structured: Option<serde_json::Value>,
    /// The request id (also passed to the plugin).
    pub request_id: String,
}

pub(super) fn routes(
    s: Arc<Services>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let list = warp::path!("tools")
        .and(warp::get())
        .and(ctx(s.clone()))
        .and_then(|c| async move { respond(list(c)) });
    let call = warp::path!("tools" / Segment / Segment)
        .and(warp::post())
        .and(ctx(s))
        .and(json_body())
        .and_then(
            |p: Segment, t: Segment, c, b| async move { respond(call(c, p.0, t.0, b).await) },
        );
    list.or(call).unify()
}

/// The caller as the tool services see it.
pub(super) fn caller(c: &Ctx) -> Caller {
    crate::mcp::handler::caller_of(&c.who)
}

/// Every tool of the enabled plugins you may use, then the tools of your
/// connected external MCP servers (`plugin` is then the server's name), with
/// JSON Schemas.
#[utoipa::path(get, path = "/api/v1/tools", tag = "tools", security(("bearer" = [])),
    responses((status = 200, body = ListOf<ToolEntry>), (status = 401, body = super::error::ErrorBody)))]
pub fn list(c: Ctx) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    let caller = caller(&c);
    let mut items: Vec<ToolEntry> = tools::visible(&c.s.plugins, &caller);
    items.extend(c.s.remotes.visible(&caller));
    Ok(reply(StatusCode::OK, &ListOf { items, next: None }))
}

/// Call a tool. The path's last segment is `{tool}:call`.
#[utoipa::path(post, path = "/api/v1/tools/{plugin}/{tool}:call", tag = "tools",
    params(("plugin" = String, Path, description = "Plugin name"), ("tool" = String, Path, description = "Tool name")),
    request_body = CallRequest, security(("bearer" = [])),
    responses((status = 200, body = CallResult), (status = 400, body = super::error::ErrorBody),
              (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
              (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody),
              (status = 422, body = super::error::ErrorBody), (status = 502, body = super::error::ErrorBody),
              (status = 503, body = super::error::ErrorBody), (status = 504, body = super::error::ErrorBody)))]
pub async fn call(
    c: Ctx,
    plugin: String,
    segment: String,
    body: CallRequest,
) -> Result<warp::reply::Response, ApiError> {
    let Some(tool) = segment.strip_suffix(":call") else {
        return Err(ApiError::not_found(
            "call a tool with POST /api/v1/tools/{plugin}/{tool}:call",
        ));
    };
    c.require_scope("tools:call")?;
    if !body.arguments.is_object() {
        return Err(ApiError::bad_request("arguments must be a JSON object"));
    }
    if c.s.plugins.get(&plugin).is_none() && c.s.remotes.offers(&caller(&c), &plugin) {
        return call_remote(c, &plugin, tool, body.arguments).await;
    }
    let arguments = body.arguments.to_string();
    let (result, denied) = tools::call_live(
        &c.s.plugins,
        &plugin,
        tool,
        &arguments,
        &caller(&c),
        &c.request_id,
        Default::default(),
    )
    .await;
    if !denied.is_empty() {
        c.audit(
            "capability.denied",
            &format!("plugin:{plugin}"),
            "denied",
            serde_json::json!({ "tool": tool, "denied": denied }),
        )
        .await;
    }
    let output = result?;
    let content = output.content.iter().map(tools::content_json).collect();
    let structured = output
        .structured
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok());
    Ok(reply(
        StatusCode::OK,
        &CallResult {
            content,
            structured,
            request_id: c.request_id,
        },
    ))
}

/// A tool call to an external MCP server, its content in this API's block shapes.
async fn call_remote(
    c: Ctx,
    server: &str,
    tool: &str,
    arguments: serde_json::Value,
) -> Result<warp::reply::Response, ApiError> {
    use crate::remote::CallError;
    use rmcp::model::ContentBlock;
    let serde_json::Value::Object(arguments) = arguments else {
        return Err(ApiError::bad_request("arguments must be a JSON object"));
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let _cancel_on_drop = cancel.clone().drop_guard();
    let result =
        c.s.remotes
            .call(&caller(&c), server, tool, Some(arguments), &cancel)
            .await
            .map_err(|e| {
                let message = e.to_string();
                match e {
                    CallError::Unknown(_) => ApiError::not_found(message),
                    CallError::InvalidArguments(_) => {
                        ApiError::new(StatusCode::BAD_REQUEST, "invalid_arguments", message)
                    }
                    CallError::Unavailable(_) => {
                        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "tool_unavailable", message)
                    }
                    CallError::Timeout(_) => {
                        ApiError::new(StatusCode::GATEWAY_TIMEOUT, "tool_timeout", message)
                    }
                    CallError::Failed(_) | CallError::Cancelled => {
                        ApiError::new(StatusCode::BAD_GATEWAY, "tool_failed", message)
                    }
                }
            })?;
    let content: Vec<serde_json::Value> = result
        .content
        .iter()
        .map(|block| match block {
            ContentBlock::Text(t) => serde_json::json!({ "type": "text", "text": t.text }),
            ContentBlock::Image(i) => {
                serde_json::json!({ "type": "image", "mime": i.mime_type, "data": i.data })
            }
            ContentBlock::Audio(a) => {
                serde_json::json!({ "type": "audio", "mime": a.mime_type, "data": a.data })
            }
            other => serde_json::to_value(other).unwrap_or_default(),
        })
        .collect();
    if result.is_error == Some(true) {
        let text: Vec<&str> = content.iter().filter_map(|b| b["text"].as_str()).collect();
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "tool_failed",
            format!("`{server}__{tool}` failed: {}", text.join("\n")),
        ));
    }
    Ok(reply(
        StatusCode::OK,
        &CallResult {
            content,
            structured: result.structured_content,
            request_id: c.request_id,
        },
    ))
}
