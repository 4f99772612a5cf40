// {{name}}: a switchyard resource plugin in JavaScript (jco componentize): MCP resources.
const README = '{{name}}://readme';
const NOTES = '{{name}}://notes/';

export const resource = {
  listResources() {
    return [{ uri: README, name: 'readme', title: undefined, description: undefined, mimeType: 'text/markdown' }];
  },
  listResourceTemplates() {
    return [{ uriTemplate: `${NOTES}{id}`, name: 'note', title: undefined, description: 'A note by id', mimeType: 'text/plain' }];
  },
  readResource(uri) {
    if (uri === README) {
      const text = '# {{name}}\n\nServed by a switchyard plugin.\n';
      return [{ uri, mimeType: 'text/markdown', body: { tag: 'text', val: text } }];
    }
    const note = uri.startsWith(NOTES) ? uri.slice(NOTES.length) : '';
    if (note && !note.includes('/')) {
      return [{ uri, mimeType: 'text/plain', body: { tag: 'text', val: `Note ${note}` } }];
    }
    throw { tag: 'not-found', val: `no resource \`${uri}\`` };
  },
};
