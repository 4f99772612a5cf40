//! Installing plugins: by upload (`.tar.gz` package, or a multipart form with the
//! package or with `manifest` + `component`), from an http(s) URL checked against
//! a sha256, or from a path on the server (administrators).

use super::super::error::ApiError;
use super::super::{Ctx, ctx, json_body, query, respond};
use super::download;
use super::job::{WaitQuery, install_from};
use crate::server::Services;
use bytes::Buf;
use futures_util::TryStreamExt;
use serde::Deserialize;
use std::sync::Arc;
use warp::http::StatusCode;
use warp::{Filter, Rejection};

/// Install options in the query string.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InstallQuery {
    /// Grant every requested capability (administrators only).
    #[serde(default)]
    pub grant: bool,
    /// Seconds to wait for the component to compile before answering 202
    /// (0-600, default 10).
    #[param(minimum = 0, maximum = 600)]
    pub wait: Option<u64>,
}

/// A `.tar.gz` plugin package (request body of `POST /plugins`).
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Package(pub Vec<u8>);

/// A multipart upload: either `package`, or `manifest` and `component`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PackageForm {
    /// A `.tar.gz` package.
    #[schema(value_type = Option<String>, format = Binary)]
    pub package: Option<Vec<u8>>,
    /// The plugin.toml manifest.
    #[schema(value_type = Option<String>, format = Binary)]
    pub manifest: Option<Vec<u8>>,
    /// The `.wasm` component the manifest names.
    #[schema(value_type = Option<String>, format = Binary)]
    pub component: Option<Vec<u8>>,
}

/// Install from a URL.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FromUrl {
    /// An http(s) URL of a `.tar.gz` package. Non-administrators may only use
    /// public addresses.
    #[schema(max_length = 2048, pattern = "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]")]
    pub url: String,
    /// The package's SHA-256 (64 hex characters); the install fails on a mismatch.
    #[schema(min_length = 64, max_length = 64, pattern = "^[0-9a-fA-F]+$")]
    pub sha256: String,
    /// Grant every requested capability (administrators only).
    #[serde(default)]
    pub grant: bool,
}

/// Install from a path on the server.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FromPath {
    /// An absolute path to a package directory or `.tar.gz` on the server's file system.
    #[schema(min_length = 1, max_length = 4096, pattern = "^/")]
    pub path: String,
    /// Grant every requested capability.
    #[serde(default)]
    pub grant: bool,
}

pub(super) fn routes(
    s: Arc<Services>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let limit = s.config.max_upload_bytes;
    let upload = warp::path!("plugins")
        .and(warp::post())
        .and(ctx(s.clone()))
        .and(query::<InstallQuery>())
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .and_then(
            move |c: Ctx, q: InstallQuery, ct: Option<String>, length: Option<u64>, body| async move {
                if length.is_some_and(|l| l > limit) {
                    return respond(Err(too_large(limit)));
                }
                respond(upload(c, q, ct, body, limit).await)
            },
        );
    let from_url = warp::path!("plugins" / "from-url")
        .and(warp::post())
        .and(ctx(s.clone()))
        .and(query::<WaitQuery>())
        .and(json_body())
        .and_then(|c, w, b| async move { respond(from_url(c, w, b).await) });
    let from_path = warp::path!("plugins" / "from-path")
        .and(warp::post())
        .and(ctx(s))
        .and(query::<WaitQuery>())
        .and(json_body())
        .and_then(|c, w, b| async move { respond(from_path(c, w, b).await) });
    upload.or(from_url).unify().or(from_path).unify()
}

fn scratch(c: &Ctx) -> Result<tempfile::TempDir, ApiError> {
    let dir = c.s.config.data_dir().join("tmp");
    std::fs::create_dir_all(&dir)
        .map_err(|e| ApiError::internal("creating a scratch directory", &e))?;
    tempfile::Builder::new()
        .prefix(".upload-")
        .tempdir_in(&dir)
        .map_err(|e| ApiError::internal("creating a scratch directory", &e))
}

async fn collect(
    body: impl futures_util::Stream<Item = Result<impl Buf + Send + 'static, warp::Error>>
    + Unpin
    + Send
    + 'static,
    limit: u64,
) -> Result<Vec<u8>, ApiError> {
    let mut body = body;
    let mut out = Vec::new();
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the upload failed: {e}")))?
    {
        out.extend_from_slice(chunk.chunk());
        if out.len() as u64 > limit {
            return Err(too_large(limit));
        }
    }
    Ok(out)
}

pub(super) fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!(
            "the upload is larger than {} MiB (server setting max_upload_mb)",
            limit >> 20
        ),
    )
}

/// Upload a plugin: a `.tar.gz` package as the body (`application/gzip`), or a
/// multipart form with a `package` file, or with `manifest` (plugin.toml) and
/// `component` (.wasm). Users install private plugins; administrators shared ones.
#[utoipa::path(post, path = "/api/v1/plugins", tag = "plugins", params(InstallQuery),
    request_body(content((Package = "application/gzip"), (Package = "application/octet-stream"), (PackageForm = "multipart/form-data")),
        description = "A .tar.gz package, or a multipart form with `package`, or with `manifest` + `component`"),
    security(("bearer" = [])),
    responses((status = 201, body = super::InstallResult, description = "Installed"), (status = 200, body = super::InstallResult, description = "Upgraded"),
              (status = 202, body = crate::plugins::installs::InstallStatus, description = "Still compiling: follow Location (GET /plugins/{name}/install)"),
              (status = 400, body = super::super::error::ErrorBody), (status = 401, body = super::super::error::ErrorBody),
              (status = 403, body = super::super::error::ErrorBody), (status = 409, body = super::super::error::ErrorBody),
              (status = 413, body = super::super::error::ErrorBody), (status = 415, body = super::super::error::ErrorBody),
              (status = 422, body = super::super::error::ErrorBody)))]
pub async fn upload(
    c: Ctx,
    q: InstallQuery,
    content_type: Option<String>,
    body: impl futures_util::Stream<Item = Result<impl Buf + Send + 'static, warp::Error>>
    + Unpin
    + Send
    + 'static,
    limit: u64,
) -> Result<warp::reply::Response, ApiError> {
    if let Err(e) = c.require_scope("plugins:write") {
        return Err(c.deny("plugin.install", "upload", e).await);
    }
    let content_type = content_type.unwrap_or_default();
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let dir = scratch(&c)?;
    let path = match mime.as_str() {
        "application/gzip"
        | "application/x-gzip"
        | "application/octet-stream"
        | "application/x-tar+gzip" => {
            let bytes = collect(body, limit).await?;
            if bytes.is_empty() {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_plugin",
                    "the upload is empty: send a .tar.gz package",
                ));
            }
            let path = dir.path().join("package.tar.gz");
            std::fs::write(&path, bytes)
                .map_err(|e| ApiError::internal("saving the upload", &e))?;
            path
        }
        "multipart/form-data" => multipart(&content_type, body, dir.path(), limit).await?,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send a .tar.gz package as application/gzip, or multipart/form-data with `package` or `manifest` + `component`",
            ));
        }
    };
    let wait = WaitQuery { wait: q.wait };
    install_from(&c, path, Some(dir), q.grant, "upload", &wait).await
}

async fn multipart(
    content_type: &str,
    body: impl futures_util::Stream<Item = Result<impl Buf + Send + 'static, warp::Error>>
    + Unpin
    + Send
    + 'static,
    dir: &std::path::Path,
    limit: u64,
) -> Result<std::path::PathBuf, ApiError> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|e| ApiError::bad_request(format!("bad multipart Content-Type: {e}")))?;
    let stream = body.map_ok(|mut b| b.copy_to_bytes(b.remaining()));
    let constraints = multer::Constraints::new()
        .allowed_fields(vec!["package", "manifest", "component"])
        .size_limit(multer::SizeLimit::new().whole_stream(limit));
    let mut form = multer::Multipart::with_constraints(stream, boundary, constraints);
    let mut package = None;
    let mut manifest = None;
    let mut component = None;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| ApiError::bad_request(format!("bad multipart body: {e}")))?
    {
        let name = field.name().unwrap_or("").to_string();
        let bytes = field
            .bytes()
            .await
            .map_err(|e| ApiError::bad_request(format!("bad multipart field `{name}`: {e}")))?;
        match name.as_str() {
            "package" => package = Some(bytes),
            "manifest" => manifest = Some(bytes),
            _ => component = Some(bytes),
        }
    }
    let write = |path: &std::path::Path, bytes: &[u8]| {
        std::fs::write(path, bytes).map_err(|e| ApiError::internal("saving the upload", &e))
    };
    match (package, manifest, component) {
        (Some(p), None, None) => {
            let path = dir.join("package.tar.gz");
            write(&path, &p)?;
            Ok(path)
        }
        (None, Some(m), Some(comp)) => {
            let text = std::str::from_utf8(&m).map_err(|_| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_plugin",
                    "the manifest is not UTF-8 text: send plugin.toml",
                )
            })?;
            let parsed = crate::plugins::manifest::Manifest::parse(text).map_err(|e| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_plugin",
                    e.to_string(),
                )
            })?;
            let Some(component_path) = &parsed.component else {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_plugin",
                    "the manifest names no `component`: send a package of skill folders as a .tar.gz `package`",
                ));
            };
            let package_dir = dir.join("package");
            let target = package_dir.join(component_path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| ApiError::internal("saving the upload", &e))?;
            }
            write(&package_dir.join("plugin.toml"), &m)?;
            write(&target, &comp)?;
            Ok(package_dir)
        }
        _ => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_plugin",
            "send either a `package` field (.tar.gz) or both `manifest` (plugin.toml) and `component` (.wasm)",
        )),
    }
}

/// Install a `.tar.gz` package from an http(s) URL; its SHA-256 must match.
#[utoipa::path(post, path = "/api/v1/plugins/from-url", tag = "plugins", params(WaitQuery), request_body = FromUrl, security(("bearer" = [])),
    responses((status = 201, body = super::InstallResult, description = "Installed"), (status = 200, body = super::InstallResult, description = "Upgraded"),
              (status = 202, body = crate::plugins::installs::InstallStatus, description = "Still compiling: follow Location (GET /plugins/{name}/install)"),
              (status = 400, body = super::super::error::ErrorBody), (status = 401, body = super::super::error::ErrorBody),
              (status = 403, body = super::super::error::ErrorBody), (status = 409, body = super::super::error::ErrorBody),
              (status = 413, body = super::super::error::ErrorBody),
              (status = 422, description = "The URL is invalid, cannot be downloaded, or its sha256 differs", body = super::super::error::ErrorBody)))]
pub async fn from_url(
    c: Ctx,
    wait: WaitQuery,
    body: FromUrl,
) -> Result<warp::reply::Response, ApiError> {
    let source = format!("url:{}", body.url.chars().take(300).collect::<String>());
    if let Err(e) = c.require_scope("plugins:write") {
        return Err(c.deny("plugin.install", &source, e).await);
    }
    let expected = body.sha256.to_ascii_lowercase();
    if expected.len() != 64 || !expected.chars().all(|ch| ch.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request("sha256 must be 64 hex characters"));
    }
    let http = ["http://", "https://"].iter().any(|scheme| {
        body.url
            .get(..scheme.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(scheme))
    });
    if body.url.len() > 2048 || !http {
        return Err(ApiError::bad_request(
            "url must be an absolute http(s) URL of at most 2048 bytes",
        ));
    }
    let url = reqwest::Url::parse(&body.url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_url",
                "url is not a valid http(s) URL with a host",
            )
        })?;
    let limit = c.s.config.max_upload_bytes;
    let public_only = !c.who.is_admin();
    let bytes = match download::fetch_checked(url, &expected, limit, public_only).await {
        Ok(b) => b,
        Err(e) => {
            let details = serde_json::json!({ "error": e.message });
            c.audit("plugin.install", &source, "error", details).await;
            return Err(e);
        }
    };
    let dir = scratch(&c)?;
    let path = dir.path().join("package.tar.gz");
    std::fs::write(&path, bytes).map_err(|e| ApiError::internal("saving the download", &e))?;
    install_from(&c, path, Some(dir), body.grant, &source, &wait).await
}

/// Install from a package directory or `.tar.gz` on the server (administrators).
#[utoipa::path(post, path = "/api/v1/plugins/from-path", tag = "plugins", params(WaitQuery), request_body = FromPath, security(("bearer" = [])),
    responses((status = 201, body = super::InstallResult, description = "Installed"), (status = 200, body = super::InstallResult, description = "Upgraded"),
              (status = 202, body = crate::plugins::installs::InstallStatus, description = "Still compiling: follow Location (GET /plugins/{name}/install)"),
              (status = 400, body = super::super::error::ErrorBody), (status = 401, body = super::super::error::ErrorBody),
              (status = 403, body = super::super::error::ErrorBody), (status = 404, body = super::super::error::ErrorBody),
              (status = 422, body = super::super::error::ErrorBody)))]
pub async fn from_path(
    c: Ctx,
    wait: WaitQuery,
    body: FromPath,
) -> Result<warp::reply::Response, ApiError> {
    let source = format!("path:{}", body.path.chars().take(300).collect::<String>());
    if let Err(e) = c
        .require_admin()
        .and_then(|()| c.require_scope("plugins:write"))
    {
        return Err(c.deny("plugin.install", &source, e).await);
    }
    let path = std::path::Path::new(&body.path);
    if !path.is_absolute() {
        return Err(ApiError::bad_request(
            "path must be an absolute path to a package directory or .tar.gz on the server",
        ));
    }
    if !path.exists() {
        return Err(ApiError::not_found(format!(
            "nothing at {} on the server",
            path.display()
        )));
    }
    install_from(&c, path.to_path_buf(), None, body.grant, &source, &wait).await
}
