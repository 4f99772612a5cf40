// {{name}}: a switchyard skill plugin in JavaScript (jco componentize).
// Each skill is a name, a description (what a model reads to decide to load it),
// instructions and optional files. Plain `skills/<name>/SKILL.md` folders in the
// package need no code at all: a component is for skills made by code.
const skills = {
  '{{name}}': {
    description: 'Explains what this skill does and when a model should load it.',
    instructions: '# {{name}}\n\nWrite the instructions a model should follow when this skill is active.\n',
    files: { 'references/example.md': 'An example reference file.\n' },
  },
};

export const skill = {
  listSkills() {
    return Object.entries(skills).map(([name, s]) => ({ name, description: s.description }));
  },
  loadSkill(name) {
    const s = Object.hasOwn(skills, name) ? skills[name] : undefined;
    if (!s) throw { tag: 'not-found', val: `no skill \`${name}\`` };
    const files = Object.entries(s.files).map(([path, text]) => ({ path, content: new TextEncoder().encode(text) }));
    return { instructions: s.instructions, files };
  },
};
