//! Skills (Agent Skills): `SKILL.md` folders shipped in plugin packages or in
//! the skills directory, read by the host without WASM; skills served by
//! plugins that export `skill`; and skills users install as archives
//! ([`installed`]). All are checked against the same rules, which agree with
//! the reference validator (`skills-ref`).

pub mod archive;
pub mod installed;

pub use installed::{SkillError, Skills};

use crate::runtime::skill::{SkillContent, SkillFile, SkillInfo};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Largest SKILL.md accepted (bytes).
pub const MAX_SKILL_MD: u64 = 512 * 1024;

/// Where a skill comes from (serialized as `export`, `folder` or `installed`:
/// server paths stay private).
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Served by the plugin's `skill` export.
    Export,
    /// A `skills/<name>/` folder in the plugin package or the skills directory.
    Folder(PathBuf),
    /// Installed by a user; the id of its row in the store.
    Installed(String),
}

impl Serialize for Source {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            Self::Export => "export",
            Self::Folder(_) => "folder",
            Self::Installed(_) => "installed",
        })
    }
}

/// One skill's catalog entry.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Skill {
    /// The plugin that ships it, `_local` for the skills directory, or
    /// `@USER` for a skill USER installed.
    pub plugin: String,
    /// Its name.
    pub name: String,
    /// What it does and when to use it.
    pub description: String,
    /// SPDX license, if declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Free-form string metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Where it comes from: `export`, `folder` or `installed`.
    #[schema(value_type = String)]
    pub source: Source,
    /// Who installed it (installed skills only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// `private` or `shared` (installed skills only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
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
            owner: None,
            visibility: None,
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
    /// String metadata (scalar values are read as strings, as YAML 1.2 core).
    #[serde(default, deserialize_with = "scalar_map")]
    pub metadata: BTreeMap<String, String>,
    /// Pre-approved tools.
    #[serde(default, rename = "allowed-tools")]
    pub allowed_tools: Option<String>,
}

/// Read `metadata` values that are YAML scalars as strings, as the reference
/// validator (strict YAML, every scalar a string) does.
fn scalar_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    use serde::de::Error;
    let raw = BTreeMap::<String, serde_norway::Value>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| {
            let text = match v {
                serde_norway::Value::String(s) => s,
                serde_norway::Value::Bool(b) => b.to_string(),
                serde_norway::Value::Number(n) => n.to_string(),
                serde_norway::Value::Null => String::new(),
                _ => return Err(D::Error::custom(format!("metadata `{k}` must be a string"))),
            };
            Ok((k, text))
        })
        .collect()
}

/// Check a skill name as the Agent Skills reference does: after NFKC
/// normalization, 1-64 lowercase letters, digits and single inner hyphens.
pub fn check_name(name: &str) -> Result<(), String> {
    use unicode_normalization::UnicodeNormalization;
    let normal: String = name.nfkc().collect();
    let ok = normal == name
        && (1..=64).contains(&name.chars().count())
        && name.to_lowercase() == name
        && name.chars().all(|c| c.is_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "skill name `{name}` must be 1-64 lowercase letters, digits and single inner hyphens"
        ))
    }
}

/// A skill's name must equal the name of its folder.
pub fn check_folder(name: &str, folder: &str) -> Result<(), String> {
    use unicode_normalization::UnicodeNormalization;
    if folder.nfkc().collect::<String>() == name {
        Ok(())
    } else {
        Err(format!(
            "the folder `{folder}` must carry the skill's name `{name}`"
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
        check_folder(&front.name, &folder).map_err(|e| format!("skills/{folder}: {e}"))?;
        skills.push(Skill {
            plugin: plugin.to_string(),
            name: front.name,
            description: front.description,
            license: front.license,
            metadata: front.metadata,
            source: Source::Folder(entry.path()),
            owner: None,
            visibility: None,
        });
    }
    skills.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(skills)
}

/// The source name of skills from the skills directory (plugin names never start with `_`).
pub const LOCAL: &str = "_local";

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
                .contains("lowercase")
        );
        // As the reference validator: Unicode letters, metadata scalars as strings.
        assert!(parse("---\nname: données\ndescription: d\n---\n").is_ok());
        let (f, _) =
            parse("---\nname: ok\ndescription: d\nmetadata:\n  version: 1.5\n---\n").unwrap();
        assert_eq!(f.metadata["version"], "1.5");
        assert!(parse("---\nname: -x\ndescription: d\n---\n").is_err());
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
