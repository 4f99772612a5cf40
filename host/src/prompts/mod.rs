//! Prompts: the message templates plugins that export `prompt` declare (checked
//! once when a plugin is loaded), and filling one in with checked arguments.

use crate::runtime::prompt;
use serde::Serialize;

/// Most prompts one plugin may declare.
pub const MAX_PROMPTS: usize = 256;
/// Largest value of one prompt argument (bytes).
pub const MAX_ARGUMENT_BYTES: usize = 64 * 1024;

/// One argument of a prompt.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Argument {
    /// Its name.
    pub name: String,
    /// What to pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether the prompt needs it.
    pub required: bool,
}

/// A validated prompt of a plugin.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct PromptEntry {
    /// The plugin offering it.
    pub plugin: String,
    /// The prompt's name within the plugin.
    pub name: String,
    /// A human-readable title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What it is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its arguments.
    pub arguments: Vec<Argument>,
}

impl PromptEntry {
    /// Check `given` (name, value) pairs against the declared arguments: every
    /// required one present, no unknown names, values bounded.
    pub fn check_arguments(&self, given: &[(String, String)]) -> Result<(), String> {
        for (name, value) in given {
            if !self.arguments.iter().any(|a| &a.name == name) {
                let known: Vec<&str> = self.arguments.iter().map(|a| a.name.as_str()).collect();
                return Err(format!(
                    "prompt `{}` has no argument `{name}` (its arguments: {})",
                    self.name,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ));
            }
            if value.len() > MAX_ARGUMENT_BYTES {
                return Err(format!(
                    "argument `{name}` is longer than {MAX_ARGUMENT_BYTES} bytes"
                ));
            }
        }
        let missing: Vec<&str> = self
            .arguments
            .iter()
            .filter(|a| a.required && !given.iter().any(|(n, _)| n == &a.name))
            .map(|a| a.name.as_str())
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "prompt `{}` needs the argument(s) {}",
                self.name,
                missing.join(", ")
            ))
        }
    }
}

/// Check the prompts a plugin declares: valid unique names and argument names.
pub fn check_specs(
    plugin: &str,
    specs: Vec<prompt::PromptSpec>,
) -> Result<Vec<PromptEntry>, String> {
    if specs.len() > MAX_PROMPTS {
        return Err(format!("more than {MAX_PROMPTS} prompts"));
    }
    let mut entries: Vec<PromptEntry> = Vec::with_capacity(specs.len());
    for spec in specs {
        if !crate::tools::valid_name(&spec.name) {
            return Err(format!(
                "prompt name `{}` must be 1-64 chars of a-z, 0-9, _ and -",
                spec.name
            ));
        }
        if entries.iter().any(|e| e.name == spec.name) {
            return Err(format!("prompt `{}` is declared twice", spec.name));
        }
        let mut arguments: Vec<Argument> = Vec::with_capacity(spec.arguments.len());
        for a in spec.arguments {
            if a.name.is_empty() || a.name.len() > 64 || arguments.iter().any(|b| b.name == a.name)
            {
                return Err(format!(
                    "prompt `{}`: argument names must be unique and 1-64 bytes",
                    spec.name
                ));
            }
            arguments.push(Argument {
                name: a.name,
                description: a.description,
                required: a.required,
            });
        }
        entries.push(PromptEntry {
            plugin: plugin.to_string(),
            name: spec.name,
            title: spec.title,
            description: spec.description,
            arguments,
        });
    }
    Ok(entries)
}
