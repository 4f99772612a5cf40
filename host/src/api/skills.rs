//! `/skills`: the skills a caller may use (installed by users, shipped by
//! plugins, in the skills directory), reading one, and installing, sharing
//! and removing installed ones.

use super::error::ApiError;
use super::{Ctx, ListOf, Segment, ctx, json_body, query, reply, respond};
use crate::server::Services;
use crate::skills::installed::Visibility;
use crate::skills::{Skill, SkillError, archive};
use crate::tools::Caller;
use bytes::Buf;
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

/// A skill with its instructions and files.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SkillBody {
    /// Catalog entry.
    pub skill: Skill,
    /// The instructions (SKILL.md without front matter).
    pub instructions: String,
    /// Other files: path and UTF-8 text, or base64 for binary files.
    #[schema(value_type = Vec<Object>)]
    pub files: Vec<serde_json::Value>,
}

/// Install options in the query string.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InstallQuery {
    /// `private` (only you and administrators; the default for a new skill)
    /// or `shared` (every user). A replaced skill keeps its own unless given.
    #[serde(default)]
    #[param(inline)]
    pub visibility: Option<Visibility>,
    /// Replace your skill of the same name instead of answering 409.
    #[serde(default)]
    pub replace: bool,
}

/// A skill folder as a `.tar.gz` or `.zip` archive (request body of `POST /skills`).
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct SkillArchive(pub Vec<u8>);

/// A change to an installed skill.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SkillPatch {
    /// `private` or `shared`.
    pub visibility: Visibility,
}

pub(super) fn routes(
    s: Arc<Services>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let list = warp::path!("skills")
        .and(warp::get())
        .and(ctx(s.clone()))
        .and_then(|c| async move { respond(list_skills(c).await) });
    let install = warp::path!("skills")
        .and(warp::post())
        .and(ctx(s.clone()))
        .and(query::<InstallQuery>())
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .and_then(
            |c: Ctx, q: InstallQuery, length: Option<u64>, body| async move {
                if length.is_some_and(|l| l > archive::MAX_ARCHIVE) {
                    return respond(Err(too_large()));
                }
                respond(install(c, q, body).await)
            },
        );
    let read = warp::path!("skills" / Segment / Segment)
        .and(warp::get())
        .and(ctx(s.clone()))
        .and_then(
            |src: Segment, n: Segment, c| async move { respond(read_skill(c, src.0, n.0).await) },
        );
    let patch = warp::path!("skills" / Segment / Segment)
        .and(warp::patch())
        .and(ctx(s.clone()))
        .and(json_body())
        .and_then(|src: Segment, n: Segment, c, b| async move {
            respond(update_skill(c, src.0, n.0, b).await)
        });
    let delete = warp::path!("skills" / Segment / Segment)
        .and(warp::delete())
        .and(ctx(s))
        .and_then(|src: Segment, n: Segment, c| async move {
            respond(delete_skill(c, src.0, n.0).await)
        });
    list.or(install)
        .unify()
        .or(read)
        .unify()
        .or(patch)
        .unify()
        .or(delete)
        .unify()
}

fn caller(c: &Ctx) -> Caller {
    Caller {
        user_id: c.who.user.id.clone(),
        username: c.who.user.username.clone(),
        admin: c.who.is_admin(),
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!(
            "a skill archive is at most {} MiB",
            archive::MAX_ARCHIVE >> 20
        ),
    )
}

impl From<SkillError> for ApiError {
    fn from(e: SkillError) -> Self {
        match e {
            SkillError::Invalid(m) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_skill", m)
            }
            SkillError::NotFound(m) => Self::not_found(m),
            SkillError::Denied(m) => Self::forbidden(m),
            SkillError::Conflict(m) => Self::conflict(m),
            SkillError::Plugin(e) => e.into(),
            SkillError::Store(e) => e.into(),
        }
    }
}

/// Every skill you may use: yours, the plugins', the skills directory's, and
/// those other users share.
#[utoipa::path(get, path = "/api/v1/skills", tag = "skills", security(("bearer" = [])),
    responses((status = 200, body = ListOf<Skill>), (status = 401, body = super::error::ErrorBody)))]
pub async fn list_skills(c: Ctx) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    let items = c.s.skills.current(&caller(&c)).await;
    Ok(reply(StatusCode::OK, &ListOf { items, next: None }))
}

/// Install a skill: an Agent Skills folder (SKILL.md with its `scripts/`,
/// `references/`, `assets/`) as a `.tar.gz` or `.zip` body, with SKILL.md at
/// the top or inside one top-level folder named as the skill. It becomes
/// `@YOU/NAME`.
#[utoipa::path(post, path = "/api/v1/skills", tag = "skills", params(InstallQuery),
    request_body(content((SkillArchive = "application/gzip"), (SkillArchive = "application/zip"), (SkillArchive = "application/octet-stream")),
        description = "A .tar.gz or .zip of the skill folder"),
    security(("bearer" = [])),
    responses((status = 201, body = Object, description = "Installed"), (status = 200, body = Object, description = "Replaced"),
              (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
              (status = 409, body = super::error::ErrorBody), (status = 413, body = super::error::ErrorBody),
              (status = 422, body = super::error::ErrorBody)))]
pub async fn install(
    c: Ctx,
    q: InstallQuery,
    body: impl futures_util::Stream<Item = Result<impl Buf + Send + 'static, warp::Error>>
    + Unpin
    + Send
    + 'static,
) -> Result<warp::reply::Response, ApiError> {
    if let Err(e) = c.require_scope("plugins:write") {
        return Err(c.deny("skill.install", "upload", e).await);
    }
    let mut body = body;
    let mut bytes = Vec::new();
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the upload failed: {e}")))?
    {
        bytes.extend_from_slice(chunk.chunk());
        if bytes.len() as u64 > archive::MAX_ARCHIVE {
            return Err(too_large());
        }
    }
    let who = caller(&c);
    let (skill, replaced) = match c
        .s
        .skills
        .install(&who, &bytes, q.visibility, q.replace)
        .await
    {
        Ok(s) => s,
        Err(e) => {
            c.audit(
                "skill.install",
                "upload",
                "failed",
                serde_json::json!({ "error": e.to_string() }),
            )
            .await;
            return Err(e.into());
        }
    };
    c.audit(
        "skill.install",
        &format!("skill:{}/{}", skill.plugin, skill.name),
        "ok",
        serde_json::json!({ "visibility": skill.visibility, "replace": replaced }),
    )
    .await;
    let status = if replaced {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(reply(status, &skill))
}

/// A skill's instructions and files. `source` is the plugin name, `_local`
/// for the skills directory, or `@USER` for a skill USER installed.
#[utoipa::path(get, path = "/api/v1/skills/{source}/{name}", tag = "skills",
    params(("source" = String, Path, description = "Plugin name, `_local`, or `@USER`"), ("name" = String, Path, description = "Skill name")),
    security(("bearer" = [])),
    responses((status = 200, body = SkillBody), (status = 401, body = super::error::ErrorBody),
              (status = 404, body = super::error::ErrorBody), (status = 502, body = super::error::ErrorBody)))]
pub async fn read_skill(
    c: Ctx,
    source: String,
    name: String,
) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("read")?;
    let skill = c.s.skills.find(&caller(&c), &source, &name).await?;
    let content = match c.s.skills.load(&skill).await {
        Ok(content) => content,
        Err(e @ SkillError::Invalid(_)) => return Err(ApiError::internal("reading the skill", &e)),
        Err(e) => return Err(e.into()),
    };
    let files = content
        .files
        .iter()
        .map(|f| match std::str::from_utf8(&f.content) {
            Ok(text) => serde_json::json!({ "path": f.path, "text": text }),
            Err(_) => {
                use base64::Engine;
                serde_json::json!({ "path": f.path, "base64": base64::engine::general_purpose::STANDARD.encode(&f.content) })
            }
        })
        .collect();
    Ok(reply(
        StatusCode::OK,
        &SkillBody {
            skill,
            instructions: content.instructions,
            files,
        },
    ))
}

/// Share an installed skill with every user, or make it private again (its
/// owner or an administrator).
#[utoipa::path(patch, path = "/api/v1/skills/{source}/{name}", tag = "skills",
    params(("source" = String, Path, description = "`@USER`"), ("name" = String, Path, description = "Skill name")),
    request_body = SkillPatch, security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 400, body = super::error::ErrorBody),
              (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
              (status = 404, body = super::error::ErrorBody)))]
pub async fn update_skill(
    c: Ctx,
    source: String,
    name: String,
    body: SkillPatch,
) -> Result<warp::reply::Response, ApiError> {
    let target = format!("skill:{source}/{name}");
    if let Err(e) = c.require_scope("plugins:write") {
        return Err(c.deny("skill.update", &target, e).await);
    }
    let skill =
        c.s.skills
            .set_visibility(&caller(&c), &source, &name, body.visibility)
            .await?;
    c.audit(
        "skill.update",
        &target,
        "ok",
        serde_json::json!({ "visibility": body.visibility.as_str() }),
    )
    .await;
    Ok(reply(StatusCode::OK, &skill))
}

/// Remove an installed skill with its files (its owner or an administrator).
/// Sessions that enabled it go on without it.
#[utoipa::path(delete, path = "/api/v1/skills/{source}/{name}", tag = "skills",
    params(("source" = String, Path, description = "`@USER`"), ("name" = String, Path, description = "Skill name")),
    security(("bearer" = [])),
    responses((status = 204, description = "Removed"), (status = 401, body = super::error::ErrorBody),
              (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn delete_skill(
    c: Ctx,
    source: String,
    name: String,
) -> Result<warp::reply::Response, ApiError> {
    let target = format!("skill:{source}/{name}");
    if let Err(e) = c.require_scope("plugins:write") {
        return Err(c.deny("skill.remove", &target, e).await);
    }
    c.s.skills.remove(&caller(&c), &source, &name).await?;
    c.audit("skill.remove", &target, "ok", serde_json::json!({}))
        .await;
    Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
}
