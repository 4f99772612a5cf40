// A real MCP handshake from the browser, to prove a token works: initialize,
// initialized, tools/list, then end the session. Answers may come as JSON or
// as a short SSE stream; both are read.
import { ApiError } from '../../api/client'

export interface McpCheck {
  server: string
  version: string
  protocol: string
  tools: number
}

const PROTOCOL = '2025-06-18'

type Rpc = { id?: number; result?: Record<string, unknown>; error?: { code: number; message: string } }

function findAnswer(text: string, id: number): Rpc | null {
  for (const line of text.split('\n')) {
    if (!line.startsWith('data:')) continue
    const data = line.slice(5).trim()
    if (!data.startsWith('{')) continue
    try {
      const m = JSON.parse(data) as Rpc
      if (m.id === id) return m
    } catch {
      /* a partial line: read on */
    }
  }
  return null
}

async function rpcAnswer(res: Response, id: number): Promise<Rpc> {
  if (!res.ok) {
    let message = `HTTP ${res.status}`
    try {
      const b = (await res.json()) as { error?: { message?: string } | string }
      if (typeof b.error === 'object' && b.error?.message) message = b.error.message
    } catch {
      /* keep the status */
    }
    throw new ApiError(res.status, `http_${res.status}`, message)
  }
  if ((res.headers.get('content-type') ?? '').includes('application/json')) return (await res.json()) as Rpc
  if (res.headers.has('content-length')) {
    // A complete SSE body: read it all (cancelling would count as a failed request).
    const found = findAnswer(await res.text(), id)
    if (found) return found
    throw new Error('the server answered without a JSON-RPC reply')
  }
  const reader = res.body?.getReader()
  if (!reader) throw new Error('the server sent no answer')
  const dec = new TextDecoder()
  let buf = ''
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (value) buf += dec.decode(value, { stream: true })
      const found = findAnswer(buf, id)
      if (found) return found
      if (done) break
    }
  } finally {
    void reader.cancel().catch(() => {})
  }
  throw new Error('the server closed the stream without an answer')
}

/** Connect to `url` with `token` the way an MCP client would. */
export async function checkMcp(url: string, token: string, signal?: AbortSignal): Promise<McpCheck> {
  const headers: Record<string, string> = {
    authorization: `Bearer ${token}`,
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
  }
  const post = (body: unknown, extra: Record<string, string> = {}) =>
    fetch(url, { method: 'POST', headers: { ...headers, ...extra }, body: JSON.stringify(body), signal })
  let res: Response
  try {
    res = await post({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'switchyard-console-check', version: '1' } },
    })
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e
    throw new ApiError(0, 'unreachable', 'The MCP endpoint cannot be reached.')
  }
  const session = res.headers.get('mcp-session-id') ?? ''
  const init = await rpcAnswer(res, 1)
  if (init.error) throw new Error(init.error.message)
  const info = (init.result?.serverInfo ?? {}) as { name?: string; version?: string }
  const protocol = String(init.result?.protocolVersion ?? PROTOCOL)
  const s: Record<string, string> = { 'mcp-protocol-version': protocol }
  if (session) s['mcp-session-id'] = session
  let tools = 0
  try {
    await (await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, s)).text()
    const list = await rpcAnswer(await post({ jsonrpc: '2.0', id: 2, method: 'tools/list' }, s), 2)
    if (list.error) throw new Error(list.error.message)
    tools = Array.isArray(list.result?.tools) ? (list.result.tools as unknown[]).length : 0
  } finally {
    // End the session (and read the empty answer, so the request completes).
    if (session) await fetch(url, { method: 'DELETE', headers: { authorization: headers.authorization!, ...s } }).then((r) => r.text()).catch(() => '')
  }
  return { server: info.name ?? 'unknown', version: info.version ?? '', protocol, tools }
}
