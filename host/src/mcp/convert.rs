//! Conversions between the host's types (WIT records, catalog entries) and MCP's.

use super::catalog::PromptSource;
use crate::prompts::PromptEntry;
use crate::resources::{ResourceEntry, TemplateEntry};
use crate::runtime::skill::SkillContent;
use crate::runtime::types::{Content, EmbeddedResource, ResourceBody};
use crate::runtime::{ErrorKind, PluginError, prompt, tool};
use crate::skills::Skill;
use crate::tools::ToolEntry;
use base64::Engine;
use rmcp::ErrorData as McpError;
use rmcp::model::{
    CallToolResult, ContentBlock, GetPromptResult, Prompt, PromptMessage, Resource,
    ResourceContents, ResourceTemplate, Tool,
};
use serde_json::{Value, json};

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Build an MCP model value from its JSON form (used for listing types whose
/// many optional fields are easiest to fill by name).
pub(super) fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, McpError> {
    serde_json::from_value(value)
        .map_err(|e| McpError::internal_error(format!("building an MCP value: {e}"), None))
}

/// A plugin tool as an MCP tool named `name`.
pub fn tool(name: &str, entry: &ToolEntry) -> Result<Tool, McpError> {
    let a = &entry.annotations;
    let mut annotations = serde_json::Map::new();
    for (key, value) in [
        ("readOnlyHint", a.read_only),
        ("destructiveHint", a.destructive),
        ("idempotentHint", a.idempotent),
        ("openWorldHint", a.open_world),
    ] {
        if let Some(v) = value {
            annotations.insert(key.into(), v.into());
        }
    }
    let mut t = json!({
        "name": name,
        "description": entry.description,
        "inputSchema": entry.input_schema,
    });
    if let Some(title) = &entry.title {
        t["title"] = title.clone().into();
        annotations.insert("title".into(), title.clone().into());
    }
    if let Some(schema) = &entry.output_schema {
        t["outputSchema"] = schema.clone();
    }
    if !annotations.is_empty() {
        t["annotations"] = Value::Object(annotations);
    }
    from_json(t)
}

/// An embedded resource as MCP resource contents.
pub fn contents(r: EmbeddedResource) -> ResourceContents {
    match r.body {
        ResourceBody::Text(text) => ResourceContents::TextResourceContents {
            uri: r.uri,
            mime_type: r.mime_type,
            text,
            meta: None,
        },
        ResourceBody::Blob(data) => ResourceContents::BlobResourceContents {
            uri: r.uri,
            mime_type: r.mime_type,
            blob: b64(&data),
            meta: None,
        },
    }
}

/// A WIT content block as an MCP content block; `bytes` become an embedded
/// blob resource at `fallback_uri`.
pub fn block(content: Content, fallback_uri: impl FnOnce() -> String) -> ContentBlock {
    match content {
        Content::Text(t) | Content::Json(t) => ContentBlock::text(t),
        Content::Image(b) => ContentBlock::image(b64(&b.data), b.mime_type),
        Content::Audio(b) => ContentBlock::audio(b64(&b.data), b.mime_type),
        Content::Bytes(b) => ContentBlock::resource(ResourceContents::BlobResourceContents {
            uri: fallback_uri(),
            mime_type: Some(b.mime_type),
            blob: b64(&b.data),
            meta: None,
        }),
        Content::Resource(r) => ContentBlock::resource(contents(r)),
    }
}

/// A tool's output as a successful MCP result: its blocks, and its
/// structured JSON as `structuredContent`.
pub fn tool_result(plugin: &str, tool: &str, output: tool::ToolOutput) -> CallToolResult {
    let content = output
        .content
        .into_iter()
        .enumerate()
        .map(|(i, c)| block(c, || format!("switchyard://{plugin}/{tool}/output/{i}")))
        .collect();
    let mut result = CallToolResult::success(content);
    result.structured_content = output
        .structured
        .and_then(|s| serde_json::from_str(&s).ok());
    result
}

/// A protocol error for a failed prompt or resource call.
pub fn plugin_error(e: &PluginError) -> McpError {
    match e.kind {
        ErrorKind::InvalidInput => McpError::invalid_params(e.message.clone(), None),
        ErrorKind::NotFound => McpError::resource_not_found(e.message.clone(), None),
        _ => McpError::internal_error(e.message.clone(), None),
    }
}

/// A prompt as MCP lists it.
pub fn prompt(name: &str, source: &PromptSource) -> Result<Prompt, McpError> {
    let p = match source {
        PromptSource::Plugin(PromptEntry {
            title,
            description,
            arguments,
            ..
        }) => json!({
            "name": name,
            "title": title,
            "description": description,
            "arguments": arguments,
        }),
        PromptSource::Skill(skill) => json!({
            "name": name,
            "description": skill.description,
        }),
    };
    from_json(strip_nulls(p))
}

fn strip_nulls(mut v: Value) -> Value {
    if let Value::Object(map) = &mut v {
        map.retain(|_, value| !value.is_null());
        for value in map.values_mut() {
            if let Value::Array(items) = value {
                for item in items.iter_mut() {
                    *item = strip_nulls(item.take());
                }
            }
        }
    }
    v
}

/// Prompt arguments from MCP (a JSON object of strings) as name/value pairs.
pub fn prompt_arguments(
    given: Option<&serde_json::Map<String, Value>>,
) -> Result<Vec<(String, String)>, McpError> {
    given
        .into_iter()
        .flatten()
        .map(|(name, value)| match value {
            Value::String(s) => Ok((name.clone(), s.clone())),
            other => Err(McpError::invalid_params(
                format!("prompt argument `{name}` must be a string, not {other}"),
                None,
            )),
        })
        .collect()
}

/// A filled-in plugin prompt as an MCP result.
pub fn prompt_result(filled: prompt::PromptResult) -> Result<GetPromptResult, McpError> {
    let messages = filled
        .messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let role = match m.role {
                prompt::Role::User => "user",
                prompt::Role::Assistant => "assistant",
            };
            let content = block(m.content, || format!("switchyard://prompt/message/{i}"));
            from_json::<PromptMessage>(json!({ "role": role, "content": content }))
        })
        .collect::<Result<_, _>>()?;
    let result = GetPromptResult::new(messages);
    Ok(match filled.description {
        Some(d) => result.with_description(d),
        None => result,
    })
}

/// A skill as a prompt: one user message holding its instructions.
pub fn skill_prompt(skill: &Skill, content: SkillContent) -> Result<GetPromptResult, McpError> {
    let message: PromptMessage = from_json(
        json!({ "role": "user", "content": { "type": "text", "text": content.instructions } }),
    )?;
    Ok(GetPromptResult::new(vec![message]).with_description(skill.description.clone()))
}

/// A plugin's fixed resource as MCP lists it.
pub fn resource(r: &ResourceEntry) -> Result<Resource, McpError> {
    from_json(strip_nulls(json!({
        "uri": r.uri,
        "name": r.name,
        "title": r.title,
        "description": r.description,
        "mimeType": r.mime_type,
    })))
}

/// A plugin's URI template as MCP lists it.
pub fn template(t: &TemplateEntry) -> Result<ResourceTemplate, McpError> {
    from_json(strip_nulls(json!({
        "uriTemplate": t.uri_template,
        "name": t.name,
        "title": t.title,
        "description": t.description,
        "mimeType": t.mime_type,
    })))
}

/// The template of skill files.
pub fn skill_template() -> Result<ResourceTemplate, McpError> {
    from_json(json!({
        "uriTemplate": "skill://{name}/{+path}",
        "name": "skill-file",
        "description": "A file of a skill: SKILL.md (its instructions) or one of its scripts, references and assets",
    }))
}

/// The media type of a skill file, from its extension.
pub fn skill_mime(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("md") => "text/markdown",
        Some("py") => "text/x-python",
        Some("sh") => "text/x-shellscript",
        Some("json") => "application/json",
        Some("txt") => "text/plain",
        Some("png") => "image/png",
        Some("pdf") => "application/pdf",
        _ => "application/octet-stream",
    }
}

/// The resources of one skill: its SKILL.md and each file.
pub fn skill_resources(
    name: &str,
    skill: &Skill,
    content: &SkillContent,
) -> Result<Vec<Resource>, McpError> {
    let entry = |path: &str, size: usize| -> Result<Resource, McpError> {
        from_json(json!({
            "uri": format!("skill://{name}/{path}"),
            "name": format!("{name}/{path}"),
            "description": if path == "SKILL.md" { skill.description.clone() } else { format!("A file of skill `{name}`") },
            "mimeType": skill_mime(path),
            "size": size,
        }))
    };
    std::iter::once(entry("SKILL.md", content.instructions.len()))
        .chain(
            content
                .files
                .iter()
                .map(|f| entry(&f.path, f.content.len())),
        )
        .collect()
}
