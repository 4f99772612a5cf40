"""{{name}}: a switchyard skill plugin in Python (componentize-py).

Each skill is a name, a description (what a model reads to decide to load it),
instructions and optional files. Plain `skills/<name>/SKILL.md` folders in the
package need no code at all: a component is for skills made by code.
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.skill import SkillContent, SkillFile, SkillInfo
from wit_world.imports.switchyard_plugin_types import Error_NotFound

SKILLS = {
    "{{name}}": (
        "Explains what this skill does and when a model should load it.",
        "# {{name}}\n\nWrite the instructions a model should follow when this skill is active.\n",
        {"references/example.md": b"An example reference file.\n"},
    ),
}


class Skill(exports.Skill):
    def list_skills(self) -> list:
        return [SkillInfo(name, description) for name, (description, _, _) in SKILLS.items()]

    def load_skill(self, name: str) -> SkillContent:
        if name not in SKILLS:
            raise Err(Error_NotFound(f"no skill `{name}`"))
        _, instructions, files = SKILLS[name]
        return SkillContent(instructions, [SkillFile(path, data) for path, data in files.items()])
