//! `/plugins`: install (upload, URL with sha256, server path), list, inspect,
//! enable/disable, grant/revoke, configure, set secrets, upgrade, delete. Every
//! change is audited and applied to the live set before the response.

use super::error::ApiError;
use super::{Ctx, ListOf, Paging, Segment, ctx, query, reply, respond};
use crate::plugins::installs::{InstallState, InstallStatus};
use crate::plugins::live::Live;
use crate::plugins::manifest::{Capabilities, Kind};
use crate::server::Services;
use crate::skills::Skill;
use crate::tools::ToolEntry;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

mod download;
pub mod install;
pub mod job;
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
    /// `ready`, or the state of an install under way: `compiling` (its tools
    /// appear when it is done) or `failed` (see `install.error`).
    pub state: String,
    /// The install under way or recently failed (a new version while the
    /// installed one keeps serving).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub install: Option<InstallStatus>,
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
        state: "ready".into(),
        install: None,
    }
}

/// A summary with the install under way, if any.
fn with_install(mut summary: PluginSummary, install: Option<InstallStatus>) -> PluginSummary {
    if let Some(job) = install {
        summary.state = state_name(job.state).into();
        summary.install = Some(job);
    }
    summary
}

fn state_name(state: InstallState) -> &'static str {
    match state {
        InstallState::Compiling => "compiling",
        InstallState::Failed => "failed",
        InstallState::Installed => "ready",
    }
}

/// The summary of a plugin that exists only as an install under way.
fn pending_summary(job: &InstallStatus) -> PluginSummary {
    let m = &job.manifest;
    PluginSummary {
        name: m.name.clone(),
        version: m.version.to_string(),
        description: m.description.clone(),
        kinds: m.kinds.clone(),
        enabled: false,
        owner_id: job.owner_id.clone(),
        tools: 0,
        skills: 0,
        pending: m.capabilities.clone(),
        problem: job.error.clone(),
        state: state_name(job.state).into(),
        install: Some(job.clone()),
    }
}

/// Installs under way the caller may see.
fn installs_for(c: &Ctx) -> Vec<InstallStatus> {
    c.s.plugins
        .installs()
        .all()
        .into_iter()
        .filter(|j| c.who.is_admin() || j.owner_id.as_deref().is_none_or(|o| o == c.who.user.id))
        .collect()
}

/// The detail of a plugin that exists only as an install under way.
fn pending_detail(job: &InstallStatus) -> PluginDetail {
    let m = &job.manifest;
    PluginDetail {
        summary: pending_summary(job),
        manifest: serde_json::to_value(m).unwrap_or_default(),
        requested: m.capabilities.clone(),
        granted: Capabilities::default(),
        config: BTreeMap::new(),
        secrets_set: Vec::new(),
        tool_list: Vec::new(),
        skill_list: Vec::new(),
        prompt_list: Vec::new(),
        resource_list: Vec::new(),
        resource_templates: Vec::new(),
        installed_at: 0,
    }
}

pub(super) async fn detail(c: &Ctx, live: &Live) -> Result<PluginDetail, ApiError> {
    let secrets_set = c.s.plugins.manager().secret_names(live.name()).await?;
    let install = installs_for(c).into_iter().find(|j| j.name == live.name());
    Ok(PluginDetail {
        summary: with_install(summary(live), install),
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
        .or(job::routes(s.clone()))
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
    let mut installs: BTreeMap<String, InstallStatus> = installs_for(&c)
        .into_iter()
        .filter(|j| j.name.as_str() > after)
        .map(|j| (j.name.clone(), j))
        .collect();
    let mut items: Vec<PluginSummary> = snapshot
        .range::<str, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
        .map(|(_, l)| l)
        .filter(|l| l.installed.visible_to(&c.who.user.id, c.who.is_admin()))
        .map(|l| with_install(summary(l), installs.remove(l.name())))
        .collect();
    items.extend(installs.values().map(pending_summary));
    items.sort_by(|a, b| a.name.cmp(&b.name));
    items.truncate(limit + 1);
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
    let install = installs_for(&c).into_iter().find(|j| j.name == name);
    let live = match (visible(&c, &name), install) {
        (Ok(live), _) => live,
        (Err(_), Some(job)) => return Ok(reply(StatusCode::OK, &pending_detail(&job))),
        (Err(e), None) => return Err(e),
    };
    Ok(reply(StatusCode::OK, &detail(&c, &live).await?))
}

/// No content.
pub(super) fn no_content() -> warp::reply::Response {
    warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response()
}
