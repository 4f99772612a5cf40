//! Skills (Agent Skills): `SKILL.md` folders shipped in plugin packages, read by
//! the host without WASM, and skills served by plugins that export `skill`.
//! Both are checked against the same rules.

use crate::plugins::live::PluginHost;
use crate::runtime::skill::{SkillContent, SkillFile, SkillInfo};
use crate::tools::Caller;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Largest SKILL.md accepted (bytes).
pub const MAX_SKILL_MD: u64 = 512 * 1024;

/// Where a skill comes from (serialized as `export` or `folder`: server paths stay private).
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Served by the plugin's `skill` export.
    Export,
    /// A `skills/<name>/` folder in the plugin package.
    Folder(PathBuf),
}

impl Serialize for Source {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            Self::Export => "export",
            Self::Folder(_) => "folder",
        })
    }
}

/// One skill's catalog entry.
#[derive(Debug, Clone, Serialize)]
pub struct Skill {
    /// The plugin that ships it.
    pub plugin: String,
    /// Its name.
    pub name: String,
    /// What it does and when to use it.
    pub description: String,
    /// SPDX license, if declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Free-form string metadata.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Where it comes from.
    pub source: Source,
}

impl Skill {
    /// The catalog entry of a skill served by `plugin`'s `skill` export.
    pub fn exported(plugin: &str, info: SkillInfo) -> Self {
        Self {
            plugin: plugin.to_string(),
            name: info.name,
            description: info.description,
            license: None,
            metadata: BTreeMap::new(),
            source: Source::Export,
        }
    }
}

/// The front matter of a SKILL.md, per the Agent Skills specification.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrontMatter {
    /// The skill's name; must equal its folder name.
    pub name: String,
    /// What it does and when to use it.
    pub description: String,
    /// SPDX license.
    #[serde(default)]
    pub license: Option<String>,
    /// Environment requirements.
    #[serde(default)]
    pub compatibility: Option<String>,
    /// String metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Pre-approved tools.
    #[serde(default, rename = "allowed-tools")]
    pub allowed_tools: Option<String>,
}

/// Check a skill name: 1-64 chars of `a-z`, `0-9`, `-`, no leading, trailing or double hyphen.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "skill name `{name}` must be 1-64 chars of a-z, 0-9 and single inner hyphens"
        ))
    }
}

/// Split a SKILL.md into its checked front matter and body.
pub fn parse(text: &str) -> Result<(FrontMatter, &str), String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rest = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
        .ok_or("SKILL.md must start with a `---` front matter line")?;
    let end = rest
        .find("\n---")
        .ok_or("SKILL.md front matter is not closed by a `---` line")?;
    let front: FrontMatter =
        serde_norway::from_str(&rest[..end]).map_err(|e| format!("SKILL.md front matter: {e}"))?;
    check_name(&front.name)?;
    if front.description.trim().is_empty() || front.description.chars().count() > 1024 {
        return Err("SKILL.md description must be 1-1024 characters".into());
    }
    if front
        .compatibility
        .as_ref()
        .is_some_and(|c| c.chars().count() > 500)
    {
        return Err("SKILL.md compatibility must be at most 500 characters".into());
    }
    let body = rest[end + 4..]
        .trim_start_matches('-')
        .trim_start_matches(['\r', '\n']);
    Ok((front, body))
}

/// Read every `<dir>/<name>/SKILL.md` (a missing `dir` means no skills).
pub fn read_dir(dir: &Path, plugin: &str) -> Result<Vec<Skill>, String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut skills = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let folder = entry.file_name().to_string_lossy().into_owned();
        let bytes = crate::plugins::package::read_inside(&entry.path(), "SKILL.md", MAX_SKILL_MD)
            .map_err(|e| format!("skills/{folder}: {e}"))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| format!("skills/{folder}/SKILL.md is not UTF-8"))?;
        let (front, _) = parse(&text).map_err(|e| format!("skills/{folder}: {e}"))?;
        if front.name != folder {
            return Err(format!(
                "skills/{folder}: the name `{}` must equal the folder name",
                front.name
            ));
        }
        skills.push(Skill {
            plugin: plugin.to_string(),
            name: front.name,
            description: front.description,
            license: front.license,
            metadata: front.metadata,
            source: Source::Folder(entry.path()),
        });
    }
    skills.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(skills)
}

/// The source name of skills from the skills directory (plugin names never start with `_`).
pub const LOCAL: &str = "_local";

/// Every skill `caller` may use: those of the live plugins they can see, then
/// those of the skills directory (an invalid directory is logged and skipped).
pub fn visible(host: &PluginHost, caller: &Caller, skills_dir: &Path) -> Vec<Skill> {
    let mut items: Vec<Skill> = host
        .snapshot()
        .values()
        .filter(|l| l.installed.visible_to(&caller.user_id, caller.admin))
        .flat_map(|l| l.contents.skills.iter().cloned())
        .collect();
    match read_dir(skills_dir, LOCAL) {
        Ok(local) => items.extend(local),
        Err(e) => tracing::warn!(error = %e, "the skills directory has an invalid skill"),
    }
    items
}

/// Why a skill could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Its plugin is gone or cannot run.
    #[error("skill `{0}` is not available")]
    Gone(String),
    /// Its folder could not be read.
    #[error("reading skill `{name}`: {reason}")]
    Folder {
        /// The skill.
        name: String,
        /// Why.
        reason: String,
    },
    /// Its plugin failed.
    #[error(transparent)]
    Plugin(#[from] crate::runtime::PluginError),
}

/// The instructions and files of `skill` (from its folder, or from its plugin).
pub async fn load(host: &PluginHost, skill: &Skill) -> Result<SkillContent, LoadError> {
    match &skill.source {
        Source::Folder(dir) => load_folder(dir).map_err(|reason| LoadError::Folder {
            name: skill.name.clone(),
            reason,
        }),
        Source::Export => {
            let live = host
                .get(&skill.plugin)
                .ok_or_else(|| LoadError::Gone(skill.name.clone()))?;
            let component = live
                .component
                .as_ref()
                .ok_or_else(|| LoadError::Gone(skill.name.clone()))?;
            Ok(host
                .manager()
                .runtime()
                .load_skill(component, &skill.name)
                .await?)
        }
    }
}

/// Most files returned for one skill folder.
const MAX_SKILL_FILES: usize = 64;
/// Most bytes of files returned for one skill folder.
const MAX_SKILL_FILE_BYTES: u64 = 4 << 20;

/// Load a `SKILL.md` folder: the instructions and the other files (regular
/// files only, links skipped, bounded in number and size).
pub fn load_folder(dir: &Path) -> Result<SkillContent, String> {
    let bytes = crate::plugins::package::read_inside(dir, "SKILL.md", MAX_SKILL_MD)?;
    let text = String::from_utf8(bytes).map_err(|_| "SKILL.md is not UTF-8".to_string())?;
    let (_, body) = parse(&text)?;
    let mut files = Vec::new();
    let mut budget = MAX_SKILL_FILE_BYTES;
    collect_files(dir, "", &mut files, &mut budget)?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(SkillContent {
        instructions: body.to_string(),
        files,
    })
}

fn collect_files(
    dir: &Path,
    prefix: &str,
    files: &mut Vec<SkillFile>,
    budget: &mut u64,
) -> Result<(), String> {
    let entries = fs::read_dir(dir).map_err(|e| e.to_string())?;
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = format!("{prefix}{name}");
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            collect_files(&entry.path(), &format!("{path}/"), files, budget)?;
        } else if kind.is_file() && path != "SKILL.md" {
            if files.len() >= MAX_SKILL_FILES {
                return Err(format!("more than {MAX_SKILL_FILES} files"));
            }
            let content = crate::plugins::package::read_inside(dir, &name, *budget)?;
            *budget -= content.len() as u64;
            files.push(SkillFile { path, content });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn front_matter_rules() {
        let (f, body) = parse("---\nname: pdf-tools\ndescription: >\n  Work with PDFs.\nmetadata:\n  author: x\n---\n# Hi\n").unwrap();
        assert_eq!(f.name, "pdf-tools");
        assert_eq!(f.description.trim(), "Work with PDFs.");
        assert_eq!(body, "# Hi\n");
        assert!(
            parse("---\nname: Bad\ndescription: d\n---\n")
                .unwrap_err()
                .contains("a-z")
        );
        assert!(
            parse("---\nname: ok\ndescription: d\nextra: 1\n---\n")
                .unwrap_err()
                .contains("unknown field")
        );
        assert!(
            parse("---\nname: ok\n---\n")
                .unwrap_err()
                .contains("description")
        );
        assert!(parse("no front matter").is_err());
        assert!(parse("---\nname: a--b\ndescription: d\n---\n").is_err());
    }
}
