//! `/limits`: the size limits a client should check before it sends, so a
//! page can refuse an oversized upload before the first byte leaves.

use super::{Ctx, ctx, reply, respond};
use crate::server::Services;
use serde::Serialize;
use std::sync::Arc;
use warp::http::StatusCode;
use warp::{Filter, Rejection};

/// The server's size limits, in bytes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SizeLimits {
    /// Largest plugin package upload (`max_upload_mb`).
    pub plugin_upload_bytes: u64,
    /// Largest file put into or read from a sandbox (`[sandbox] max_file_bytes`).
    pub sandbox_file_bytes: u64,
    /// Largest task input or WebSocket message (`[tasks] max_input_bytes`).
    pub task_input_bytes: u64,
}

pub(super) fn routes(
    s: Arc<Services>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("limits")
        .and(warp::get())
        .and(ctx(s))
        .and_then(|c: Ctx| async move { respond(Ok(limits(c))) })
}

/// The size limits to check before sending.
#[utoipa::path(get, path = "/api/v1/limits", tag = "meta", security(("bearer" = [])),
    responses((status = 200, body = SizeLimits), (status = 401, body = super::error::ErrorBody)))]
pub fn limits(c: Ctx) -> warp::reply::Response {
    let body = SizeLimits {
        plugin_upload_bytes: c.s.config.max_upload_bytes,
        sandbox_file_bytes: c.s.sandboxes.config().max_file_bytes,
        task_input_bytes: c.s.tasks.config().max_input_bytes as u64,
    };
    reply(StatusCode::OK, &body)
}
