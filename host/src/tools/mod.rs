//! Tools: the specs plugins declare (checked once when a plugin is loaded) and
//! calls, with arguments checked against the tool's JSON Schema before the guest
//! runs.

use crate::plugins::live::PluginHost;
use crate::plugins::{PluginManager, PluginsError};
use crate::runtime::{CallHooks, ErrorKind, KvNamespace, PluginError, tool};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

/// Largest arguments document accepted (bytes).
pub const MAX_ARGUMENTS_BYTES: usize = 1 << 20;

/// Behaviour hints of a tool.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Annotations {
    /// Changes nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// May destroy data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destructive: Option<bool>,
    /// Repeating has no further effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotent: Option<bool>,
    /// Reaches outside systems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_world: Option<bool>,
}

/// A validated tool of a plugin.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct ToolEntry {
    /// The plugin offering it.
    pub plugin: String,
    /// The tool's name within the plugin.
    pub name: String,
    /// A human-readable title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What it does.
    pub description: String,
    /// JSON Schema of the arguments.
    #[schema(value_type = Object)]
    pub input_schema: Value,
    /// JSON Schema of the structured output.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub output_schema: Option<Value>,
    /// Behaviour hints.
    pub annotations: Annotations,
    #[serde(skip)]
    validator: Arc<jsonschema::Validator>,
}

impl std::fmt::Debug for ToolEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolEntry")
            .field("plugin", &self.plugin)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ToolEntry {
    /// A tool of `plugin` (or of an external MCP server) with its input and
    /// output schemas checked: the input schema must describe an object and
    /// both must compile.
    pub fn new(
        plugin: &str,
        name: String,
        title: Option<String>,
        description: String,
        (input_schema, output_schema): (Value, Option<Value>),
        annotations: Annotations,
    ) -> Result<Self, String> {
        if input_schema.get("type") != Some(&Value::from("object")) {
            return Err(format!(
                "tool `{name}`: the input schema must describe an object (\"type\": \"object\")"
            ));
        }
        let validator = jsonschema::validator_for(&input_schema)
            .map_err(|e| format!("tool `{name}`: input schema is not a valid JSON Schema: {e}"))?;
        if let Some(schema) = &output_schema {
            jsonschema::validator_for(schema).map_err(|e| {
                format!("tool `{name}`: output schema is not a valid JSON Schema: {e}")
            })?;
        }
        Ok(Self {
            plugin: plugin.to_string(),
            name,
            title,
            description,
            input_schema,
            output_schema,
            annotations,
            validator: Arc::new(validator),
        })
    }

    /// Parse `arguments` and check them against the input schema; the error lists
    /// each violation with its JSON pointer.
    pub fn check_arguments(&self, arguments: &str) -> Result<Value, PluginError> {
        let invalid = |m: String| PluginError::new(ErrorKind::InvalidInput, m);
        if arguments.len() > MAX_ARGUMENTS_BYTES {
            return Err(invalid(format!(
                "the arguments are {} bytes, more than the {MAX_ARGUMENTS_BYTES} allowed",
                arguments.len()
            )));
        }
        let value: Value = serde_json::from_str(arguments)
            .map_err(|e| invalid(format!("the arguments are not valid JSON: {e}")))?;
        let problems: Vec<String> = self
            .validator
            .iter_errors(&value)
            .take(5)
            .map(|e| {
                let at = e.instance_path.to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("{at}: {e}")
                }
            })
            .collect();
        if problems.is_empty() {
            Ok(value)
        } else {
            Err(invalid(format!(
                "arguments for `{}/{}` do not match its schema: {}",
                self.plugin,
                self.name,
                problems.join("; ")
            )))
        }
    }
}

/// Whether `name` is 1-64 chars of `a-z`, `0-9`, `_`, `-` (the rule for tool
/// and prompt names).
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Check the specs a plugin declares: unique valid names, object input schemas
/// that compile, valid output schemas.
pub fn check_specs(plugin: &str, specs: Vec<tool::ToolSpec>) -> Result<Vec<ToolEntry>, String> {
    if specs.len() > MAX_TOOLS {
        return Err(format!("at most {MAX_TOOLS} tools, got {}", specs.len()));
    }
    let mut entries: Vec<ToolEntry> = Vec::with_capacity(specs.len());
    for spec in specs {
        let name = spec.name;
        if !valid_name(&name) {
            let shown: String = name.chars().take(64).collect();
            return Err(format!(
                "tool name `{shown}` must be 1-64 chars of a-z, 0-9, _ and -"
            ));
        }
        let too_long = [
            ("description", spec.description.len(), MAX_TOOL_DESCRIPTION),
            ("title", spec.title.as_ref().map_or(0, String::len), 256),
            ("input schema", spec.input_schema.len(), MAX_TOOL_SCHEMA),
            (
                "output schema",
                spec.output_schema.as_ref().map_or(0, String::len),
                MAX_TOOL_SCHEMA,
            ),
        ];
        if let Some((what, len, max)) = too_long.iter().find(|(_, len, max)| len > max) {
            return Err(format!(
                "tool `{name}`: the {what} is {len} bytes; at most {max} are allowed"
            ));
        }
        if entries.iter().any(|e| e.name == name) {
            return Err(format!("tool `{name}` is declared twice"));
        }
        let input_schema: Value = serde_json::from_str(&spec.input_schema)
            .map_err(|e| format!("tool `{name}`: input schema is not JSON: {e}"))?;
        let output_schema = match spec.output_schema {
            Some(text) => Some(
                serde_json::from_str(&text)
                    .map_err(|e| format!("tool `{name}`: output schema is not JSON: {e}"))?,
            ),
            None => None,
        };
        let a = spec.annotations;
        let annotations = Annotations {
            read_only: a.read_only,
            destructive: a.destructive,
            idempotent: a.idempotent,
            open_world: a.open_world,
        };
        entries.push(ToolEntry::new(
            plugin,
            name,
            spec.title,
            spec.description,
            (input_schema, output_schema),
            annotations,
        )?);
    }
    Ok(entries)
}

/// Why a tool call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin could not be loaded (not installed, disabled, misconfigured).
    #[error(transparent)]
    Plugin(#[from] PluginsError),
    /// The call itself failed.
    #[error(transparent)]
    Tool(#[from] PluginError),
}

/// Who is calling a tool.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user's id.
    pub user_id: String,
    /// The user's name (passed to the plugin in the call context).
    pub username: String,
    /// Whether the user is an administrator.
    pub admin: bool,
}

/// Most tools one plugin may offer.
pub const MAX_TOOLS: usize = 256;
/// Longest tool description (bytes).
pub const MAX_TOOL_DESCRIPTION: usize = 4096;
/// Longest input or output schema (bytes of JSON).
pub const MAX_TOOL_SCHEMA: usize = 64 * 1024;

/// Every tool of the live plugins `caller` may see, by plugin then name.
pub fn visible(host: &PluginHost, caller: &Caller) -> Vec<ToolEntry> {
    host.snapshot()
        .values()
        .filter(|l| l.installed.visible_to(&caller.user_id, caller.admin))
        .flat_map(|l| l.contents.tools.iter().cloned())
        .collect()
}

/// Call `plugin/tool` of the live set for `caller`. Returns the outcome and every
/// capability the plugin was denied during the call. Records metrics.
pub async fn call_live(
    host: &PluginHost,
    plugin: &str,
    tool: &str,
    arguments: &str,
    caller: &Caller,
    request_id: &str,
    hooks: CallHooks,
) -> (Result<tool::ToolOutput, CallError>, Vec<String>) {
    // Label with names that exist, so callers cannot mint metric series.
    let known = host
        .get(plugin)
        .is_some_and(|l| l.contents.tools.iter().any(|t| t.name == tool));
    let mut metrics = if known {
        CallMetrics::start(plugin, tool)
    } else {
        CallMetrics::start("unknown", "unknown")
    };
    let (result, denied) =
        call_live_inner(host, plugin, tool, arguments, caller, request_id, hooks).await;
    metrics.outcome = Some(match &result {
        Ok(_) => "ok",
        Err(CallError::Plugin(_)) => "unavailable",
        Err(CallError::Tool(e)) => e.kind.as_str(),
    });
    (result, denied)
}

/// Records one call in the metrics when dropped: its outcome, or `cancelled`
/// when the call's future was dropped before it finished.
struct CallMetrics {
    plugin: String,
    tool: String,
    started: Instant,
    outcome: Option<&'static str>,
}

impl CallMetrics {
    fn start(plugin: &str, tool: &str) -> Self {
        metrics::gauge!("switchyard_plugin_instances_in_use").increment(1.0);
        Self {
            plugin: plugin.to_string(),
            tool: tool.to_string(),
            started: Instant::now(),
            outcome: None,
        }
    }
}

impl Drop for CallMetrics {
    fn drop(&mut self) {
        metrics::gauge!("switchyard_plugin_instances_in_use").decrement(1.0);
        let (plugin, tool) = (
            std::mem::take(&mut self.plugin),
            std::mem::take(&mut self.tool),
        );
        let outcome = self.outcome.unwrap_or("cancelled");
        metrics::counter!("switchyard_plugin_calls_total",
            "plugin" => plugin.clone(), "tool" => tool.clone(), "outcome" => outcome)
        .increment(1);
        metrics::histogram!("switchyard_plugin_call_duration_seconds",
            "plugin" => plugin, "tool" => tool)
        .record(self.started.elapsed().as_secs_f64());
    }
}

async fn call_live_inner(
    host: &PluginHost,
    plugin: &str,
    tool: &str,
    arguments: &str,
    caller: &Caller,
    request_id: &str,
    hooks: CallHooks,
) -> (Result<tool::ToolOutput, CallError>, Vec<String>) {
    let live = match host.get(plugin) {
        Some(l) if l.installed.visible_to(&caller.user_id, caller.admin) => l,
        _ => {
            let e = PluginsError::NotInstalled(plugin.to_string());
            return (Err(e.into()), Vec::new());
        }
    };
    let Some(component) = live.component.as_ref() else {
        let e = if live.installed.manifest.component.is_none() {
            PluginsError::NoComponent(plugin.to_string())
        } else if live.installed.state.enabled {
            PluginsError::NotReady(live.problem.clone().unwrap_or_default())
        } else {
            PluginsError::Disabled(plugin.to_string())
        };
        return (Err(e.into()), Vec::new());
    };
    let entry = match find(&live.contents.tools, plugin, tool) {
        Ok(entry) => entry,
        Err(e) => return (Err(e.into()), Vec::new()),
    };
    let arguments = match entry.check_arguments(arguments) {
        Ok(a) => a,
        Err(e) => return (Err(e.into()), Vec::new()),
    };
    let context = tool::CallContext {
        request_id: request_id.to_string(),
        caller: Some(caller.username.clone()),
    };
    // The caller's own key-value namespace, whatever the face passed in.
    let hooks = CallHooks {
        kv: Some(KvNamespace::User(caller.user_id.clone())),
        ..hooks
    };
    let (result, denied) = host
        .manager()
        .runtime()
        .call_tool_traced(component, tool, &arguments.to_string(), context, hooks)
        .await;
    (result.map_err(CallError::from), denied)
}

fn find<'a>(
    tools: &'a [ToolEntry],
    plugin: &str,
    tool: &str,
) -> Result<&'a ToolEntry, PluginError> {
    tools.iter().find(|t| t.name == tool).ok_or_else(|| {
        let names: Vec<_> = tools.iter().map(|t| t.name.as_str()).collect();
        PluginError::new(
            ErrorKind::NotFound,
            format!(
                "plugin `{plugin}` has no tool `{tool}` (its tools: {})",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ),
        )
    })
}

/// Call `plugin/tool` of an installed plugin with JSON `arguments`, loading it for
/// this one call (the CLI path). With a `caller` the call uses that user's name and
/// key-value namespace; without one it runs as the local operator
/// ([`KvNamespace::Local`]).
pub async fn call(
    manager: &PluginManager,
    plugin: &str,
    tool: &str,
    arguments: &str,
    caller: Option<&Caller>,
) -> Result<tool::ToolOutput, CallError> {
    let loaded = manager.load(plugin).await?;
    let tools = manager.tools_of(&loaded).await?;
    let entry = find(&tools, plugin, tool)?;
    let arguments = entry.check_arguments(arguments)?;
    let context = tool::CallContext {
        request_id: new_request_id(),
        caller: caller.map(|c| c.username.clone()),
    };
    let hooks = CallHooks {
        kv: Some(caller.map_or(KvNamespace::Local, |c| KvNamespace::User(c.user_id.clone()))),
        ..CallHooks::default()
    };
    let (result, _) = manager
        .runtime()
        .call_tool_traced(
            &loaded.component,
            tool,
            &arguments.to_string(),
            context,
            hooks,
        )
        .await;
    Ok(result?)
}

/// A fresh request id: the process's start time and id (hex), then a
/// process-local counter; ordered within a process and across restarts.
pub fn new_request_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static PREFIX: OnceLock<String> = OnceLock::new();
    let prefix = PREFIX.get_or_init(|| {
        format!(
            "{:012x}-{:x}",
            crate::runtime::system_clock(),
            std::process::id()
        )
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{n:x}")
}

/// A content block as the REST API and the CLI show it: `{"type": ...}` with
/// text, parsed JSON, or base64 data and its media type.
pub fn content_json(block: &crate::runtime::types::Content) -> Value {
    use crate::runtime::types::{Content, ResourceBody};
    use base64::Engine;
    let b64 = |data: &[u8]| base64::engine::general_purpose::STANDARD.encode(data);
    let blob = |kind: &str, b: &crate::runtime::types::Blob| serde_json::json!({ "type": kind, "mime": b.mime_type, "data": b64(&b.data) });
    match block {
        Content::Text(t) => serde_json::json!({ "type": "text", "text": t }),
        Content::Json(j) => serde_json::json!({
            "type": "json",
            "json": serde_json::from_str::<Value>(j).unwrap_or_else(|_| Value::String(j.clone()))
        }),
        Content::Image(b) => blob("image", b),
        Content::Bytes(b) => blob("bytes", b),
        Content::Audio(b) => blob("audio", b),
        Content::Resource(r) => {
            let mut v =
                serde_json::json!({ "type": "resource", "uri": r.uri, "mime": r.mime_type });
            match &r.body {
                ResourceBody::Text(t) => v["text"] = Value::String(t.clone()),
                ResourceBody::Blob(b) => v["data"] = Value::String(b64(b)),
            }
            v
        }
    }
}
