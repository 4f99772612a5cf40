//! `starter-skills`: Agent Skills compiled into the component (SKILL.md files and
//! their reference files), served through the `skill` interface.

use switchyard_plugin_sdk::prelude::*;

struct StarterSkills;

impl SkillPlugin for StarterSkills {
    fn skills() -> Vec<Skill> {
        let parse = |md: &str| Skill::from_skill_md(md).expect("bundled SKILL.md files are valid");
        vec![
            parse(include_str!("skills/commit-messages/SKILL.md")),
            parse(include_str!("skills/code-review/SKILL.md")).file(
                "references/checklist.md",
                include_str!("skills/code-review/references/checklist.md"),
            ),
        ]
    }
}

export_skills!(StarterSkills);

#[cfg(test)]
mod tests {
    use super::StarterSkills;
    use switchyard_plugin_sdk::SkillPlugin;

    #[test]
    fn bundled_skills_parse() {
        let skills = StarterSkills::skills();
        let names: Vec<_> = skills.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["commit-messages", "code-review"]);
        assert!(
            skills
                .iter()
                .all(|s| !s.description.is_empty() && s.instructions.starts_with('#'))
        );
        assert_eq!(skills[1].files[0].0, "references/checklist.md");
    }
}
