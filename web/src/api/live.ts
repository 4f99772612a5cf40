// One WebSocket to /api/v1/ws per tab, shared by every page. It opens with a
// single-use ticket, keeps itself alive with pings, and after any drop
// reconnects with backoff and subscribes again from each subscriber's last
// seen seq, so a follower gets every event exactly once (pages drop a seq they
// already hold). `live.state` tells pages whether the connection (not the
// task) is down.
import { reactive } from 'vue'
import { api, type Schemas } from './client'
import { accessToken } from './auth'

/** The connection's state. */
export type LiveState = 'idle' | 'connecting' | 'open' | 'reconnecting'

/** Reactive connection facts for the status indicator. */
export const live = reactive({ state: 'idle' as LiveState, since: Date.now(), attempts: 0 })

/** Any frame from the server. */
export interface Frame {
  type: string
  task_id?: string
  session_id?: string
  seq?: number
  snapshot?: boolean
  data?: Record<string, unknown> & { task?: Schemas['Task'] }
  time?: number
  [key: string]: unknown
}

type Listener = (f: Frame) => void

interface Subscription {
  frame: () => Record<string, unknown>
}

const listeners = new Set<Listener>()
const subs = new Set<Subscription>()
let socket: WebSocket | null = null
let backoff = 500
let pingTimer: ReturnType<typeof setInterval> | undefined
let pongDeadline: ReturnType<typeof setTimeout> | undefined
let retryTimer: ReturnType<typeof setTimeout> | undefined

function setState(s: LiveState) {
  if (live.state !== s) {
    live.state = s
    live.since = Date.now()
  }
}

async function open(): Promise<void> {
  if (socket || !accessToken()) return
  setState(live.attempts ? 'reconnecting' : 'connecting')
  let ticket: string
  try {
    ticket = (await api<Schemas['WsTicket']>('POST', '/ws-tickets')).ticket
  } catch {
    retry()
    return
  }
  if (socket) return
  const proto = location.protocol === 'https:' ? 'wss' : 'ws'
  const ws = new WebSocket(`${proto}://${location.host}/api/v1/ws?ticket=${encodeURIComponent(ticket)}`)
  socket = ws
  ws.onopen = () => {
    live.attempts = 0
    backoff = 500
    setState('open')
    for (const s of subs) ws.send(JSON.stringify(s.frame()))
    pingTimer = setInterval(() => {
      ws.send(JSON.stringify({ type: 'ping' }))
      pongDeadline ??= setTimeout(() => ws.close(4000, 'no pong'), 10_000)
    }, 20_000)
  }
  ws.onmessage = (m) => {
    let f: Frame
    try {
      f = JSON.parse(String(m.data)) as Frame
    } catch {
      return
    }
    if (f.type === 'pong') {
      clearTimeout(pongDeadline)
      pongDeadline = undefined
      return
    }
    for (const l of listeners) l(f)
  }
  ws.onclose = () => {
    if (socket === ws) socket = null
    clearInterval(pingTimer)
    clearTimeout(pongDeadline)
    pongDeadline = undefined
    if (subs.size || listeners.size) retry()
    else setState('idle')
  }
}

function retry() {
  live.attempts += 1
  setState('reconnecting')
  clearTimeout(retryTimer)
  retryTimer = setTimeout(() => void open(), backoff)
  backoff = Math.min(backoff * 2, 8_000)
}

function send(frame: Record<string, unknown>) {
  if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame))
}

/** Receive every frame until the returned function is called. */
export function listen(l: Listener): () => void {
  listeners.add(l)
  void open()
  return () => listeners.delete(l)
}

/**
 * Subscribe to a task (from `after()`, read again at every reconnect) or to a
 * session; the returned function unsubscribes.
 */
export function subscribe(target: { task_id: string; after: () => number } | { session_id: string }): () => void {
  const sub: Subscription = {
    frame: () =>
      'task_id' in target
        ? { type: 'subscribe', task_id: target.task_id, after: target.after() }
        : { type: 'subscribe', session_id: target.session_id },
  }
  subs.add(sub)
  send(sub.frame())
  void open()
  return () => {
    subs.delete(sub)
    send(
      'task_id' in target
        ? { type: 'unsubscribe', task_id: target.task_id }
        : { type: 'unsubscribe', session_id: target.session_id },
    )
  }
}

/** Ask the server to cancel a task over the socket (REST is the fallback). */
export function cancelOverSocket(taskId: string): boolean {
  if (socket?.readyState !== WebSocket.OPEN) return false
  send({ type: 'cancel', task_id: taskId })
  return true
}

/** Close the socket (on logout). */
export function closeLive(): void {
  subs.clear()
  listeners.clear()
  clearTimeout(retryTimer)
  socket?.close(1000, 'logout')
  socket = null
  setState('idle')
}

window.addEventListener('online', () => {
  if (!socket && (subs.size || listeners.size)) {
    backoff = 500
    void open()
  }
})
