//! Skills: Agent Skills (a `SKILL.md` with front matter, plus files) served by a plugin.

use crate::error::{Error, Result};

/// One skill: catalog entry, instructions and files.
#[derive(Debug, Clone)]
pub struct Skill {
    /// The skill's name (`a-z`, `0-9`, `-`).
    pub name: String,
    /// What the skill does and when to use it.
    pub description: String,
    /// The body of SKILL.md.
    pub instructions: String,
    /// Other files: (relative path, bytes).
    pub files: Vec<(String, Vec<u8>)>,
}

impl Skill {
    /// Parse a SKILL.md: YAML front matter between `---` lines with at least
    /// `name` and `description` (single-line scalars, optionally quoted), then the body.
    pub fn from_skill_md(markdown: &str) -> Result<Self> {
        let text = markdown.strip_prefix('\u{feff}').unwrap_or(markdown);
        let rest = text
            .strip_prefix("---\n")
            .or_else(|| text.strip_prefix("---\r\n"))
            .ok_or_else(|| {
                Error::invalid_input("SKILL.md must start with a `---` front matter line")
            })?;
        let end = rest
            .find("\n---")
            .ok_or_else(|| Error::invalid_input("SKILL.md front matter is not closed by `---`"))?;
        let (front, body) = (&rest[..end], &rest[end + 4..]);
        let body = body
            .trim_start_matches(['-'])
            .trim_start_matches(['\r', '\n']);
        let field = |key: &str| {
            front.lines().find_map(|line| {
                let value = line.strip_prefix(key)?.strip_prefix(':')?.trim();
                let unquoted = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                    .unwrap_or(value);
                Some(unquoted.to_string())
            })
        };
        let name = field("name")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Error::invalid_input("SKILL.md front matter has no `name`"))?;
        let description = field("description")
            .filter(|d| !d.is_empty())
            .ok_or_else(|| Error::invalid_input("SKILL.md front matter has no `description`"))?;
        Ok(Self {
            name,
            description,
            instructions: body.to_string(),
            files: Vec::new(),
        })
    }

    /// Attach a file at `path` (relative, `/`-separated).
    pub fn file(mut self, path: &str, content: impl Into<Vec<u8>>) -> Self {
        self.files.push((path.to_string(), content.into()));
        self
    }
}

/// Implement this and call [`export_skills!`](crate::export_skills) to make a skill plugin.
pub trait SkillPlugin {
    /// The skills this plugin serves.
    fn skills() -> Vec<Skill>;
}

mod export {
    use super::SkillPlugin;
    use crate::error::{Error, Result};
    use crate::skill_world::exports::switchyard::plugin::skill::{
        SkillContent, SkillFile, SkillInfo,
    };

    /// The catalog of `P` (used by [`export_skills!`](crate::export_skills)).
    pub fn list<P: SkillPlugin>() -> Vec<SkillInfo> {
        P::skills()
            .into_iter()
            .map(|s| SkillInfo {
                name: s.name,
                description: s.description,
            })
            .collect()
    }

    /// Load one skill of `P` (used by [`export_skills!`](crate::export_skills)).
    pub fn load<P: SkillPlugin>(name: &str) -> Result<SkillContent> {
        let skill = P::skills()
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| Error::not_found(format!("this plugin has no skill named `{name}`")))?;
        Ok(SkillContent {
            instructions: skill.instructions,
            files: skill
                .files
                .into_iter()
                .map(|(path, content)| SkillFile { path, content })
                .collect(),
        })
    }
}

#[doc(hidden)]
pub use export::{list as __list, load as __load};

/// Export a [`SkillPlugin`] as the component's `skill` interface.
#[macro_export]
macro_rules! export_skills {
    ($plugin:ty) => {
        struct __SwitchyardSkillExport;
        impl $crate::skill_world::exports::switchyard::plugin::skill::Guest
            for __SwitchyardSkillExport
        {
            fn list_skills()
            -> ::std::vec::Vec<$crate::skill_world::exports::switchyard::plugin::skill::SkillInfo>
            {
                $crate::skill::__list::<$plugin>()
            }
            fn load_skill(
                name: ::std::string::String,
            ) -> ::std::result::Result<
                $crate::skill_world::exports::switchyard::plugin::skill::SkillContent,
                $crate::Error,
            > {
                $crate::skill::__load::<$plugin>(&name)
            }
        }
        $crate::skill_world::export_skill_world!(__SwitchyardSkillExport with_types_in $crate::skill_world);
    };
}

#[cfg(test)]
mod tests {
    use super::Skill;

    #[test]
    fn parses_front_matter() {
        let s =
            Skill::from_skill_md("---\nname: demo\ndescription: \"Does: things\"\n---\n\n# Body\n")
                .unwrap();
        assert_eq!(s.name, "demo");
        assert_eq!(s.description, "Does: things");
        assert_eq!(s.instructions, "# Body\n");
        assert!(Skill::from_skill_md("# no front matter").is_err());
        assert!(Skill::from_skill_md("---\nname: x\n---\nbody").is_err());
    }
}
