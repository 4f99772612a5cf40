//! What the agent may call: the owner's visible plugin tools and external MCP
//! servers' tools (named as over MCP, `PLUGIN__TOOL` and `SERVER__TOOL`), the sandbox tools on the session's sandbox,
//! `load_skill` for the session's enabled skills and `ask_user` — filtered by
//! the agent profile's tool patterns — and running one call.

use super::provider::ToolDef;
use crate::plugins::live::PluginHost;
use crate::remote::Remotes;
use crate::sandbox::exec::ExecRequest;
use crate::sandbox::{Caller as SandboxCaller, Sandboxes};
use crate::skills::{Skill, Skills};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Largest tool result given back to the model (bytes); the rest is cut with a marker.
pub const MAX_RESULT: usize = 64 << 10;

/// What a tool name stands for.
#[derive(Debug, Clone)]
pub enum Kind {
    /// A plugin's tool.
    Plugin {
        /// The plugin.
        plugin: String,
        /// The tool within it.
        tool: String,
        /// Annotated as destructive.
        destructive: bool,
    },
    /// A tool of an external MCP server.
    Remote {
        /// The server's name.
        server: String,
        /// The tool on it.
        tool: String,
        /// Annotated as destructive.
        destructive: bool,
    },
    /// One of `sandbox_exec`, `sandbox_read_file`, `sandbox_write_file`, `sandbox_list_files`.
    Sandbox(&'static str),
    /// `load_skill`.
    LoadSkill,
    /// `ask_user`: the task waits for the session's next message.
    AskUser,
}

impl Kind {
    /// Whether the `destructive` approval policy stops this call for a yes.
    pub fn destructive(&self) -> bool {
        match self {
            Self::Plugin { destructive, .. } | Self::Remote { destructive, .. } => *destructive,
            Self::Sandbox(name) => matches!(*name, "sandbox_exec" | "sandbox_write_file"),
            Self::LoadSkill | Self::AskUser => false,
        }
    }
}

/// The outcome of one call, as the model sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallResult {
    /// Text for the model.
    pub content: String,
    /// The call failed.
    pub is_error: bool,
}

impl CallResult {
    /// A failed call with `message`.
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            content: message.into(),
            is_error: true,
        }
    }

    fn ok(content: String) -> Self {
        Self {
            content: cap(content),
            is_error: false,
        }
    }
}

fn cap(mut text: String) -> String {
    if text.len() > MAX_RESULT {
        let mut end = MAX_RESULT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("\n[switchyard: result truncated]");
    }
    text
}

/// Whether `name` matches one of `patterns` (`*`, `prefix*`, or exact).
pub fn allowed(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => p == name,
    })
}

/// The tools of one agent turn.
pub struct Toolbox {
    defs: Vec<ToolDef>,
    kinds: BTreeMap<String, Kind>,
    skills: Vec<Skill>,
    loader: Arc<Skills>,
    remotes: Arc<Remotes>,
}

impl Toolbox {
    /// The tools `caller` may use under `patterns`, with `skills` enabled;
    /// sandbox tools only when sandboxes can start.
    pub fn build(
        host: &PluginHost,
        remotes: &Arc<Remotes>,
        caller: &crate::tools::Caller,
        patterns: &[String],
        skills: Vec<Skill>,
        loader: Arc<Skills>,
        sandboxes: bool,
    ) -> Self {
        let mut defs = Vec::new();
        let mut kinds = BTreeMap::new();
        let plugin_tools = crate::tools::visible(host, caller)
            .into_iter()
            .map(|e| (e, false));
        let remote_tools = remotes.visible(caller).into_iter().map(|e| (e, true));
        for (entry, remote) in plugin_tools.chain(remote_tools) {
            let name = format!("{}__{}", entry.plugin, entry.name);
            if name.len() > 64 || kinds.contains_key(&name) || !allowed(patterns, &name) {
                continue;
            }
            defs.push(ToolDef {
                name: name.clone(),
                description: entry.description.clone(),
                input_schema: entry.input_schema.clone(),
            });
            let destructive = entry.annotations.destructive == Some(true);
            let kind = if remote {
                Kind::Remote {
                    server: entry.plugin,
                    tool: entry.name,
                    destructive,
                }
            } else {
                Kind::Plugin {
                    plugin: entry.plugin,
                    tool: entry.name,
                    destructive,
                }
            };
            kinds.insert(name, kind);
        }
        let path = |what: &str| json!({ "type": "string", "description": format!("{what}, relative to /workspace"), "maxLength": 4096 });
        let mut builtin = vec![(
            "ask_user",
            "Ask the user a question and wait for the answer (use it when you cannot go on without them).",
            json!({ "type": "object", "required": ["question"], "additionalProperties": false,
                        "properties": { "question": { "type": "string", "maxLength": 4000 } } }),
            Kind::AskUser,
        )];
        if !skills.is_empty() {
            builtin.push((
                "load_skill",
                "Load one of the enabled skills: its instructions and the list of its files (copied to /workspace/skills/NAME/ in the sandbox, where its scripts run).",
                json!({ "type": "object", "required": ["name"], "additionalProperties": false,
                        "properties": { "name": { "type": "string", "maxLength": 64 } } }),
                Kind::LoadSkill,
            ));
        }
        if sandboxes {
            builtin.extend([
                (
                    "sandbox_exec",
                    "Run a shell command in this session's sandbox (Debian, /workspace persists between commands). Returns the exit code, stdout and stderr.",
                    json!({ "type": "object", "required": ["command"], "additionalProperties": false, "properties": {
                        "command": { "type": "string", "maxLength": 65536 },
                        "timeout_secs": { "type": "integer", "minimum": 1 } } }),
                    Kind::Sandbox("sandbox_exec"),
                ),
                (
                    "sandbox_read_file",
                    "Read a text file from the sandbox's workspace.",
                    json!({ "type": "object", "required": ["path"], "additionalProperties": false, "properties": { "path": path("The file") } }),
                    Kind::Sandbox("sandbox_read_file"),
                ),
                (
                    "sandbox_write_file",
                    "Write a text file in the sandbox's workspace (parents are created).",
                    json!({ "type": "object", "required": ["path", "content"], "additionalProperties": false, "properties": {
                        "path": path("The file"), "content": { "type": "string" } } }),
                    Kind::Sandbox("sandbox_write_file"),
                ),
                (
                    "sandbox_list_files",
                    "List a directory of the sandbox's workspace.",
                    json!({ "type": "object", "additionalProperties": false, "properties": { "path": path("The directory") } }),
                    Kind::Sandbox("sandbox_list_files"),
                ),
            ]);
        }
        for (name, description, schema, kind) in builtin {
            if kind_allowed(&kind, patterns, name) {
                defs.push(ToolDef {
                    name: name.into(),
                    description: description.into(),
                    input_schema: schema,
                });
                kinds.insert(name.into(), kind);
            }
        }
        Self {
            defs,
            kinds,
            skills,
            loader,
            remotes: remotes.clone(),
        }
    }

    /// The definitions offered to the model.
    pub fn defs(&self) -> &[ToolDef] {
        &self.defs
    }

    /// What `name` is, if the agent may call it.
    pub fn kind(&self, name: &str) -> Option<&Kind> {
        self.kinds.get(name)
    }

    /// The catalog of enabled skills for the system prompt.
    pub fn skill_catalog(&self) -> String {
        if self.skills.is_empty() {
            return String::new();
        }
        let mut out = String::from(
            "\n\nSkills you can load with the load_skill tool when a task calls for one \
             (each skill's files are in the sandbox under /workspace/skills/NAME/):\n",
        );
        for s in &self.skills {
            out.push_str(&format!("- {}: {}\n", s.name, s.description));
        }
        out
    }

    /// The names of every tool, for an error about an unknown one.
    pub fn names(&self) -> String {
        self.kinds.keys().cloned().collect::<Vec<_>>().join(", ")
    }

    /// Run a plugin tool or `load_skill`.
    pub async fn call_plugin(
        &self,
        host: &PluginHost,
        caller: &crate::tools::Caller,
        kind: &Kind,
        arguments: &str,
        cancel: &CancellationToken,
    ) -> CallResult {
        match kind {
            Kind::Plugin { plugin, tool, .. } => {
                let hooks = crate::runtime::CallHooks {
                    cancel: Some(cancel.clone()),
                    ..Default::default()
                };
                let request_id = crate::tools::new_request_id();
                let (result, _) = crate::tools::call_live(
                    host,
                    plugin,
                    tool,
                    arguments,
                    caller,
                    &request_id,
                    hooks,
                )
                .await;
                match result {
                    Ok(output) => {
                        let blocks: Vec<Value> = output
                            .content
                            .iter()
                            .map(crate::tools::content_json)
                            .collect();
                        let text = blocks
                            .iter()
                            .map(|b| match b["type"].as_str() {
                                Some("text") => b["text"].as_str().unwrap_or("").to_string(),
                                Some("json") => b["json"].to_string(),
                                _ => b.to_string(),
                            })
                            .collect::<Vec<_>>()
                            .join("\n");
                        CallResult::ok(text)
                    }
                    Err(e) => CallResult::error(e.to_string()),
                }
            }
            Kind::Remote { server, tool, .. } => {
                let arguments = match serde_json::from_str::<Value>(arguments) {
                    Ok(Value::Object(map)) => map,
                    _ => return CallResult::error("the arguments must be a JSON object"),
                };
                match self
                    .remotes
                    .call(caller, server, tool, Some(arguments), cancel)
                    .await
                {
                    Ok(result) => {
                        let text = remote_text(&result);
                        if result.is_error == Some(true) {
                            CallResult::error(cap(text))
                        } else {
                            CallResult::ok(text)
                        }
                    }
                    Err(e) => CallResult::error(e.to_string()),
                }
            }
            Kind::LoadSkill => {
                let name = serde_json::from_str::<Value>(arguments)
                    .ok()
                    .and_then(|v| v["name"].as_str().map(str::to_string))
                    .unwrap_or_default();
                let Some(skill) = self.skills.iter().find(|s| s.name == name) else {
                    let names: Vec<&str> = self.skills.iter().map(|s| s.name.as_str()).collect();
                    return CallResult::error(format!(
                        "no enabled skill `{name}`; enabled: {}",
                        names.join(", ")
                    ));
                };
                match self.loader.load(skill).await {
                    Ok(content) => {
                        let files: Vec<&str> =
                            content.files.iter().map(|f| f.path.as_str()).collect();
                        CallResult::ok(format!(
                            "{}\n\nFiles (in the sandbox under {}/{}/): {}",
                            content.instructions,
                            crate::tasks::SKILLS_DIR,
                            skill.name,
                            if files.is_empty() {
                                "none".to_string()
                            } else {
                                files.join(", ")
                            }
                        ))
                    }
                    Err(e) => CallResult::error(e.to_string()),
                }
            }
            Kind::Sandbox(_) | Kind::AskUser => CallResult::error("this tool is not a plugin tool"),
        }
    }
}

/// The text of an external tool's result for the model: text blocks as they
/// are, anything else (and structured content without text) as JSON.
fn remote_text(result: &rmcp::model::CallToolResult) -> String {
    let mut parts: Vec<String> = result
        .content
        .iter()
        .map(|block| match block.as_text() {
            Some(t) => t.text.clone(),
            None => serde_json::to_string(block).unwrap_or_default(),
        })
        .collect();
    if parts.is_empty()
        && let Some(structured) = &result.structured_content
    {
        parts.push(structured.to_string());
    }
    parts.join("\n")
}

fn kind_allowed(kind: &Kind, patterns: &[String], name: &str) -> bool {
    // Asking the user and loading enabled skills are always allowed.
    matches!(kind, Kind::AskUser | Kind::LoadSkill) || allowed(patterns, name)
}

/// Run a sandbox tool in sandbox `id`.
pub async fn call_sandbox(
    sandboxes: &Arc<Sandboxes>,
    owner: &SandboxCaller,
    id: &str,
    name: &str,
    arguments: &str,
) -> CallResult {
    let args: Value = match serde_json::from_str(arguments) {
        Ok(v) => v,
        Err(e) => return CallResult::error(format!("the arguments are not valid JSON: {e}")),
    };
    let text = |key: &str| args[key].as_str().map(str::to_string);
    match name {
        "sandbox_exec" => {
            let Some(command) = text("command") else {
                return CallResult::error("`command` is required");
            };
            let req = ExecRequest {
                command: Some(command),
                timeout_secs: args["timeout_secs"].as_u64(),
                ..ExecRequest::default()
            };
            match sandboxes.exec_collect(owner, id, req).await {
                Ok(r) => {
                    let failed = r.outcome.exit_code != Some(0);
                    let body = serde_json::to_string(&r).unwrap_or_default();
                    CallResult {
                        content: cap(body),
                        is_error: failed,
                    }
                }
                Err(e) => CallResult::error(e.to_string()),
            }
        }
        "sandbox_read_file" => {
            let Some(path) = text("path") else {
                return CallResult::error("`path` is required");
            };
            match sandboxes
                .read_file(owner, id, &path, MAX_RESULT as u64)
                .await
            {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(t) => CallResult::ok(t),
                    Err(_) => CallResult::error(format!("{path} is not a text file")),
                },
                Err(e) => CallResult::error(e.to_string()),
            }
        }
        "sandbox_write_file" => {
            let (Some(path), Some(content)) = (text("path"), text("content")) else {
                return CallResult::error("`path` and `content` are required");
            };
            let len = content.len() as u64;
            let body =
                futures_util::stream::once(
                    async move { Ok(bytes::Bytes::from(content.into_bytes())) },
                );
            match sandboxes
                .write_file(owner, id, &path, Some(len), Box::pin(body))
                .await
            {
                Ok(size) => CallResult::ok(format!("wrote {size} bytes to {path}")),
                Err(e) => CallResult::error(e.to_string()),
            }
        }
        "sandbox_list_files" => {
            let path = text("path").unwrap_or_default();
            match sandboxes.list_files(owner, id, &path, 2).await {
                Ok((items, truncated)) => {
                    CallResult::ok(json!({ "items": items, "truncated": truncated }).to_string())
                }
                Err(e) => CallResult::error(e.to_string()),
            }
        }
        other => CallResult::error(format!("unknown sandbox tool `{other}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::allowed;

    #[test]
    fn patterns_match_exactly_or_by_prefix() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(allowed(&p(&["*"]), "data__json_query"));
        assert!(allowed(&p(&["data__*"]), "data__json_query"));
        assert!(!allowed(&p(&["data__*"]), "web__fetch"));
        assert!(allowed(&p(&["sandbox_exec"]), "sandbox_exec"));
        assert!(!allowed(&p(&[]), "sandbox_exec"));
    }
}
