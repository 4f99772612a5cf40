//! `/plugins`: install (upload, URL with sha256, server path), list, inspect,
//! enable/disable, grant/revoke, configure, set secrets, upgrade, delete. Every
//! change is audited and applied to the live set before the response.

use super::error::ApiError;
use super::{Ctx, ListOf, Paging, Segment, ctx, query, reply, respond};
use crate::plugins::live::Live;
use crate::plugins::manifest::{Capabilities, Kind};
use crate::plugins::{InstallOptions, InstallReport};
use crate::server::Services;
use crate::skills::Skill;
use crate::tools::ToolEntry;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

mod download;
pub mod install;
pub mod manage;

/// A plugin in a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PluginSummary {
    /// Name.
    pub name: String,
    /// Installed version.
    pub version: String,
    /// What it is.
    pub description: String,
    /// Kinds: `tool`, `channel`, `skill`.
    #[schema(value_type = Vec<String>)]
    pub kinds: Vec<Kind>,
    /// Whether calls are allowed.
    pub enabled: bool,
    /// The owning user for private plugins; absent for shared ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    /// Number of tools offered.
    pub tools: usize,
    /// Number of skills offered.
    pub skills: usize,
    /// Requested capabilities not granted yet.
    #[schema(value_type = Object)]
    pub pending: Capabilities,
    /// Why the plugin cannot run, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Everything about one plugin.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PluginDetail {
    /// The summary.
    #[serde(flatten)]
    pub summary: PluginSummary,
    /// The manifest as installed.
    #[schema(value_type = Object)]
    pub manifest: serde_json::Value,
    /// What the manifest requests.
    #[schema(value_type = Object)]
    pub requested: Capabilities,
    /// What is granted.
    #[schema(value_type = Object)]
    pub granted: Capabilities,
    /// Configuration values set.
    pub config: BTreeMap<String, String>,
    /// Names of secrets that have a value (values are never returned).
    pub secrets_set: Vec<String>,
    /// Tools with their JSON Schemas.
    pub tool_list: Vec<ToolEntry>,
    /// Skills.
    pub skill_list: Vec<Skill>,
    /// Prompts (MCP prompts: name, description, arguments).
    pub prompt_list: Vec<crate::prompts::PromptEntry>,
    /// Fixed resources (MCP resources: uri, name, description, media type).
    pub resource_list: Vec<crate::resources::ResourceEntry>,
    /// Resource URI templates.
    pub resource_templates: Vec<crate::resources::TemplateEntry>,
    /// When this version was installed (ms since the epoch).
    pub installed_at: u64,
}

/// The result of an install or upgrade.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InstallResult {
    /// The plugin now.
    pub plugin: PluginDetail,
    /// The version replaced, for upgrades.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced: Option<String>,
}

pub(super) fn summary(live: &Live) -> PluginSummary {
    let m = &live.installed.manifest;
    PluginSummary {
        name: m.name.clone(),
        version: m.version.to_string(),
        description: m.description.clone(),
        kinds: m.kinds.clone(),
        enabled: live.installed.state.enabled,
        owner_id: live.installed.state.owner_id.clone(),
        tools: live.contents.tools.len(),
        skills: live.contents.skills.len(),
        pending: live.installed.pending(),
        problem: live.problem.clone(),
    }
}

pub(super) async fn detail(c: &Ctx, live: &Live) -> Result<PluginDetail, ApiError> {
    let secrets_set = c.s.plugins.manager().secret_names(live.name()).await?;
    Ok(PluginDetail {
        summary: summary(live),
        manifest: serde_json::to_value(&live.installed.manifest).unwrap_or_default(),
        requested: live.installed.manifest.capabilities.clone(),
        granted: live.installed.state.granted.clone(),
        config: live.installed.state.config.clone(),
        secrets_set,
        tool_list: live.contents.tools.clone(),
        skill_list: live.contents.skills.clone(),
        prompt_list: live.contents.prompts.clone(),
        resource_list: live.contents.resources.clone(),
        resource_templates: live.contents.templates.clone(),
        installed_at: live.installed.state.installed_at,
    })
}

/// The live plugin `name` if the caller may see it.
pub(super) fn visible(c: &Ctx, name: &str) -> Result<Arc<Live>, ApiError> {
    c.s.plugins
        .get(name)
        .filter(|l| l.installed.visible_to(&c.who.user.id, c.who.is_admin()))
        .ok_or_else(|| ApiError::not_found(format!("no plugin named `{name}` is installed")))
}

pub(super) fn routes(
    s: Arc<Services>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let list = warp::path!("plugins")
        .and(warp::get())
        .and(ctx(s.clone()))
        .and(query::<Paging>())
        .and_then(|c, p| async move { respond(list(c, p)) });
    let get = warp::path!("plugins" / Segment)
        .and(warp::get())
        .and(ctx(s.clone()))
        .and_then(|name: Segment, c| async move { respond(get(c, name.0).await) });
    list.or(get)
        .unify()
        .or(install::routes(s.clone()))
        .unify()
        .or(manage::routes(s))
        .unify()
}

/// Installed plugins you may use (shared ones and your own), by name.
#[utoipa::path(get, path = "/api/v1/plugins", tag = "plugins", params(Paging), security(("bearer" = [])),
    responses((status = 200, body = ListOf<PluginSummary>), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody)))]
pub fn list(c: Ctx, p: Paging) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    let limit = p.limit()?;
    let after = p.after()?.unwrap_or("");
    let snapshot = c.s.plugins.snapshot();
    let mut items: Vec<PluginSummary> = snapshot
        .range::<str, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
        .map(|(_, l)| l)
        .filter(|l| l.installed.visible_to(&c.who.user.id, c.who.is_admin()))
        .take(limit + 1)
        .map(|l| summary(l))
        .collect();
    let next = (items.len() > limit)
        .then(|| {
            items.truncate(limit);
            items.last().map(|i| i.name.clone())
        })
        .flatten();
    Ok(reply(StatusCode::OK, &ListOf { items, next }))
}

/// One plugin: manifest, tools, skills, requested, granted and pending capabilities.
#[utoipa::path(get, path = "/api/v1/plugins/{name}", tag = "plugins", params(("name" = String, Path, description = "Plugin name")),
    security(("bearer" = [])),
    responses((status = 200, body = PluginDetail), (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn get(c: Ctx, name: String) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    let live = visible(&c, &name)?;
    Ok(reply(StatusCode::OK, &detail(&c, &live).await?))
}

/// Install the package at `path` for the caller, audit it, and apply it live.
pub(super) async fn install_from(
    c: &Ctx,
    path: &Path,
    grant: bool,
    source: &str,
) -> Result<warp::reply::Response, ApiError> {
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
    let options = InstallOptions {
        grant_all,
        owner_id: (!c.who.is_admin()).then(|| c.who.user.id.clone()),
    };
    let report: InstallReport = match c.s.plugins.manager().install(path, &options).await {
        Ok(r) => r,
        Err(e) => {
            let err = ApiError::from(e);
            c.audit(
                "plugin.install",
                source,
                "error",
                serde_json::json!({ "error": err.message }),
            )
            .await;
            return Err(err);
        }
    };
    let name = report.installed.manifest.name.clone();
    c.s.plugins.sync().await?;
    let live = visible(c, &name)?;
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

/// No content.
pub(super) fn no_content() -> warp::reply::Response {
    warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response()
}
