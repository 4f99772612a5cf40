//! Running an install: the component compiles in a task of its own while the
//! request waits up to `wait` seconds for it. A quick compile answers as before
//! (201 installed, 200 upgraded); a slow one answers 202 with the install's
//! status, and the plugin shows `compiling` until its tools appear (or `failed`
//! with the reason). A caller that hangs up cannot cancel a half-done install.

use super::super::error::ApiError;
use super::super::{Ctx, Segment, ctx, reply, respond};
use super::{InstallResult, detail, visible};
use crate::plugins::installs::{InstallState, InstallStatus};
use crate::plugins::package::Package;
use crate::plugins::{InstallOptions, InstallReport, PluginsError};
use crate::server::Services;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use warp::http::StatusCode;
use warp::{Filter, Rejection};

/// Longest a request waits for the compile.
const MAX_WAIT_SECS: u64 = 600;
/// How long a request waits by default.
const DEFAULT_WAIT_SECS: u64 = 10;

/// How long to wait for the compile (query string of every install route).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Seconds to wait for the component to compile before answering 202
    /// (0-600, default 10).
    #[param(minimum = 0, maximum = 600)]
    pub wait: Option<u64>,
}

impl WaitQuery {
    fn duration(&self) -> Result<Duration, ApiError> {
        match self.wait {
            Some(s) if s > MAX_WAIT_SECS => Err(ApiError::bad_request(format!(
                "wait must be 0-{MAX_WAIT_SECS} seconds"
            ))),
            w => Ok(Duration::from_secs(w.unwrap_or(DEFAULT_WAIT_SECS))),
        }
    }
}

/// Install the package at `path` (kept alive by `scratch`) for the caller,
/// audit it, and apply it live; answer when done or after `wait`.
pub(super) async fn install_from(
    c: &Ctx,
    path: PathBuf,
    scratch: Option<tempfile::TempDir>,
    grant: bool,
    source: &str,
    wait: &WaitQuery,
) -> Result<warp::reply::Response, ApiError> {
    let wait = wait.duration()?;
    let grant_all = grant && c.who.is_admin();
    if grant && !grant_all {
        return Err(c
            .deny(
                "plugin.install",
                source,
                ApiError::forbidden("only admins can grant capabilities"),
            )
            .await);
    }
    let peek = {
        let scratch = c.s.config.data_dir().join("tmp");
        let path = path.clone();
        tokio::task::spawn_blocking(move || Package::open(&path, &scratch))
            .await
            .map_err(|e| ApiError::internal("reading the package", &e))?
    };
    let package = match peek {
        Ok(p) => p,
        Err(e) => return Err(failed(c, source, PluginsError::Package(e)).await),
    };
    let manifest = package.manifest.clone();
    let bytes = package.component.as_ref().map_or(0, |b| b.len() as u64);
    drop(package);
    let owner_id = (!c.who.is_admin()).then(|| c.who.user.id.clone());
    if let (Some(owner), Some(live)) = (&owner_id, c.s.plugins.get(&manifest.name))
        && live.installed.state.owner_id.as_ref() != Some(owner)
    {
        return Err(failed(c, source, PluginsError::Owned(manifest.name.clone())).await);
    }
    let installs = c.s.plugins.installs();
    if !installs.begin(&manifest, bytes, owner_id.clone()) {
        return Err(ApiError::conflict(format!(
            "an install of `{}` is already compiling: wait for it (GET /api/v1/plugins/{}/install)",
            manifest.name, manifest.name
        )));
    }
    let name = manifest.name.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = {
        let (c, source) = (c.clone(), source.to_string());
        let options = InstallOptions {
            grant_all,
            owner_id,
        };
        async move {
            let _scratch = scratch;
            let outcome = run(&c, &path, &options, &source).await;
            let error = outcome.as_ref().err().map(|e| e.message.clone());
            c.s.plugins.installs().finish(&manifest.name, error);
            let _ = tx.send(outcome);
        }
    };
    tokio::spawn(task);
    match tokio::time::timeout(wait, rx).await {
        Ok(Ok(outcome)) => {
            let report = outcome?;
            let live = visible(c, &name)?;
            let status = if report.replaced.is_some() {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            Ok(reply(
                status,
                &InstallResult {
                    plugin: detail(c, &live).await?,
                    replaced: report.replaced.map(|v| v.to_string()),
                },
            ))
        }
        Ok(Err(_)) => Err(ApiError::internal(
            "installing",
            &std::io::Error::other("the install task ended without an answer"),
        )),
        Err(_) => {
            let status = installs
                .get(&name)
                .ok_or_else(|| ApiError::not_found(format!("no install of `{name}` is known")))?;
            let mut response = reply(StatusCode::ACCEPTED, &status);
            if let Ok(location) = format!("/api/v1/plugins/{name}/install").parse() {
                response.headers_mut().insert("location", location);
            }
            Ok(response)
        }
    }
}

/// The install itself: verify, commit, apply live, audit.
async fn run(
    c: &Ctx,
    path: &std::path::Path,
    options: &InstallOptions,
    source: &str,
) -> Result<InstallReport, ApiError> {
    let report = match c.s.plugins.manager().install(path, options).await {
        Ok(r) => r,
        Err(e) => return Err(failed(c, source, e).await),
    };
    let name = report.installed.manifest.name.clone();
    c.s.plugins.sync().await?;
    c.audit(
        "plugin.install",
        &format!("plugin:{name}"),
        "ok",
        serde_json::json!({
            "version": report.installed.manifest.version.to_string(),
            "replaced": report.replaced.as_ref().map(ToString::to_string),
            "source": source,
            "granted": report.installed.state.granted,
            "pending": report.pending,
        }),
    )
    .await;
    Ok(report)
}

async fn failed(c: &Ctx, source: &str, e: PluginsError) -> ApiError {
    let err = ApiError::from(e);
    c.audit(
        "plugin.install",
        source,
        "error",
        serde_json::json!({ "error": err.message }),
    )
    .await;
    err
}

/// The install of `name` the caller may see: compiling, recently failed, or
/// (when none is running) the installed plugin's version.
pub(super) fn status_of(c: &Ctx, name: &str) -> Option<InstallStatus> {
    let mine = |owner: &Option<String>| {
        c.who.is_admin() || owner.as_deref().is_none_or(|o| o == c.who.user.id)
    };
    if let Some(job) =
        c.s.plugins
            .installs()
            .get(name)
            .filter(|j| mine(&j.owner_id))
    {
        return Some(job);
    }
    let live = visible(c, name).ok()?;
    let m = &live.installed.manifest;
    Some(InstallStatus {
        name: m.name.clone(),
        version: m.version.to_string(),
        state: InstallState::Installed,
        started_at: live.installed.state.installed_at,
        finished_at: Some(live.installed.state.installed_at),
        component_bytes: 0,
        error: None,
        owner_id: live.installed.state.owner_id.clone(),
        manifest: m.clone(),
    })
}

pub(super) fn routes(
    s: Arc<Services>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("plugins" / Segment / "install")
        .and(warp::get())
        .and(ctx(s))
        .and_then(|name: Segment, c| async move { respond(status(c, name.0)) })
}

/// Where the latest install of a plugin stands: `compiling`, `failed` (with
/// `error`, for 15 minutes) or `installed`.
#[utoipa::path(get, path = "/api/v1/plugins/{name}/install", tag = "plugins", params(("name" = String, Path, description = "Plugin name")),
    security(("bearer" = [])),
    responses((status = 200, body = InstallStatus), (status = 401, body = super::super::error::ErrorBody), (status = 404, body = super::super::error::ErrorBody)))]
pub fn status(c: Ctx, name: String) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    let status = status_of(&c, &name)
        .ok_or_else(|| ApiError::not_found(format!("no install of `{name}` is known")))?;
    Ok(reply(StatusCode::OK, &status))
}
