//! Resources: documents plugins that export `resource` serve by URI (checked
//! once when a plugin is loaded), URI templates and matching a URI to one.
//!
//! URIs are the plugin's own (e.g. `test://static-text`); the `skill://` scheme
//! is reserved for the host, which serves skill files under it.

use crate::runtime::resource;
use serde::Serialize;

/// Most resources plus templates one plugin may declare.
pub const MAX_RESOURCES: usize = 1024;
/// Longest URI or URI template (bytes).
pub const MAX_URI: usize = 2048;
/// The scheme the host serves skill files under.
pub const SKILL_SCHEME: &str = "skill";

/// A validated fixed resource of a plugin.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ResourceEntry {
    /// The plugin serving it.
    pub plugin: String,
    /// Its URI.
    pub uri: String,
    /// A short name.
    pub name: String,
    /// A human-readable title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What it holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its media type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

/// A validated URI template of a plugin.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct TemplateEntry {
    /// The plugin serving it.
    pub plugin: String,
    /// The RFC 6570 template.
    pub uri_template: String,
    /// A short name.
    pub name: String,
    /// A human-readable title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What the resources hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Their media type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

impl TemplateEntry {
    /// Whether `uri` is an expansion of this template.
    pub fn matches(&self, uri: &str) -> bool {
        parse_template(&self.uri_template).is_some_and(|parts| match_parts(&parts, uri))
    }
}

/// The scheme of `uri` (`test` in `test://x`), if it has a valid one.
pub fn scheme(uri: &str) -> Option<&str> {
    let (scheme, _) = uri.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

/// Check a URI a client sent or a plugin declared: a scheme, bounded, no
/// whitespace or control characters.
pub fn check_uri(uri: &str) -> Result<(), String> {
    if uri.len() > MAX_URI {
        return Err(format!("URIs are at most {MAX_URI} bytes"));
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a URI has no spaces or control characters".into());
    }
    if scheme(uri).is_none() {
        return Err(format!(
            "`{uri}` is not a URI (it needs a scheme, as in `notes://1`)"
        ));
    }
    Ok(())
}

enum Part<'a> {
    Literal(&'a str),
    /// A variable; `true` when it may contain reserved characters (`{+x}`, `{#x}`).
    Var(bool),
}

fn parse_template(template: &str) -> Option<Vec<Part<'_>>> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(Part::Literal(&rest[..open]));
        }
        let close = rest[open..].find('}')? + open;
        let expr = &rest[open + 1..close];
        if expr.is_empty() {
            return None;
        }
        parts.push(Part::Var(expr.starts_with(['+', '#'])));
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Literal(rest));
    }
    Some(parts)
}

/// Whether `uri` is an expansion of `parts`, in O(parts × length): the set of
/// byte positions reachable after each part (no backtracking, so hostile URIs
/// cannot make it slow).
fn match_parts(parts: &[Part<'_>], uri: &str) -> bool {
    let n = uri.len();
    let mut reach = vec![false; n + 1];
    reach[0] = true;
    for part in parts {
        let mut next = vec![false; n + 1];
        match part {
            Part::Literal(l) => {
                for (p, _) in reach.iter().enumerate().filter(|(_, r)| **r) {
                    if uri[p..].starts_with(l) {
                        next[p + l.len()] = true;
                    }
                }
            }
            Part::Var(reserved) => {
                // A variable takes one or more characters, none of them a
                // delimiter unless it is a reserved expansion.
                let mut open = false;
                for (i, c) in uri.char_indices() {
                    open |= reach[i];
                    if !reserved && matches!(c, '/' | '?' | '#' | '&') {
                        open = false;
                    } else if open {
                        next[i + c.len_utf8()] = true;
                    }
                }
            }
        }
        reach = next;
    }
    reach[n]
}

fn check_declared(plugin: &str, uri: &str, what: &str) -> Result<(), String> {
    if uri.len() > MAX_URI || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{what} `{uri}` is too long or has spaces"));
    }
    match scheme(uri) {
        None => Err(format!("{what} `{uri}` has no URI scheme")),
        Some(s) if s.eq_ignore_ascii_case(SKILL_SCHEME) => Err(format!(
            "{what} `{uri}`: the `skill:` scheme is reserved for the host (plugin `{plugin}`)"
        )),
        Some(_) => Ok(()),
    }
}

/// Check the resources and templates a plugin declares: valid unique URIs, no
/// reserved scheme, templates that parse.
pub fn check_specs(
    plugin: &str,
    specs: Vec<resource::ResourceSpec>,
    templates: Vec<resource::ResourceTemplate>,
) -> Result<(Vec<ResourceEntry>, Vec<TemplateEntry>), String> {
    if specs.len() + templates.len() > MAX_RESOURCES {
        return Err(format!("more than {MAX_RESOURCES} resources and templates"));
    }
    let mut fixed: Vec<ResourceEntry> = Vec::with_capacity(specs.len());
    for r in specs {
        check_declared(plugin, &r.uri, "resource")?;
        if fixed.iter().any(|e| e.uri == r.uri) {
            return Err(format!("resource `{}` is declared twice", r.uri));
        }
        fixed.push(ResourceEntry {
            plugin: plugin.to_string(),
            uri: r.uri,
            name: r.name,
            title: r.title,
            description: r.description,
            mime_type: r.mime_type,
        });
    }
    let mut family: Vec<TemplateEntry> = Vec::with_capacity(templates.len());
    for t in templates {
        check_declared(plugin, &t.uri_template, "resource template")?;
        if parse_template(&t.uri_template).is_none() {
            return Err(format!(
                "resource template `{}` is not a valid URI template",
                t.uri_template
            ));
        }
        family.push(TemplateEntry {
            plugin: plugin.to_string(),
            uri_template: t.uri_template,
            name: t.name,
            title: t.title,
            description: t.description,
            mime_type: t.mime_type,
        });
    }
    Ok((fixed, family))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(t: &str) -> TemplateEntry {
        TemplateEntry {
            plugin: "p".into(),
            uri_template: t.into(),
            name: "n".into(),
            title: None,
            description: None,
            mime_type: None,
        }
    }

    #[test]
    fn templates_match_their_expansions_only() {
        let t = template("test://template/{id}/data");
        assert!(t.matches("test://template/42/data"));
        assert!(t.matches("test://template/abc-é/data"));
        assert!(!t.matches("test://template//data"));
        assert!(!t.matches("test://template/4/2/data"));
        assert!(!t.matches("test://template/42/data/x"));
        let t = template("file:///{+path}");
        assert!(t.matches("file:///a/b/c.txt"));
        assert!(!t.matches("file:///"));
        let t = template("db://{table}.{id}");
        assert!(t.matches("db://users.42"));
        assert!(!t.matches("db://users"));
    }

    #[test]
    fn hostile_uris_match_in_linear_time() {
        let t = template("x://{a}.{b}.{c}.{d}");
        let uri = format!("x://{}!/", ".".repeat(1 << 20));
        let started = std::time::Instant::now();
        assert!(!t.matches(&uri));
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn uris_need_a_scheme_and_no_spaces() {
        assert!(check_uri("test://static-text").is_ok());
        assert!(check_uri("no-scheme").is_err());
        assert!(check_uri("1x://a").is_err());
        assert!(check_uri("test://a b").is_err());
        assert!(check_declared("p", "skill://x/SKILL.md", "resource").is_err());
    }
}
