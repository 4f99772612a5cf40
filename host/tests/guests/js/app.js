// The JavaScript guest fixture: the same four tools as every guest-language fixture.
// Built with `jco componentize app.js --wit wit --world-name switchyard:plugin/tool-plugin -o guest-js.wasm`.
import { log, kvGet, kvSet } from 'switchyard:plugin/host@0.1.0';
import { handle } from 'wasi:http/outgoing-handler@0.2.12';
import { Fields, OutgoingRequest } from 'wasi:http/types@0.2.12';

const TEXT = { type: 'string', maxLength: 100000 };
const KEY = { type: 'string', maxLength: 200 };
const noHints = { readOnly: undefined, destructive: undefined, idempotent: undefined, openWorld: undefined };

function spec(name, description, properties) {
  const schema = { type: 'object', properties, required: Object.keys(properties), additionalProperties: false };
  return { name, title: undefined, description, inputSchema: JSON.stringify(schema), outputSchema: undefined, annotations: noHints };
}

function httpGet(url) {
  const parsed = new URL(url);
  const request = new OutgoingRequest(new Fields());
  request.setScheme(parsed.protocol === 'https:' ? { tag: 'HTTPS' } : { tag: 'HTTP' });
  request.setAuthority(parsed.host);
  request.setPathWithQuery(parsed.pathname + parsed.search);
  let future;
  try {
    future = handle(request, undefined);
  } catch (e) {
    throw { tag: 'denied', val: `request refused: ${JSON.stringify(e.payload ?? e)}` };
  }
  future.subscribe().block();
  const result = future.get();
  if (!result || result.tag === 'err') throw { tag: 'unavailable', val: 'no response' };
  if (result.val.tag === 'err') {
    if (result.val.val.tag === 'HTTP-request-denied') {
      throw { tag: 'denied', val: `the host refused the request to ${parsed.host}` };
    }
    throw { tag: 'unavailable', val: `no response: ${result.val.val.tag}` };
  }
  const response = result.val.val;
  const stream = response.consume().stream();
  const chunks = [];
  for (;;) {
    try {
      chunks.push(stream.blockingRead(16384n));
    } catch (e) {
      if ((e.payload ?? e).tag === 'closed') break;
      throw { tag: 'unavailable', val: 'reading the body failed' };
    }
  }
  const body = new TextDecoder().decode(Uint8Array.from(chunks.flatMap((c) => [...c])));
  return `${response.status()} ${body}`;
}

export const tool = {
  listTools() {
    return [
      spec('word_count', 'Count the words in a text', { text: TEXT }),
      spec('remember', 'Store a value under a key', { key: KEY, value: TEXT }),
      spec('recall', 'Read the value stored under a key', { key: KEY }),
      spec('fetch', 'GET a URL and return its status and body', { url: { type: 'string', maxLength: 2000 } }),
    ];
  },
  callTool(name, argumentsJson, context) {
    const args = JSON.parse(argumentsJson);
    switch (name) {
      case 'word_count': {
        const words = args.text.split(/\s+/).filter(Boolean).length;
        if (words === 0) throw { tag: 'invalid-input', val: 'text: has no words' };
        log('info', `word_count: ${words} words for ${context.caller}`);
        const json = JSON.stringify({ words });
        return { content: [{ tag: 'text', val: `${words} words` }, { tag: 'json', val: json }], structured: json };
      }
      case 'remember':
        kvSet(args.key, new TextEncoder().encode(args.value));
        return { content: [{ tag: 'text', val: 'remembered' }], structured: undefined };
      case 'recall': {
        const value = kvGet(args.key);
        if (value === undefined) throw { tag: 'not-found', val: `nothing is stored under \`${args.key}\`` };
        return { content: [{ tag: 'text', val: new TextDecoder().decode(value) }], structured: undefined };
      }
      case 'fetch':
        return { content: [{ tag: 'text', val: httpGet(args.url) }], structured: undefined };
      default:
        throw { tag: 'not-found', val: `no tool \`${name}\`` };
    }
  },
};
