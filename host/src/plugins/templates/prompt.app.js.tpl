// {{name}}: a switchyard prompt plugin in JavaScript (jco componentize): MCP prompts.
export const prompt = {
  listPrompts() {
    return [{
      name: 'brief',
      title: undefined,
      description: 'Ask for a short brief on a topic',
      arguments: [
        { name: 'topic', description: 'What the brief is about', required: true },
        { name: 'audience', description: 'Who reads it (default: engineers)', required: false },
      ],
    }];
  },
  getPrompt(name, argumentList) {
    if (name !== 'brief') throw { tag: 'not-found', val: `no prompt \`${name}\`` };
    const args = Object.fromEntries(argumentList);
    const topic = (args.topic ?? '').trim();
    if (!topic) throw { tag: 'invalid-input', val: 'topic: required' };
    const text = `Write a brief on ${topic} for ${args.audience || 'engineers'}.`;
    return { description: undefined, messages: [{ role: 'user', content: { tag: 'text', val: text } }] };
  },
};
