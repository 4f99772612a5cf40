// A scripted fake LLM server for the browser tests: the OpenAI-compatible
// chat-completions wire protocol (`POST /v1/chat/completions`, SSE chunks,
// streamed tool calls, `[DONE]`), replies taken in order from a queue.
// Title requests (the host's "Write a short title" step) are answered apart
// so they never consume a scripted reply.
import { createServer } from 'node:http'

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/**
 * Start the server. A reply is `{ text, chunks?, delayMs? }` (text streamed in
 * `chunks` pieces, `delayMs` apart; or `{ parts: [...] }`, one delta each), `{ toolCalls: [{ name, arguments }] }`,
 * `{ hang: true }` (headers, then nothing until the client leaves), or
 * `{ status, body }` (an HTTP error).
 */
export async function startFakeLlm() {
  const queue = []
  const requests = []
  let counter = 0
  const server = createServer(async (req, res) => {
    let raw = ''
    for await (const part of req) raw += part
    if (req.method !== 'POST' || !req.url.endsWith('/chat/completions')) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found"}}')
      return
    }
    const body = JSON.parse(raw || '{}')
    const system = (body.messages ?? []).find((m) => m.role === 'system')?.content ?? ''
    const isTitle = typeof system === 'string' && system.startsWith('Write a short title')
    if (!isTitle) requests.push(body)
    const reply = isTitle ? { text: 'A test conversation' } : (queue.shift() ?? { text: 'Done.' })
    if (reply.status) {
      res.writeHead(reply.status, { 'content-type': 'application/json' }).end(JSON.stringify(reply.body ?? { error: { message: 'scripted error' } }))
      return
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    const id = `chatcmpl-${++counter}`
    const chunk = (delta, finish = null) =>
      res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', model: body.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`)
    if (reply.hang) {
      chunk({ role: 'assistant', content: '' })
      await new Promise((r) => req.on('close', r))
      return
    }
    chunk({ role: 'assistant', content: '' })
    if (reply.parts) {
      for (const [i, part] of reply.parts.entries()) {
        if (reply.delayMs && i) await sleep(reply.delayMs)
        chunk({ content: part })
      }
    } else if (reply.text) {
      const n = Math.max(1, reply.chunks ?? 1)
      const size = Math.ceil(reply.text.length / n)
      for (let i = 0; i < reply.text.length; i += size) {
        if (reply.delayMs && i) await sleep(reply.delayMs)
        chunk({ content: reply.text.slice(i, i + size) })
      }
    }
    ;(reply.toolCalls ?? []).forEach((call, index) => {
      chunk({ tool_calls: [{ index, id: `call_${counter}_${index}`, type: 'function', function: { name: call.name, arguments: '' } }] })
      chunk({ tool_calls: [{ index, function: { arguments: JSON.stringify(call.arguments ?? {}) } }] })
    })
    chunk({}, reply.toolCalls?.length ? 'tool_calls' : 'stop')
    res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } })}\n\n`)
    res.end('data: [DONE]\n\n')
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address()
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    /** Queue replies for the next model steps. */
    push: (...replies) => queue.push(...replies),
    /** The chat requests received (title requests excluded). */
    requests,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(r) }),
  }
}
