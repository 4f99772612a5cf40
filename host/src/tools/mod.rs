//! Tools: the specs plugins declare (checked once when a plugin is loaded) and
//! calls, with arguments checked against the tool's JSON Schema before the guest
//! runs.

use crate::plugins::{PluginManager, PluginsError};
use crate::runtime::{ErrorKind, PluginError, tool};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

/// Largest arguments document accepted (bytes).
pub const MAX_ARGUMENTS_BYTES: usize = 1 << 20;

/// Behaviour hints of a tool.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
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
#[derive(Clone, Serialize)]
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
    pub input_schema: Value,
    /// JSON Schema of the structured output.
    #[serde(skip_serializing_if = "Option::is_none")]
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

/// Check the specs a plugin declares: unique valid names, object input schemas
/// that compile, valid output schemas.
pub fn check_specs(plugin: &str, specs: Vec<tool::ToolSpec>) -> Result<Vec<ToolEntry>, String> {
    let mut entries: Vec<ToolEntry> = Vec::with_capacity(specs.len());
    for spec in specs {
        let name = spec.name;
        let valid_name = (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !valid_name {
            return Err(format!(
                "tool name `{name}` must be 1-64 chars of a-z, 0-9, _ and -"
            ));
        }
        if entries.iter().any(|e| e.name == name) {
            return Err(format!("tool `{name}` is declared twice"));
        }
        let input_schema: Value = serde_json::from_str(&spec.input_schema)
            .map_err(|e| format!("tool `{name}`: input schema is not JSON: {e}"))?;
        if input_schema.get("type") != Some(&Value::from("object")) {
            return Err(format!(
                "tool `{name}`: the input schema must describe an object (\"type\": \"object\")"
            ));
        }
        let validator = jsonschema::validator_for(&input_schema)
            .map_err(|e| format!("tool `{name}`: input schema is not a valid JSON Schema: {e}"))?;
        let output_schema = match spec.output_schema {
            Some(text) => {
                let schema: Value = serde_json::from_str(&text)
                    .map_err(|e| format!("tool `{name}`: output schema is not JSON: {e}"))?;
                jsonschema::validator_for(&schema).map_err(|e| {
                    format!("tool `{name}`: output schema is not a valid JSON Schema: {e}")
                })?;
                Some(schema)
            }
            None => None,
        };
        let a = spec.annotations;
        entries.push(ToolEntry {
            plugin: plugin.to_string(),
            name,
            title: spec.title,
            description: spec.description,
            input_schema,
            output_schema,
            annotations: Annotations {
                read_only: a.read_only,
                destructive: a.destructive,
                idempotent: a.idempotent,
                open_world: a.open_world,
            },
            validator: Arc::new(validator),
        });
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

/// Call `plugin/tool` with JSON `arguments` on behalf of `caller`.
pub async fn call(
    manager: &PluginManager,
    plugin: &str,
    tool: &str,
    arguments: &str,
    caller: Option<String>,
) -> Result<tool::ToolOutput, CallError> {
    let loaded = manager.load(plugin)?;
    let tools = manager.tools_of(&loaded).await?;
    let entry = tools.iter().find(|t| t.name == tool).ok_or_else(|| {
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
    })?;
    let arguments = entry.check_arguments(arguments)?;
    let context = tool::CallContext {
        request_id: new_request_id(),
        caller,
    };
    Ok(manager
        .runtime()
        .call_tool(&loaded.component, tool, &arguments.to_string(), context)
        .await?)
}

/// A fresh request id: time-ordered hex with a process-local counter.
pub fn new_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:012x}-{:x}-{n:x}",
        crate::runtime::system_clock(),
        std::process::id()
    )
}
