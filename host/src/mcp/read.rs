//! `resources/read`: skill files under `skill://NAME/PATH`, and plugin
//! resources by exact URI or by template.

use super::catalog::View;
use super::convert;
use crate::resources::{self, SKILL_SCHEME};
use crate::server::Services;
use rmcp::ErrorData as McpError;
use rmcp::model::ResourceContents;

fn not_found(uri: &str) -> McpError {
    McpError::resource_not_found(
        format!("no resource `{uri}`: list them with resources/list"),
        Some(serde_json::json!({ "uri": uri })),
    )
}

/// Whether `uri` names a resource `view`'s owner may read (a skill of theirs,
/// a plugin resource, or a match of a plugin template).
pub fn exists(view: &View, uri: &str) -> bool {
    if resources::check_uri(uri).is_err() {
        return false;
    }
    if resources::scheme(uri).is_some_and(|x| x.eq_ignore_ascii_case(SKILL_SCHEME)) {
        return uri
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('/'))
            .is_some_and(|(name, _)| view.skill(name).is_some());
    }
    view.resources.iter().any(|r| r.uri == uri) || view.templates.iter().any(|t| t.matches(uri))
}

/// The contents of `uri` as `view`'s owner may read them.
pub async fn read(s: &Services, view: &View, uri: &str) -> Result<Vec<ResourceContents>, McpError> {
    resources::check_uri(uri).map_err(|e| McpError::invalid_params(e, None))?;
    if resources::scheme(uri).is_some_and(|x| x.eq_ignore_ascii_case(SKILL_SCHEME)) {
        return read_skill_file(s, view, uri).await;
    }
    let plugin = view
        .resources
        .iter()
        .find(|r| r.uri == uri)
        .map(|r| r.plugin.clone())
        .or_else(|| {
            view.templates
                .iter()
                .find(|t| t.matches(uri))
                .map(|t| t.plugin.clone())
        })
        .ok_or_else(|| not_found(uri))?;
    let live = s.plugins.get(&plugin).ok_or_else(|| not_found(uri))?;
    let component = live.component.as_ref().ok_or_else(|| not_found(uri))?;
    let contents = s
        .plugins
        .manager()
        .runtime()
        .read_resource(component, uri)
        .await
        .map_err(|e| convert::plugin_error(&e))?;
    if contents.is_empty() {
        return Err(not_found(uri));
    }
    Ok(contents.into_iter().map(convert::contents).collect())
}

async fn read_skill_file(
    s: &Services,
    view: &View,
    uri: &str,
) -> Result<Vec<ResourceContents>, McpError> {
    let rest = uri
        .split_once("://")
        .map(|(_, rest)| rest)
        .ok_or_else(|| not_found(uri))?;
    let (name, path) = rest.split_once('/').ok_or_else(|| not_found(uri))?;
    let skill = view.skill(name).ok_or_else(|| not_found(uri))?;
    let content = s
        .skills
        .load(skill)
        .await
        .map_err(|e| McpError::internal_error(e.to_string(), None))?;
    let mime = Some(convert::skill_mime(path).to_string());
    if path == "SKILL.md" {
        return Ok(vec![ResourceContents::TextResourceContents {
            uri: uri.to_string(),
            mime_type: mime,
            text: content.instructions,
            meta: None,
        }]);
    }
    let file = content
        .files
        .into_iter()
        .find(|f| f.path == path)
        .ok_or_else(|| not_found(uri))?;
    let body = match String::from_utf8(file.content) {
        Ok(text) => crate::runtime::types::ResourceBody::Text(text),
        Err(e) => crate::runtime::types::ResourceBody::Blob(e.into_bytes()),
    };
    Ok(vec![convert::contents(
        crate::runtime::types::EmbeddedResource {
            uri: uri.to_string(),
            mime_type: mime,
            body,
        },
    )])
}
