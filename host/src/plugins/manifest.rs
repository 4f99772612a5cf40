//! `plugin.toml`: what a plugin is, what it exports, what it asks for, and its limits.
//!
//! Parsing rejects unknown fields (so a typo such as `htpp` is an error, not a
//! silently ignored capability) and validation reports every problem with the
//! field it is about.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

pub use super::capabilities::{Capabilities, KvAccess};

/// The largest memory cap a manifest may ask for (MiB).
pub const MAX_MEMORY_MB: u64 = 4096;
/// The longest wall-clock deadline a manifest may ask for (ms).
pub const MAX_TIMEOUT_MS: u64 = 300_000;
/// The largest `plugin.toml` read at all (bytes): bigger files are refused unparsed.
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024;
/// Most entries of any list in a manifest (authors, hosts, secrets, config keys).
pub const MAX_LIST_ITEMS: usize = 64;
/// Longest short text in a manifest (a license, an author, a host pattern).
pub const MAX_SHORT_TEXT: usize = 256;
/// Longest long text in a manifest (descriptions, config defaults).
pub const MAX_LONG_TEXT: usize = 1024;

/// A parsed and validated `plugin.toml`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Unique plugin name: 1-48 chars of `a-z`, `0-9`, `-`, starting with a letter.
    pub name: String,
    /// Semantic version, e.g. `1.2.0`.
    pub version: semver::Version,
    /// One line on what the plugin does.
    pub description: String,
    /// The interfaces the component exports (empty for a package of `skills/`
    /// folders only: folder skills need no kind).
    #[serde(default)]
    pub kinds: Vec<Kind>,
    /// Path of the component inside the package; absent for a package that
    /// holds only `skills/NAME/SKILL.md` folders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// SPDX license expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Authors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<String>,
    /// What the plugin asks to be granted.
    #[serde(default)]
    pub capabilities: Capabilities,
    /// Resource limits for each call.
    #[serde(default)]
    pub limits: Limits,
    /// Configuration keys an administrator may set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, ConfigKey>,
    /// How the plugin appears to MCP clients.
    #[serde(default, skip_serializing_if = "McpOptions::is_default")]
    pub mcp: McpOptions,
    /// How `switchyard plugin build` builds the component (the host ignores it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildSettings>,
}

/// The `[build]` table: what `switchyard plugin build` needs when it cannot
/// tell from the files alone.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BuildSettings {
    /// `rust`, `python`, `js` or `c` (default: `Cargo.toml` → rust, `app.py` →
    /// python, `app.js` → js, `*.c` files → c).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// The WIT world to build against, e.g. `tool-plugin` (default: the world
    /// that exports exactly `kinds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub world: Option<String>,
    /// The WIT folder, relative to the plugin (default: `wit/` when present,
    /// else the contract this switchyard was built with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wit: Option<String>,
    /// The source: the Python module file, the JavaScript entry file, or the C
    /// files (default: `app.py`, `app.js`, every `*.c` in the folder and `src/`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
}

/// How a plugin's tools and prompts are named for MCP clients.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct McpOptions {
    /// Offer tools and prompts under their own names (`search`) rather than
    /// `PLUGIN__NAME`; a name another visible plugin also claims falls back to
    /// the prefixed form.
    #[serde(default)]
    pub bare_names: bool,
}

impl McpOptions {
    fn is_default(&self) -> bool {
        self == &Self::default()
    }
}

/// An exported interface of the `switchyard:plugin` package.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Exports `tool`.
    Tool,
    /// Exports `channel`.
    Channel,
    /// Exports `skill`.
    Skill,
    /// Exports `prompt`.
    Prompt,
    /// Exports `resource`.
    Resource,
}

impl Kind {
    /// All kinds.
    pub const ALL: [Kind; 5] = [
        Kind::Tool,
        Kind::Channel,
        Kind::Skill,
        Kind::Prompt,
        Kind::Resource,
    ];

    /// The WIT interface name of the export.
    pub fn interface(self) -> &'static str {
        match self {
            Kind::Tool => "switchyard:plugin/tool@0.1.0",
            Kind::Channel => "switchyard:plugin/channel@0.1.0",
            Kind::Skill => "switchyard:plugin/skill@0.1.0",
            Kind::Prompt => "switchyard:plugin/prompt@0.1.0",
            Kind::Resource => "switchyard:plugin/resource@0.1.0",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Tool => "tool",
            Kind::Channel => "channel",
            Kind::Skill => "skill",
            Kind::Prompt => "prompt",
            Kind::Resource => "resource",
        })
    }
}

/// Per-call resource limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Linear-memory cap in MiB (1-4096).
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u64,
    /// Wall-clock deadline per call in milliseconds (1-300000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Optional fuel (roughly, wasm instructions) per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
}

fn default_memory_mb() -> u64 {
    64
}

fn default_timeout_ms() -> u64 {
    10_000
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mb: default_memory_mb(),
            timeout_ms: default_timeout_ms(),
            fuel: None,
        }
    }
}

/// One configuration key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfigKey {
    /// The value's type.
    #[serde(rename = "type", default)]
    pub kind: ConfigType,
    /// What the key means.
    #[serde(default)]
    pub description: String,
    /// The value when none is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<toml::Value>,
    /// Whether calls fail until a value is set.
    #[serde(default)]
    pub required: bool,
}

/// Type of a configuration value.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ConfigType {
    /// Any text.
    #[default]
    String,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// `true` or `false`.
    Boolean,
}

impl ConfigType {
    /// Check `value` and return its canonical text form.
    pub fn check(self, value: &str) -> Result<String, String> {
        let ok = match self {
            ConfigType::String => true,
            ConfigType::Integer => value.trim().parse::<i64>().is_ok(),
            ConfigType::Number => value.trim().parse::<f64>().is_ok_and(f64::is_finite),
            ConfigType::Boolean => matches!(value.trim(), "true" | "false"),
        };
        if ok {
            Ok(if self == ConfigType::String {
                value.to_string()
            } else {
                value.trim().to_string()
            })
        } else {
            Err(format!("`{value}` is not a valid {self:?} value").to_lowercase())
        }
    }
}

/// Why a manifest was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file is not valid TOML or has wrong/missing/unknown fields.
    #[error("plugin.toml: {0}")]
    Parse(String),
    /// Fields parse but break the rules.
    #[error("plugin.toml: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

impl Manifest {
    /// Parse and validate the text of a `plugin.toml`.
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        if text.len() > MAX_MANIFEST_BYTES {
            return Err(too_large(text.len() as u64));
        }
        let manifest: Manifest = toml::from_str(text)
            .map_err(|e| ManifestError::Parse(e.to_string().trim_end().to_string()))?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Check every rule; report all problems, each naming its field.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let mut problems = Vec::new();
        if let Err(e) = check_plugin_name(&self.name) {
            problems.push(format!("name: {e}"));
        }
        if self.description.trim().is_empty() || self.description.len() > MAX_LONG_TEXT {
            problems.push(format!("description: must be 1-{MAX_LONG_TEXT} characters"));
        }
        if self.version.to_string().len() > MAX_SHORT_TEXT / 4 {
            problems.push(format!(
                "version: must be at most {} characters",
                MAX_SHORT_TEXT / 4
            ));
        }
        if self
            .license
            .as_ref()
            .is_some_and(|l| l.len() > MAX_SHORT_TEXT)
        {
            problems.push(format!(
                "license: must be at most {MAX_SHORT_TEXT} characters"
            ));
        }
        check_list(&mut problems, "authors", &self.authors, MAX_SHORT_TEXT);
        check_list(
            &mut problems,
            "capabilities.http",
            &self.capabilities.http,
            MAX_SHORT_TEXT,
        );
        check_list(
            &mut problems,
            "capabilities.secrets",
            &self.capabilities.secrets,
            64,
        );
        if self.config.len() > MAX_LIST_ITEMS {
            problems.push(format!(
                "config: at most {MAX_LIST_ITEMS} keys, got {}",
                self.config.len()
            ));
        }
        let mut kinds = self.kinds.clone();
        kinds.sort();
        kinds.dedup();
        if kinds.len() != self.kinds.len() {
            problems.push("kinds: lists a kind twice".to_string());
        }
        match &self.component {
            Some(component) => {
                if self.kinds.is_empty() {
                    problems.push(
                        "kinds: list at least one of \"tool\", \"channel\", \"skill\", \"prompt\", \"resource\" (the interfaces the component exports)"
                            .into(),
                    );
                }
                if let Err(e) = check_relative_path(component) {
                    problems.push(format!("component: {e}"));
                } else if !component.ends_with(".wasm") {
                    problems.push("component: must name a `.wasm` file".to_string());
                }
            }
            None => {
                if !self.kinds.is_empty() {
                    problems.push(
                        "kinds: a package without `component` holds only skills/NAME/SKILL.md folders, which need no kind: remove `kinds`, or add `component = \"plugin.wasm\"`"
                            .into(),
                    );
                }
                if !self.capabilities.is_empty() || !self.config.is_empty() {
                    problems.push(
                        "capabilities and config need a component: a package of skill folders asks for nothing"
                            .into(),
                    );
                }
            }
        }
        for host in self.capabilities.http.iter().take(MAX_LIST_ITEMS) {
            if let Err(e) = crate::runtime::HostPattern::parse(host) {
                problems.push(format!("capabilities.http: `{host}`: {e}"));
            }
        }
        for secret in self.capabilities.secrets.iter().take(MAX_LIST_ITEMS) {
            if !is_identifier(secret) {
                problems.push(format!(
                    "capabilities.secrets: `{secret}` must be 1-64 chars of a-z, 0-9, _ starting with a letter"
                ));
            }
        }
        let limits = &self.limits;
        if !(1..=MAX_MEMORY_MB).contains(&limits.memory_mb) {
            problems.push(format!(
                "limits.memory_mb: must be between 1 and {MAX_MEMORY_MB}, got {}",
                limits.memory_mb
            ));
        }
        if !(1..=MAX_TIMEOUT_MS).contains(&limits.timeout_ms) {
            problems.push(format!(
                "limits.timeout_ms: must be between 1 and {MAX_TIMEOUT_MS}, got {}",
                limits.timeout_ms
            ));
        }
        if limits.fuel == Some(0) {
            problems.push("limits.fuel: must be at least 1 (omit it for no fuel limit)".into());
        }
        for (key, spec) in self.config.iter().take(MAX_LIST_ITEMS) {
            if spec.description.len() > MAX_LONG_TEXT {
                problems.push(format!(
                    "config.{key}.description: must be at most {MAX_LONG_TEXT} characters"
                ));
            }
            if let Some(toml::Value::String(d)) = &spec.default
                && d.len() > MAX_LONG_TEXT
            {
                problems.push(format!(
                    "config.{key}.default: must be at most {MAX_LONG_TEXT} characters"
                ));
            }
            if !is_identifier(key) {
                problems.push(format!(
                    "config.{key}: key must be 1-64 chars of a-z, 0-9, _ starting with a letter"
                ));
            }
            if let Some(default) = &spec.default {
                let text = match default {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if let Err(e) = spec.kind.check(&text) {
                    problems.push(format!("config.{key}.default: {e}"));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ManifestError::Invalid(problems))
        }
    }

    /// Whether the manifest declares `kind`.
    pub fn has(&self, kind: Kind) -> bool {
        self.kinds.contains(&kind)
    }
}

/// The error for a `plugin.toml` of `len` bytes, over [`MAX_MANIFEST_BYTES`].
pub fn too_large(len: u64) -> ManifestError {
    ManifestError::Invalid(vec![format!(
        "the file is {len} bytes; at most {MAX_MANIFEST_BYTES} are allowed"
    )])
}

/// Report a list with more than [`MAX_LIST_ITEMS`] entries or an entry over `max_len` bytes.
fn check_list(problems: &mut Vec<String>, field: &str, items: &[String], max_len: usize) {
    if items.len() > MAX_LIST_ITEMS {
        problems.push(format!(
            "{field}: at most {MAX_LIST_ITEMS} entries, got {}",
            items.len()
        ));
    }
    if items.iter().any(|i| i.len() > max_len) {
        problems.push(format!(
            "{field}: entries must be at most {max_len} characters"
        ));
    }
}

/// Check a plugin name: 1-48 chars of `a-z`, `0-9`, `-`, starting with a letter,
/// no double or trailing hyphen (so `plugin__tool` names stay unambiguous).
pub fn check_plugin_name(name: &str) -> Result<(), String> {
    let valid = (1..=48).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--");
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid plugin name: use 1-48 chars of a-z, 0-9 and single hyphens, starting with a letter"
        ))
    }
}

fn is_identifier(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Check that `path` is relative, `/`-separated and stays inside its base directory.
pub fn check_relative_path(path: &str) -> Result<(), String> {
    if path.is_empty() || path.len() > 255 {
        return Err("must be a non-empty relative path".into());
    }
    if path.starts_with('/') || path.contains('\\') || path.contains(':') || path.contains('\0') {
        return Err(format!(
            "`{path}` must be a relative path inside the package"
        ));
    }
    if path
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(format!(
            "`{path}` must not contain empty, `.` or `..` segments"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{ConfigType, check_relative_path};

    #[test]
    fn config_values_are_type_checked() {
        assert_eq!(ConfigType::Integer.check(" 42 ").unwrap(), "42");
        assert!(ConfigType::Integer.check("4.2").is_err());
        assert!(ConfigType::Number.check("NaN").is_err());
        assert_eq!(ConfigType::Boolean.check("true").unwrap(), "true");
        assert!(
            ConfigType::Boolean
                .check("yes")
                .unwrap_err()
                .contains("boolean")
        );
        assert_eq!(
            ConfigType::String.check(" keep spaces ").unwrap(),
            " keep spaces "
        );
    }

    #[test]
    fn relative_paths_stay_inside() {
        assert!(check_relative_path("a/b.wasm").is_ok());
        for bad in ["", "/abs", "../x", "a/../b", "a//b", "./a", "c:\\x", "a\\b"] {
            assert!(check_relative_path(bad).is_err(), "{bad}");
        }
    }
}
