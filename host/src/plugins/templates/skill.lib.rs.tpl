//! {{name}}: a switchyard skill plugin. Each skill is a SKILL.md (front matter
//! with `name` and `description`, then instructions) compiled into the component.
//! Plain `skills/<name>/SKILL.md` folders in the package need no code at all.

use switchyard_plugin_sdk::prelude::*;

struct Plugin;

impl SkillPlugin for Plugin {
    fn skills() -> Vec<Skill> {
        let skill = Skill::from_skill_md(include_str!("SKILL.md")).expect("SKILL.md is valid");
        vec![skill.file("references/example.md", "An example reference file.\n")]
    }
}

export_skills!(Plugin);
