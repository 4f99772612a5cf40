//! `/sandboxes`: create, list, inspect, stop and delete sandboxes, run
//! commands, move files in and out, read resource use; administrators set
//! per-user sandbox limits at `/users/{id}/sandbox-limits`. The WebSocket
//! faces (streamed exec, terminal) are in [`super::sandbox_ws`].

use super::error::ApiError;
use super::{Ctx, ListOf, Paging, Segment, ctx, json_body, query, reply, respond};
use crate::sandbox::exec::{ExecRequest, ExecResult};
use crate::sandbox::files::FileEntry;
use crate::sandbox::storage::{Resize, UserStorage};
use crate::sandbox::{Caller, CreateSandbox, Sandbox, SandboxError, UserLimits};
use crate::server::Services;
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use warp::http::header::CONNECTION;
use warp::http::{HeaderValue, StatusCode};
use warp::{Filter, Rejection, Reply};

impl From<SandboxError> for ApiError {
    fn from(e: SandboxError) -> Self {
        let (status, code) = match &e {
            SandboxError::Unavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "sandboxes_unavailable")
            }
            SandboxError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            SandboxError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            SandboxError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            SandboxError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            SandboxError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            SandboxError::Failed(m) => return ApiError::internal("the sandbox operation", m),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl Ctx {
    /// The caller as the sandbox service sees them.
    pub fn sandbox_caller(&self) -> Caller {
        Caller {
            user_id: self.who.user.id.clone(),
            admin: self.who.is_admin(),
        }
    }
}

/// Sandbox list filters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Administrators: every user's sandboxes.
    #[serde(default)]
    pub all: Option<bool>,
    /// Items per page, 1-500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    #[serde(default, deserialize_with = "super::query_number")]
    pub limit: Option<i64>,
    /// The `next` cursor of the previous page.
    #[param(max_length = 200)]
    pub after: Option<String>,
}

/// Delete options.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// Keep the workspace volume (for an administrator to recover files with the engine's tools).
    #[serde(default)]
    pub keep_volume: Option<bool>,
}

/// A file in the workspace.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FileQuery {
    /// The file, relative to `/workspace` or absolute inside it (required).
    #[param(max_length = 4096)]
    pub path: Option<String>,
}

/// A directory of the workspace and how deep to list it.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PathQuery {
    /// Relative to `/workspace`, or absolute inside it (default: `/workspace`).
    #[param(max_length = 4096)]
    pub path: Option<String>,
    /// Listing depth, 1-32 (default 1: the directory's own entries).
    #[param(minimum = 1, maximum = 32)]
    #[serde(default, deserialize_with = "super::query_number")]
    pub depth: Option<i64>,
}

/// A directory listing.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Listing {
    /// Entries, by path.
    pub items: Vec<FileEntry>,
    /// More than 10,000 entries: the rest were left out.
    pub truncated: bool,
}

/// A stored file.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Written {
    /// Its absolute path.
    pub path: String,
    /// Bytes written.
    pub size: u64,
}

pub(super) fn routes(
    s: Arc<Services>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let base = warp::path("sandboxes");
    let list = base
        .and(warp::path::end())
        .and(warp::get())
        .and(ctx(s.clone()))
        .and(query::<ListQuery>())
        .and_then(|c, q| async move { respond(list(c, q).await) });
    let create = base
        .and(warp::path::end())
        .and(warp::post())
        .and(ctx(s.clone()))
        .and(json_body())
        .and_then(|c, b| async move { respond(create(c, b).await) });
    let storage = warp::path!("sandboxes" / "storage")
        .and(warp::get())
        .and(ctx(s.clone()))
        .and_then(|c| async move { respond(storage(c).await) });
    let one = warp::path!("sandboxes" / Segment);
    let resize = one
        .and(warp::patch())
        .and(ctx(s.clone()))
        .and(json_body())
        .and_then(|id: Segment, c, b| async move { respond(resize(c, id.0, b).await) });
    let get = one
        .and(warp::get())
        .and(ctx(s.clone()))
        .and_then(|id: Segment, c| async move { respond(get(c, id.0).await) });
    let delete = one
        .and(warp::delete())
        .and(ctx(s.clone()))
        .and(query::<DeleteQuery>())
        .and_then(|id: Segment, c, q| async move { respond(delete(c, id.0, q).await) });
    let stop = warp::path!("sandboxes" / Segment / "stop")
        .and(warp::post())
        .and(ctx(s.clone()))
        .and_then(|id: Segment, c| async move { respond(stop(c, id.0).await) });
    let exec = warp::path!("sandboxes" / Segment / "exec")
        .and(warp::post())
        .and(ctx(s.clone()))
        .and(json_body())
        .and_then(|id: Segment, c, b| async move { respond(exec(c, id.0, b).await) });
    let stats = warp::path!("sandboxes" / Segment / "stats")
        .and(warp::get())
        .and(ctx(s.clone()))
        .and_then(|id: Segment, c| async move { respond(stats(c, id.0).await) });
    let files = warp::path!("sandboxes" / Segment / "files")
        .and(warp::get())
        .and(ctx(s.clone()))
        .and(query::<PathQuery>())
        .and_then(|id: Segment, c, q| async move { respond(list_files(c, id.0, q).await) });
    let file = warp::path!("sandboxes" / Segment / "file");
    let download = file
        .and(warp::get())
        .and(ctx(s.clone()))
        .and(query::<FileQuery>())
        .and_then(|id: Segment, c, q| async move { respond(download(c, id.0, q).await) });
    let upload = file
        .and(warp::put())
        .and(ctx(s.clone()))
        .and(query::<FileQuery>())
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .and_then(|id: Segment, c, q, len, body| async move {
            respond(upload(c, id.0, q, len, body).await)
        });
    let limits = warp::path!("users" / Segment / "sandbox-limits");
    let get_limits = limits
        .and(warp::get())
        .and(ctx(s.clone()))
        .and_then(|id: Segment, c| async move { respond(get_limits(c, id.0).await) });
    let put_limits = limits
        .and(warp::put())
        .and(ctx(s))
        .and(json_body())
        .and_then(|id: Segment, c, b| async move { respond(put_limits(c, id.0, b).await) });
    list.or(create)
        .unify()
        .or(storage)
        .unify()
        .or(get)
        .unify()
        .or(resize)
        .unify()
        .or(delete)
        .unify()
        .or(stop)
        .unify()
        .or(exec)
        .unify()
        .or(stats)
        .unify()
        .or(files)
        .unify()
        .or(download)
        .unify()
        .or(upload)
        .unify()
        .or(get_limits)
        .unify()
        .or(put_limits)
        .unify()
}

/// The caller's sandboxes (everyone's for an administrator with `all=true`).
#[utoipa::path(get, path = "/api/v1/sandboxes", tag = "sandboxes", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = ListOf<Sandbox>), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody)))]
pub async fn list(c: Ctx, q: ListQuery) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    let paging = Paging {
        limit: q.limit,
        after: q.after,
    };
    let (items, next) =
        c.s.sandboxes
            .list(
                &c.sandbox_caller(),
                q.all == Some(true),
                paging.after()?,
                paging.limit()?,
            )
            .await?;
    Ok(reply(StatusCode::OK, &ListOf { items, next }))
}

/// Create a sandbox and start it (from the warm pool when one fits).
#[utoipa::path(post, path = "/api/v1/sandboxes", tag = "sandboxes", request_body = CreateSandbox, security(("bearer" = [])),
    responses((status = 201, body = Sandbox), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
              (status = 403, description = "Limits above your maxima", body = super::error::ErrorBody),
              (status = 409, description = "Name taken or quota used up", body = super::error::ErrorBody),
              (status = 503, description = "No container engine or no image", body = super::error::ErrorBody)))]
pub async fn create(c: Ctx, body: CreateSandbox) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("sandboxes")?;
    let result = c.s.sandboxes.create(&c.sandbox_caller(), body).await;
    let (outcome, target) = match &result {
        Ok(s) => ("ok", format!("sandbox:{}", s.id)),
        Err(_) => ("error", "sandbox".to_string()),
    };
    c.audit("sandbox.create", &target, outcome, serde_json::json!({}))
        .await;
    Ok(reply(StatusCode::CREATED, &result?))
}

/// One sandbox.
#[utoipa::path(get, path = "/api/v1/sandboxes/{id}", tag = "sandboxes", params(("id" = String, Path, description = "Sandbox id")), security(("bearer" = [])),
    responses((status = 200, body = Sandbox), (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn get(c: Ctx, id: String) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    let s = c.s.sandboxes.get(&c.sandbox_caller(), &id).await?;
    Ok(reply(StatusCode::OK, &s))
}

/// Grow a sandbox's workspace (never shrink); the new size applies when its container next starts.
#[utoipa::path(patch, path = "/api/v1/sandboxes/{id}", tag = "sandboxes", params(("id" = String, Path, description = "Sandbox id")), request_body = Resize, security(("bearer" = [])),
    responses((status = 200, body = Sandbox), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
              (status = 403, description = "Above your disk_mb maximum", body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody),
              (status = 409, description = "Smaller than now, or beyond your storage quota", body = super::error::ErrorBody)))]
pub async fn resize(c: Ctx, id: String, body: Resize) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("sandboxes")?;
    let disk_mb = body.disk_mb;
    let s =
        c.s.sandboxes
            .resize_workspace(&c.sandbox_caller(), &id, body)
            .await?;
    c.audit(
        "sandbox.resize",
        &format!("sandbox:{id}"),
        "ok",
        serde_json::json!({ "disk_mb": disk_mb }),
    )
    .await;
    Ok(reply(StatusCode::OK, &s))
}

/// Workspace storage per user: sandboxes, the sum of their workspace sizes, the quota, and the host disk they take (administrators).
#[utoipa::path(get, path = "/api/v1/sandboxes/storage", tag = "sandboxes", security(("bearer" = [])),
    responses((status = 200, body = StorageReport), (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody)))]
pub async fn storage(c: Ctx) -> Result<warp::reply::Response, ApiError> {
    admin_only(&c)?;
    c.require_scope("read")?;
    let items = c.s.sandboxes.storage().await?;
    Ok(reply(StatusCode::OK, &StorageReport { items }))
}

/// Workspace storage of every user with sandboxes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StorageReport {
    /// One entry per user, by user id.
    pub items: Vec<UserStorage>,
}

/// Delete a sandbox: its container and (unless `keep_volume`) its workspace.
#[utoipa::path(delete, path = "/api/v1/sandboxes/{id}", tag = "sandboxes", params(("id" = String, Path, description = "Sandbox id"), DeleteQuery), security(("bearer" = [])),
    responses((status = 204, description = "Deleted"), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody),
              (status = 503, body = super::error::ErrorBody)))]
pub async fn delete(c: Ctx, id: String, q: DeleteQuery) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("sandboxes")?;
    let keep = q.keep_volume == Some(true);
    c.s.sandboxes
        .delete(&c.sandbox_caller(), &id, !keep)
        .await?;
    c.audit(
        "sandbox.delete",
        &format!("sandbox:{id}"),
        "ok",
        serde_json::json!({ "keep_volume": keep }),
    )
    .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Stop a sandbox: the container goes, the workspace stays; the next command starts it again.
#[utoipa::path(post, path = "/api/v1/sandboxes/{id}/stop", tag = "sandboxes", params(("id" = String, Path, description = "Sandbox id")), security(("bearer" = [])),
    responses((status = 200, body = Sandbox), (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody),
              (status = 503, body = super::error::ErrorBody)))]
pub async fn stop(c: Ctx, id: String) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("sandboxes")?;
    let s = c.s.sandboxes.stop(&c.sandbox_caller(), &id).await?;
    c.audit(
        "sandbox.stop",
        &format!("sandbox:{id}"),
        "ok",
        serde_json::json!({}),
    )
    .await;
    Ok(reply(StatusCode::OK, &s))
}

/// Run a command to its end (output capped, then cut with a marker).
#[utoipa::path(post, path = "/api/v1/sandboxes/{id}/exec", tag = "sandboxes", params(("id" = String, Path, description = "Sandbox id")), request_body = ExecRequest, security(("bearer" = [])),
    responses((status = 200, body = ExecResult), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
              (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody), (status = 413, body = super::error::ErrorBody),
              (status = 503, body = super::error::ErrorBody)))]
pub async fn exec(
    c: Ctx,
    id: String,
    body: ExecRequest,
) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("sandboxes")?;
    let result =
        c.s.sandboxes
            .exec_collect(&c.sandbox_caller(), &id, body)
            .await?;
    Ok(reply(StatusCode::OK, &result))
}

/// Resource use of a running sandbox.
#[utoipa::path(get, path = "/api/v1/sandboxes/{id}/stats", tag = "sandboxes", params(("id" = String, Path, description = "Sandbox id")), security(("bearer" = [])),
    responses((status = 200, body = crate::sandbox::driver::Stats), (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody),
              (status = 409, description = "Not running", body = super::error::ErrorBody), (status = 503, body = super::error::ErrorBody)))]
pub async fn stats(c: Ctx, id: String) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    let s = c.s.sandboxes.stats(&c.sandbox_caller(), &id).await?;
    Ok(reply(StatusCode::OK, &s))
}

/// List a directory of the workspace (`/workspace/output` holds results).
#[utoipa::path(get, path = "/api/v1/sandboxes/{id}/files", tag = "sandboxes", params(("id" = String, Path, description = "Sandbox id"), PathQuery), security(("bearer" = [])),
    responses((status = 200, body = Listing), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
              (status = 404, body = super::error::ErrorBody), (status = 409, description = "Stopped and the quota is used up", body = super::error::ErrorBody),
              (status = 503, body = super::error::ErrorBody)))]
pub async fn list_files(
    c: Ctx,
    id: String,
    q: PathQuery,
) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    let depth = q.depth.unwrap_or(1);
    if !(1..=32).contains(&depth) {
        return Err(ApiError::bad_request("depth must be between 1 and 32"));
    }
    let path = q.path.unwrap_or_default();
    let (items, truncated) =
        c.s.sandboxes
            .list_files(&c.sandbox_caller(), &id, &path, depth as u32)
            .await?;
    Ok(reply(StatusCode::OK, &Listing { items, truncated }))
}

/// Download a file, byte for byte.
#[utoipa::path(get, path = "/api/v1/sandboxes/{id}/file", tag = "sandboxes", params(("id" = String, Path, description = "Sandbox id"), FileQuery), security(("bearer" = [])),
    responses((status = 200, description = "The file", content_type = "application/octet-stream", body = Vec<u8>),
              (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
              (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody), (status = 413, body = super::error::ErrorBody),
              (status = 503, body = super::error::ErrorBody)))]
pub async fn download(c: Ctx, id: String, q: FileQuery) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    let path = q
        .path
        .ok_or_else(|| ApiError::bad_request("give the file's `path`"))?;
    let max = c.s.sandboxes.config().max_file_bytes;
    let mut file =
        c.s.sandboxes
            .open_file(&c.sandbox_caller(), &id, &path, max)
            .await?;
    // Streamed as the sandbox reads it; a read that breaks off aborts the
    // response short of its Content-Length.
    let body = futures_util::stream::poll_fn(move |cx| file.bytes.poll_recv(cx));
    let mut response = warp::reply::stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert("content-length", HeaderValue::from(file.size));
    Ok(response)
}

/// Upload a file (the raw request body), creating parent directories; the old
/// file is replaced only once every byte arrived.
#[utoipa::path(put, path = "/api/v1/sandboxes/{id}/file", tag = "sandboxes", params(("id" = String, Path, description = "Sandbox id"), FileQuery), security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = Written), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
              (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody),
              (status = 413, body = super::error::ErrorBody), (status = 503, body = super::error::ErrorBody)))]
pub async fn upload<S, B>(
    c: Ctx,
    id: String,
    q: FileQuery,
    len: Option<u64>,
    body: S,
) -> Result<warp::reply::Response, ApiError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Send + 'static,
    B: bytes::Buf + Send + 'static,
{
    c.require_scope("sandboxes")?;
    let path = q
        .path
        .ok_or_else(|| ApiError::bad_request("give the file's `path`"))?;
    let data = body
        .map_ok(|mut b| b.copy_to_bytes(b.remaining()))
        .map_err(|e| e.to_string())
        .boxed();
    let written =
        c.s.sandboxes
            .write_file(&c.sandbox_caller(), &id, &path, len, data)
            .await;
    match written {
        Ok(size) => {
            let path = crate::sandbox::files::workspace_path(&path)?;
            Ok(reply(StatusCode::CREATED, &Written { path, size }))
        }
        Err(e) => {
            // The body may be left unread (a refused 256 MiB upload): close the
            // connection so the client does not send its next request after it.
            let mut response = ApiError::from(e).into_response();
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            Ok(response)
        }
    }
}

fn admin_only(c: &Ctx) -> Result<(), ApiError> {
    c.require_admin()?;
    Ok(())
}

/// A user's sandbox limits (administrators).
#[utoipa::path(get, path = "/api/v1/users/{id}/sandbox-limits", tag = "sandboxes", params(("id" = String, Path, description = "User id")), security(("bearer" = [])),
    responses((status = 200, body = UserLimits), (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
              (status = 404, body = super::error::ErrorBody)))]
pub async fn get_limits(c: Ctx, id: String) -> Result<warp::reply::Response, ApiError> {
    admin_only(&c)?;
    c.require_scope("read")?;
    c.s.store.user(&id).await?;
    let limits = c.s.sandboxes.user_limits(&id).await?;
    Ok(reply(StatusCode::OK, &limits))
}

/// Set a user's sandbox quota and maxima (administrators; never above the system's; `{}` restores the system's).
#[utoipa::path(put, path = "/api/v1/users/{id}/sandbox-limits", tag = "sandboxes", params(("id" = String, Path, description = "User id")), request_body = UserLimits, security(("bearer" = [])),
    responses((status = 200, body = UserLimits), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
              (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn put_limits(
    c: Ctx,
    id: String,
    body: UserLimits,
) -> Result<warp::reply::Response, ApiError> {
    admin_only(&c)?;
    c.require_scope("users:write")?;
    c.s.store.user(&id).await?;
    if body.quota.is_some_and(|q| q > 1000) {
        return Err(ApiError::bad_request("quota is at most 1000"));
    }
    c.s.sandboxes.set_user_limits(&id, &body).await?;
    c.audit(
        "sandbox.limits",
        &format!("user:{id}"),
        "ok",
        serde_json::to_value(body).unwrap_or_default(),
    )
    .await;
    Ok(reply(StatusCode::OK, &body))
}
