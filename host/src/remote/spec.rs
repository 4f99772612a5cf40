//! Checking the tool list an external server sends: what it offers is someone
//! else's data, so every tool is checked on its own (a bad one is skipped with
//! the reason, never the whole list) and the list is capped.

use crate::tools::{Annotations, MAX_TOOL_DESCRIPTION, MAX_TOOL_SCHEMA, ToolEntry};
use rmcp::model::Tool;
use serde_json::Value;

/// Most tools taken from one server; the rest are skipped.
pub const MAX_REMOTE_TOOLS: usize = 512;
/// Most skipped tools described on the status (the count is always exact).
const MAX_REASONS: usize = 10;

/// The usable tools of a server and why the others were skipped.
#[derive(Debug, Default)]
pub struct Checked {
    /// Usable tools, `plugin` set to the server's name.
    pub tools: Vec<ToolEntry>,
    /// How many were skipped.
    pub skipped: usize,
    /// Why (the first few).
    pub reasons: Vec<String>,
}

impl Checked {
    fn skip(&mut self, reason: String) {
        self.skipped += 1;
        if self.reasons.len() < MAX_REASONS {
            self.reasons.push(reason);
        }
    }
}

/// Whether `name` is usable as the `TOOL` of `SERVER__TOOL`: 1-64 chars of
/// `A-Z`, `a-z`, `0-9`, `_` and `-` (what LLM providers accept for functions).
pub fn valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn shown(name: &str) -> String {
    let mut out: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
    if out.len() < name.len() {
        out.push('…');
    }
    out
}

fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// Check the tools `server` listed.
pub fn check(server: &str, listed: Vec<Tool>) -> Checked {
    let mut out = Checked::default();
    for tool in listed {
        if out.tools.len() >= MAX_REMOTE_TOOLS {
            out.skip(format!(
                "`{}`: more than {MAX_REMOTE_TOOLS} tools",
                shown(&tool.name)
            ));
            continue;
        }
        let name = tool.name.to_string();
        if !valid_tool_name(&name) {
            out.skip(format!(
                "`{}`: a tool name must be 1-64 chars of A-Z, a-z, 0-9, _ and -",
                shown(&name)
            ));
            continue;
        }
        if out.tools.iter().any(|t| t.name == name) {
            out.skip(format!("`{name}`: listed twice"));
            continue;
        }
        let input = Value::Object((*tool.input_schema).clone());
        let output = tool
            .output_schema
            .as_ref()
            .map(|s| Value::Object((**s).clone()));
        let too_big = [Some(&input), output.as_ref()]
            .into_iter()
            .flatten()
            .any(|s| s.to_string().len() > MAX_TOOL_SCHEMA);
        if too_big {
            out.skip(format!(
                "`{name}`: a schema is larger than {MAX_TOOL_SCHEMA} bytes"
            ));
            continue;
        }
        let a = tool.annotations.as_ref();
        let annotations = Annotations {
            read_only: a.and_then(|a| a.read_only_hint),
            destructive: a.and_then(|a| a.destructive_hint),
            idempotent: a.and_then(|a| a.idempotent_hint),
            open_world: a.and_then(|a| a.open_world_hint),
        };
        let title = tool
            .title
            .clone()
            .or_else(|| a.and_then(|a| a.title.clone()))
            .map(|t| cut(t, 256));
        let description = cut(
            tool.description.as_deref().unwrap_or_default().to_string(),
            MAX_TOOL_DESCRIPTION,
        );
        match ToolEntry::new(
            server,
            name,
            title,
            description,
            (input, output),
            annotations,
        ) {
            Ok(entry) => out.tools.push(entry),
            Err(reason) => out.skip(reason),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn tool(name: &str, schema: Value) -> Tool {
        let Value::Object(map) = schema else {
            panic!("schema must be an object")
        };
        Tool::new(name.to_string(), "does things", Arc::new(map))
    }

    #[test]
    fn bad_tools_are_skipped_one_by_one() {
        let listed = vec![
            tool("ok", serde_json::json!({ "type": "object" })),
            tool("camelCase-ok", serde_json::json!({ "type": "object" })),
            tool("has.dot", serde_json::json!({ "type": "object" })),
            tool("", serde_json::json!({ "type": "object" })),
            tool("ok", serde_json::json!({ "type": "object" })),
            tool("array", serde_json::json!({ "type": "array" })),
            tool(
                "broken",
                serde_json::json!({ "type": "object", "properties": { "a": { "type": 7 } } }),
            ),
            tool(&"x".repeat(65), serde_json::json!({ "type": "object" })),
        ];
        let checked = check("remote", listed);
        let names: Vec<&str> = checked.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["ok", "camelCase-ok"]);
        assert_eq!(checked.skipped, 6);
        assert!(checked.tools.iter().all(|t| t.plugin == "remote"));
        assert!(checked.reasons.iter().any(|r| r.contains("listed twice")));
        assert!(
            checked
                .reasons
                .iter()
                .any(|r| r.contains("must describe an object"))
        );
    }

    #[test]
    fn huge_lists_and_schemas_are_capped() {
        let mut listed: Vec<Tool> = (0..MAX_REMOTE_TOOLS + 40)
            .map(|i| tool(&format!("t{i}"), serde_json::json!({ "type": "object" })))
            .collect();
        let big: serde_json::Map<String, Value> = (0..5000)
            .map(|i| (format!("p{i}"), serde_json::json!({ "type": "string" })))
            .collect();
        listed.insert(
            0,
            tool(
                "big",
                serde_json::json!({ "type": "object", "properties": big }),
            ),
        );
        let mut long = tool("long", serde_json::json!({ "type": "object" }));
        long.description = Some("é".repeat(MAX_TOOL_DESCRIPTION).into());
        listed.insert(0, long);
        let checked = check("remote", listed);
        assert_eq!(checked.tools.len(), MAX_REMOTE_TOOLS);
        assert_eq!(checked.skipped, 42);
        assert!(checked.reasons.len() <= MAX_REASONS);
        assert!(checked.tools[0].description.len() <= MAX_TOOL_DESCRIPTION);
    }
}
