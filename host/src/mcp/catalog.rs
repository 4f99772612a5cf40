//! What one caller sees over MCP, and under which names.
//!
//! Tools and prompts of a plugin are named `PLUGIN__NAME` (plugin names hold no
//! `_`, so the first `__` splits the name unambiguously and prefixed names never
//! collide). A plugin whose manifest sets `mcp.bare_names` offers its own names
//! instead, unless another visible plugin claims the same name: then every
//! claimant falls back to the prefixed form. The prefixed form is always
//! accepted in calls. Skills become prompts under their own names, and
//! `SOURCE__NAME` when two sources ship a skill of the same name.

use crate::plugins::live::{Live, PluginHost};
use crate::prompts::PromptEntry;
use crate::resources::{ResourceEntry, TemplateEntry};
use crate::skills::{Skill, Skills};
use crate::tools::{Caller, ToolEntry};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The separator between a plugin's name and a tool's or prompt's.
pub const SEPARATOR: &str = "__";

/// Where an MCP prompt comes from.
#[derive(Debug, Clone)]
pub enum PromptSource {
    /// A plugin's `prompt` export.
    Plugin(PromptEntry),
    /// A skill: its SKILL.md body is the prompt.
    Skill(Skill),
}

/// Everything one caller may use, named for MCP.
#[derive(Debug, Default)]
pub struct View {
    /// Tools by MCP name.
    pub tools: Vec<(String, ToolEntry)>,
    /// Prompts by MCP name.
    pub prompts: Vec<(String, PromptSource)>,
    /// Skills by MCP name (the `NAME` of `skill://NAME/PATH`).
    pub skills: Vec<(String, Skill)>,
    /// Fixed resources of plugins (the first plugin wins a duplicated URI).
    pub resources: Vec<ResourceEntry>,
    /// Resource templates of plugins.
    pub templates: Vec<TemplateEntry>,
}

/// The runnable plugins `caller` may see: shared and their own first, then
/// (for admins) other users' private ones, so those never shadow a resource URI.
fn visible_live(host: &PluginHost, caller: &Caller) -> Vec<Arc<Live>> {
    let mut live: Vec<Arc<Live>> = host
        .snapshot()
        .values()
        .filter(|l| l.installed.visible_to(&caller.user_id, caller.admin) && l.component.is_some())
        .cloned()
        .collect();
    live.sort_by_key(|l| {
        let foreign = l
            .installed
            .state
            .owner_id
            .as_deref()
            .is_some_and(|o| o != caller.user_id);
        (foreign, l.name().to_string())
    });
    live
}

/// Give each `(plugin, name, bare)` its MCP name: bare when asked for and
/// unclaimed by anyone else, `plugin__name` otherwise.
fn assign_names<'a>(items: impl Iterator<Item = (&'a str, &'a str, bool)> + Clone) -> Vec<String> {
    let mut claims: HashMap<&str, usize> = HashMap::new();
    for (_, name, bare) in items.clone() {
        if bare {
            *claims.entry(name).or_default() += 1;
        }
    }
    items
        .map(|(plugin, name, bare)| {
            let reserved = super::sandbox_tools::NAMES.contains(&name)
                || super::task_tools::NAMES.contains(&name)
                || super::schedule_tools::NAMES.contains(&name);
            if bare && !reserved && !name.contains(SEPARATOR) && claims.get(name) == Some(&1) {
                name.to_string()
            } else {
                format!("{plugin}{SEPARATOR}{name}")
            }
        })
        .collect()
}

impl View {
    /// Build `caller`'s view of the live plugins and the skills directory.
    pub fn build(host: &PluginHost, caller: &Caller, skills: &Skills) -> Self {
        let live = visible_live(host, caller);
        let mut view = View::default();
        let tools: Vec<(&Live, &ToolEntry)> = live
            .iter()
            .flat_map(|l| l.contents.tools.iter().map(move |t| (l.as_ref(), t)))
            .collect();
        let names = assign_names(tools.iter().map(|(l, t)| {
            (
                t.plugin.as_str(),
                t.name.as_str(),
                l.installed.manifest.mcp.bare_names,
            )
        }));
        view.tools = names
            .into_iter()
            .zip(tools.iter().map(|(_, t)| (*t).clone()))
            .collect();
        let prompts: Vec<(&Live, &PromptEntry)> = live
            .iter()
            .flat_map(|l| l.contents.prompts.iter().map(move |p| (l.as_ref(), p)))
            .collect();
        let skill_list = skills.visible(caller);
        let mut names = assign_names(
            prompts
                .iter()
                .map(|(l, p)| {
                    (
                        p.plugin.as_str(),
                        p.name.as_str(),
                        l.installed.manifest.mcp.bare_names,
                    )
                })
                .chain(
                    skill_list
                        .iter()
                        .map(|s| (s.plugin.as_str(), s.name.as_str(), true)),
                ),
        )
        .into_iter();
        for (_, p) in &prompts {
            if let Some(name) = names.next() {
                view.prompts
                    .push((name, PromptSource::Plugin((*p).clone())));
            }
        }
        for skill in skill_list {
            if let Some(name) = names.next() {
                if view.prompts.iter().any(|(n, _)| n == &name) {
                    tracing::warn!(skill = %skill.name, "two skills share an MCP name; the second is hidden");
                    continue;
                }
                view.skills.push((name.clone(), skill.clone()));
                view.prompts.push((name, PromptSource::Skill(skill)));
            }
        }
        for l in &live {
            for r in &l.contents.resources {
                if !view.resources.iter().any(|e| e.uri == r.uri) {
                    view.resources.push(r.clone());
                }
            }
            view.templates.extend(l.contents.templates.iter().cloned());
        }
        view
    }

    /// The prompt named `name`.
    pub fn prompt(&self, name: &str) -> Option<&PromptSource> {
        self.prompts.iter().find(|(n, _)| n == name).map(|(_, p)| p)
    }

    /// The skill named `name` in `skill://` URIs.
    pub fn skill(&self, name: &str) -> Option<&Skill> {
        self.skills.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }
}

/// The plugin and tool an MCP tool name refers to for `caller`, without
/// building the whole view (the hot path): `plugin__tool` directly, a bare name
/// by the one bare-named plugin that offers it.
pub fn resolve_tool(host: &PluginHost, caller: &Caller, name: &str) -> Option<(String, String)> {
    if let Some((plugin, tool)) = name.split_once(SEPARATOR) {
        return Some((plugin.to_string(), tool.to_string()));
    }
    if super::sandbox_tools::NAMES.contains(&name)
        || super::task_tools::NAMES.contains(&name)
        || super::schedule_tools::NAMES.contains(&name)
    {
        return None;
    }
    let snapshot = host.snapshot();
    let mut claimants = snapshot.values().filter(|l| {
        l.installed.manifest.mcp.bare_names
            && l.component.is_some()
            && l.installed.visible_to(&caller.user_id, caller.admin)
            && l.contents.tools.iter().any(|t| t.name == name)
    });
    let first = claimants.next()?;
    claimants
        .next()
        .is_none()
        .then(|| (first.name().to_string(), name.to_string()))
}

/// A fingerprint of what `caller` sees: changes whenever a visible plugin is
/// added, removed, upgraded, reconfigured, enabled or disabled, and whenever
/// an external MCP server's tools change.
pub fn fingerprint(
    host: &PluginHost,
    skills: &Skills,
    remotes: &crate::remote::Remotes,
    caller: &Caller,
) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    remotes.fingerprint(caller, &mut hasher);
    for skill in skills.visible(caller) {
        if matches!(skill.source, crate::skills::Source::Installed(_)) {
            skill.plugin.hash(&mut hasher);
            skill.name.hash(&mut hasher);
        }
    }
    for l in host
        .snapshot()
        .values()
        .filter(|l| l.installed.visible_to(&caller.user_id, caller.admin))
    {
        l.name().hash(&mut hasher);
        l.installed.state.revision.hash(&mut hasher);
        l.component.is_some().hash(&mut hasher);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::assign_names;

    #[test]
    fn bare_names_fall_back_to_prefixed_on_collision() {
        let items = [
            ("alpha", "search", true),
            ("beta", "search", true),
            ("gamma", "fetch", true),
            ("delta", "fetch", false),
            ("delta", "read", false),
            ("eps", "github__create", true),
        ];
        assert_eq!(
            assign_names(items.iter().copied()),
            [
                "alpha__search",
                "beta__search",
                "fetch",
                "delta__fetch",
                "delta__read",
                "eps__github__create"
            ]
        );
    }
}
