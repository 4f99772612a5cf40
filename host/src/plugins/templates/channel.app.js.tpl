// {{name}}: a switchyard channel plugin for a JSON webhook, in JavaScript (jco componentize).
// Webhook calls POST {"conversation", "sender", "text", "id"} with the header
// `x-webhook-token: <the secret webhook_token>`; `id` deduplicates redeliveries.
// Replies are POSTed as JSON {"conversation", "text"} to the configured `reply_url`.
import { getConfig, getSecret } from 'switchyard:plugin/host@0.1.0';
import { handle } from 'wasi:http/outgoing-handler@0.2.12';
import { Fields, OutgoingBody, OutgoingRequest } from 'wasi:http/types@0.2.12';

const header = (request, name) => request.headers.find(([key]) => key.toLowerCase() === name)?.[1];

// Compares in time that does not depend on where the strings differ.
function sameSecret(a, b) {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++) diff |= (a.charCodeAt(i) || 0) ^ (b.charCodeAt(i) || 0);
  return diff === 0;
}

function postJson(url, payload) {
  const parsed = new URL(url);
  const request = new OutgoingRequest(Fields.fromList([['content-type', new TextEncoder().encode('application/json')]]));
  request.setMethod({ tag: 'post' });
  request.setScheme(parsed.protocol === 'https:' ? { tag: 'HTTPS' } : { tag: 'HTTP' });
  request.setAuthority(parsed.host);
  request.setPathWithQuery(parsed.pathname + parsed.search);
  const body = request.body();
  const stream = body.write();
  const data = new TextEncoder().encode(JSON.stringify(payload));
  for (let start = 0; start < data.length; start += 4096) stream.blockingWriteAndFlush(data.subarray(start, start + 4096));
  stream[Symbol.dispose]();
  OutgoingBody.finish(body, undefined);
  let future;
  try {
    future = handle(request, undefined);
  } catch (e) {
    throw { tag: 'denied', val: `the host refused the request to ${parsed.host}` };
  }
  future.subscribe().block();
  const result = future.get();
  if (!result || result.tag === 'err' || result.val.tag === 'err') {
    throw { tag: 'unavailable', val: `no answer from ${parsed.host}` };
  }
  return result.val.val.status();
}

export const channel = {
  describe() {
    return { name: '{{name}}', description: 'JSON webhook channel' };
  },
  handleWebhook(request) {
    const token = getSecret('webhook_token');
    if (!sameSecret(header(request, 'x-webhook-token') ?? '', token)) {
      throw { tag: 'denied', val: 'x-webhook-token is missing or wrong' };
    }
    let body;
    try {
      body = JSON.parse(new TextDecoder().decode(request.body));
    } catch (e) {
      throw { tag: 'invalid-input', val: `body: not JSON (${e.message})` };
    }
    const { conversation, sender, text, id } = body ?? {};
    if (![conversation, sender, text].every((v) => typeof v === 'string')) {
      throw { tag: 'invalid-input', val: 'body: expected JSON with conversation, sender and text' };
    }
    const metadata = id === undefined || id === null ? [] : [['delivery-id', String(id)]];
    return {
      response: { status: 202, headers: [], body: new Uint8Array() },
      messages: [{ conversationKey: conversation, sender, text, replyTarget: conversation, metadata }],
    };
  },
  deliver(message) {
    const url = getConfig('reply_url');
    if (!url) throw { tag: 'failed', val: 'reply_url is not set' };
    const status = postJson(url, { conversation: message.replyTarget, text: message.text });
    if (status < 200 || status >= 300) throw { tag: 'unavailable', val: `reply endpoint answered ${status}` };
  },
};
