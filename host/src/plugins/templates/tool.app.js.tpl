// {{name}}: a switchyard tool plugin in JavaScript (jco componentize).
import { log } from 'switchyard:plugin/host@0.1.0';

const schema = {
  type: 'object',
  properties: { name: { type: 'string', description: 'Who to greet', maxLength: 200 } },
  required: ['name'],
  additionalProperties: false,
};

export const tool = {
  listTools() {
    return [{
      name: 'greet',
      title: undefined,
      description: 'Greet someone by name',
      inputSchema: JSON.stringify(schema),
      outputSchema: undefined,
      annotations: { readOnly: true, destructive: undefined, idempotent: undefined, openWorld: undefined },
    }];
  },
  callTool(name, argumentsJson, context) {
    if (name !== 'greet') throw { tag: 'not-found', val: `no tool \`${name}\`` };
    const who = JSON.parse(argumentsJson).name.trim();
    if (!who) throw { tag: 'invalid-input', val: 'name: must not be blank' };
    log('info', `greeting ${who} for ${context.caller}`);
    return { content: [{ tag: 'text', val: `Hello, ${who}!` }], structured: undefined };
  },
};
