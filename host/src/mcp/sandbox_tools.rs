//! The host's own MCP tools: sandboxes. An MCP client creates, lists and
//! deletes sandboxes and works in one (`sandbox_exec`, `sandbox_write_file`,
//! `sandbox_read_file`, `sandbox_list_files`) through the same service as the
//! REST API. Failures of the work itself are `isError` results; a missing
//! scope is a protocol error.

use super::convert;
use crate::auth::Identity;
use crate::sandbox::exec::ExecRequest;
use crate::sandbox::{Caller, CreateSandbox, SandboxError, Sandboxes};
use crate::server::Services;
use base64::Engine;
use rmcp::ErrorData as McpError;
use rmcp::model::{CallToolResult, ContentBlock, Tool};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Largest file `sandbox_read_file` returns inline.
pub const MAX_INLINE_FILE: u64 = 4 << 20;

/// The names of the sandbox tools (reserved: no plugin tool takes them bare).
pub const NAMES: &[&str] = &[
    "sandbox_create",
    "sandbox_list",
    "sandbox_delete",
    "sandbox_exec",
    "sandbox_write_file",
    "sandbox_read_file",
    "sandbox_list_files",
];

fn id_schema() -> Value {
    json!({ "type": "string", "description": "The sandbox id (from sandbox_create or sandbox_list)", "maxLength": 200 })
}

fn path_schema(what: &str) -> Value {
    json!({ "type": "string", "description": format!("{what}: relative to /workspace or absolute inside it"), "maxLength": 4096 })
}

/// The tool descriptors.
pub fn tools() -> Vec<Tool> {
    let descriptors = [
        (
            "sandbox_create",
            "Create a sandbox: a Linux container (Debian, python3, git, curl) with a persistent /workspace, no network by default. Returns its id.",
            json!({ "type": "object", "additionalProperties": false, "properties": {
                "name": { "type": "string", "description": "Name (a-z, 0-9, -), unique among yours", "maxLength": 63 },
                "memory_mb": { "type": "integer", "minimum": 64 },
                "cpus": { "type": "number", "minimum": 0.01 },
                "network": { "type": "boolean", "description": "Outbound network (if an administrator allows it)" }
            }}),
            (false, false),
        ),
        (
            "sandbox_list",
            "List your sandboxes with their state and limits.",
            json!({ "type": "object", "additionalProperties": false, "properties": {} }),
            (true, false),
        ),
        (
            "sandbox_delete",
            "Delete a sandbox, its container and its workspace.",
            json!({ "type": "object", "additionalProperties": false, "required": ["id"], "properties": { "id": id_schema() } }),
            (false, true),
        ),
        (
            "sandbox_exec",
            "Run a shell command in a sandbox (/bin/sh -c, working directory /workspace, user agent). Returns exit code, stdout and stderr; long output is cut with a marker.",
            json!({ "type": "object", "additionalProperties": false, "required": ["id", "command"], "properties": {
                "id": id_schema(),
                "command": { "type": "string", "description": "The shell command line", "maxLength": 65536 },
                "timeout_secs": { "type": "integer", "minimum": 1, "description": "Deadline (default: the sandbox's)" },
                "stdin": { "type": "string", "description": "Text given on standard input", "maxLength": 1048576 },
                "detach": { "type": "boolean", "description": "Keep what the command leaves running in the background (default: killed when it ends)" }
            }}),
            (false, true),
        ),
        (
            "sandbox_write_file",
            "Write a file in a sandbox's workspace (parents are created). Give `content` as text, or `base64` for binary data.",
            json!({ "type": "object", "additionalProperties": false, "required": ["id", "path"], "properties": {
                "id": id_schema(),
                "path": path_schema("The file"),
                "content": { "type": "string", "description": "UTF-8 text" },
                "base64": { "type": "string", "description": "Binary content, base64-encoded (instead of `content`)" }
            }}),
            (false, true),
        ),
        (
            "sandbox_read_file",
            "Read a file from a sandbox's workspace (at most 4 MiB): text, or base64 for binary files.",
            json!({ "type": "object", "additionalProperties": false, "required": ["id", "path"], "properties": {
                "id": id_schema(), "path": path_schema("The file")
            }}),
            (true, false),
        ),
        (
            "sandbox_list_files",
            "List a directory of a sandbox's workspace (results go in /workspace/output).",
            json!({ "type": "object", "additionalProperties": false, "required": ["id"], "properties": {
                "id": id_schema(),
                "path": path_schema("The directory (default /workspace)"),
                "depth": { "type": "integer", "minimum": 1, "maximum": 32, "description": "How deep to list (default 1)" }
            }}),
            (true, false),
        ),
    ];
    descriptors
        .into_iter()
        .filter_map(|(name, description, schema, (read_only, destructive))| {
            convert::from_json(json!({
                "name": name,
                "description": description,
                "inputSchema": schema,
                "annotations": { "readOnlyHint": read_only, "destructiveHint": destructive, "openWorldHint": false },
            }))
            .ok()
        })
        .collect()
}

pub(super) fn failed(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

pub(super) fn json_result(value: Value) -> CallToolResult {
    let text = serde_json::to_string_pretty(&value).unwrap_or_default();
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(value);
    result
}

pub(super) fn text_arg<'a>(
    args: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a str>, String> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("`{key}` must be a string")),
    }
}

pub(super) fn required<'a>(args: &'a Map<String, Value>, key: &str) -> Result<&'a str, String> {
    text_arg(args, key)?.ok_or_else(|| format!("`{key}` is required"))
}

pub(super) fn number_arg(args: &Map<String, Value>, key: &str) -> Result<Option<u64>, String> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            })
            .map(Some)
            .ok_or_else(|| format!("`{key}` must be a whole number")),
    }
}

/// Run sandbox tool `name`; `None` when `name` is not one.
pub async fn call(
    s: &Services,
    who: &Identity,
    name: &str,
    args: &Map<String, Value>,
) -> Option<Result<CallToolResult, McpError>> {
    if !NAMES.contains(&name) {
        return None;
    }
    if !who.allows("sandboxes") {
        return Some(Err(McpError::invalid_request(
            "this API token lacks the `sandboxes` scope",
            None,
        )));
    }
    let caller = Caller {
        user_id: who.user.id.clone(),
        admin: who.is_admin(),
    };
    Some(Ok(run(&s.sandboxes, &caller, name, args)
        .await
        .unwrap_or_else(failed)))
}

async fn run(
    sandboxes: &Arc<Sandboxes>,
    caller: &Caller,
    name: &str,
    args: &Map<String, Value>,
) -> Result<CallToolResult, String> {
    let err = |e: SandboxError| e.to_string();
    match name {
        "sandbox_create" => {
            let limits = crate::sandbox::LimitsRequest {
                memory_mb: number_arg(args, "memory_mb")?,
                cpus: args.get("cpus").and_then(Value::as_f64),
                network: args.get("network").and_then(Value::as_bool),
                ..Default::default()
            };
            let req = CreateSandbox {
                name: text_arg(args, "name")?.map(str::to_string),
                limits,
            };
            let created = sandboxes.create(caller, req).await.map_err(err)?;
            Ok(json_result(
                serde_json::to_value(created).unwrap_or_default(),
            ))
        }
        "sandbox_list" => {
            let (items, _) = sandboxes
                .list(caller, false, None, 500)
                .await
                .map_err(err)?;
            Ok(json_result(json!({ "sandboxes": items })))
        }
        "sandbox_delete" => {
            let id = required(args, "id")?;
            sandboxes.delete(caller, id, true).await.map_err(err)?;
            Ok(json_result(json!({ "deleted": id })))
        }
        "sandbox_exec" => {
            let id = required(args, "id")?;
            let req = ExecRequest {
                command: Some(required(args, "command")?.to_string()),
                timeout_secs: number_arg(args, "timeout_secs")?,
                stdin: text_arg(args, "stdin")?.map(str::to_string),
                detach: args.get("detach").and_then(Value::as_bool).unwrap_or(false),
                ..ExecRequest::default()
            };
            let result = sandboxes.exec_collect(caller, id, req).await.map_err(err)?;
            let value = serde_json::to_value(&result).unwrap_or_default();
            let mut out = json_result(value);
            if result.outcome.exit_code != Some(0) {
                out.is_error = Some(true);
            }
            Ok(out)
        }
        "sandbox_write_file" => {
            let id = required(args, "id")?;
            let path = required(args, "path")?;
            let data = match (text_arg(args, "content")?, text_arg(args, "base64")?) {
                (Some(text), None) => text.as_bytes().to_vec(),
                (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| format!("`base64` is not valid base64: {e}"))?,
                _ => return Err("give exactly one of `content` and `base64`".into()),
            };
            let len = data.len() as u64;
            let body = futures_util::stream::once(async move { Ok(bytes::Bytes::from(data)) });
            let size = sandboxes
                .write_file(caller, id, path, Some(len), Box::pin(body))
                .await
                .map_err(err)?;
            let path = crate::sandbox::files::workspace_path(path).map_err(err)?;
            Ok(json_result(json!({ "path": path, "size": size })))
        }
        "sandbox_read_file" => {
            let id = required(args, "id")?;
            let path = required(args, "path")?;
            let data = sandboxes
                .read_file(caller, id, path, MAX_INLINE_FILE)
                .await
                .map_err(err)?;
            Ok(match String::from_utf8(data) {
                Ok(text) => CallToolResult::success(vec![ContentBlock::text(text)]),
                Err(e) => {
                    let b64 = base64::engine::general_purpose::STANDARD.encode(e.into_bytes());
                    json_result(json!({ "path": path, "encoding": "base64", "base64": b64 }))
                }
            })
        }
        "sandbox_list_files" => {
            let id = required(args, "id")?;
            let path = text_arg(args, "path")?.unwrap_or("");
            let depth = number_arg(args, "depth")?.unwrap_or(1).clamp(1, 32) as u32;
            let (items, truncated) = sandboxes
                .list_files(caller, id, path, depth)
                .await
                .map_err(err)?;
            Ok(json_result(
                json!({ "items": items, "truncated": truncated }),
            ))
        }
        _ => Err(format!("unknown sandbox tool `{name}`")),
    }
}
