// A session's conversation, folded from its tasks' events: each task is a
// turn (the user's message or command, then text, tool calls with their
// results and timing, exec output, questions) kept in seq order. Loading
// reads every task's stored events; following subscribes to the session and
// to each unfinished task from its last seq, so a reconnect or a reload
// resumes with no gap and no duplicate (a seq already held is dropped).
import { reactive } from 'vue'
import { get, qs, seg, type Schemas } from '../../api/client'
import { listen, subscribe, type Frame } from '../../api/live'

type Task = Schemas['Task']
type Event = Schemas['Event']

/** A tool call and, once it came, its result. */
export interface ToolBlock {
  kind: 'tool'
  id: string
  name: string
  arguments: unknown
  started: number
  ended?: number
  result?: { is_error: boolean; content: unknown; interrupted?: boolean }
}
/** Streamed model text of one step. */
export interface TextBlock {
  kind: 'text'
  step: number
  text: string
}
/** Exec output of one stream. */
export interface OutputBlock {
  kind: 'output'
  stream: string
  text: string
}
/** Something the user should know (a retry, a pruned range, a delivery). */
export interface NoteBlock {
  kind: 'note'
  tone: 'info' | 'warn' | 'bad'
  text: string
}
/** One piece of a turn. */
export type Block = ToolBlock | TextBlock | OutputBlock | NoteBlock

/** One task of the conversation. */
export interface Turn {
  task: Task
  blocks: Block[]
  lastSeq: number
}

/** The conversation state a page renders. */
export interface Conversation {
  sessionId: string
  turns: Turn[]
  loading: boolean
  error: unknown
  titles: string | null
}

const MAX_OUTPUT = 256 * 1024

function decode(data: Record<string, unknown>): string {
  const text = String(data.text ?? '')
  if (data.encoding !== 'base64') return text
  try {
    return new TextDecoder().decode(Uint8Array.from(atob(text), (c) => c.charCodeAt(0)))
  } catch {
    return text
  }
}

/** Fold one event into its turn; false for a seq already held. */
export function fold(turn: Turn, e: { seq: number; type: string; data: unknown; time: number }): boolean {
  if (e.seq <= turn.lastSeq) return false
  turn.lastSeq = e.seq
  const data = (e.data ?? {}) as Record<string, unknown>
  const last = turn.blocks[turn.blocks.length - 1]
  switch (e.type) {
    case 'text': {
      const step = Number(data.step ?? 0)
      if (last?.kind === 'text' && last.step === step) last.text += String(data.delta ?? '')
      else turn.blocks.push({ kind: 'text', step, text: String(data.delta ?? '') })
      break
    }
    case 'tool_call':
      turn.blocks.push({ kind: 'tool', id: String(data.id), name: String(data.name), arguments: data.arguments, started: e.time })
      break
    case 'tool_result': {
      const block = turn.blocks.find((b): b is ToolBlock => b.kind === 'tool' && b.id === data.id)
      const result = { is_error: Boolean(data.is_error), content: data.content, interrupted: Boolean(data.interrupted) }
      if (block) {
        block.result = result
        block.ended = e.time
      } else {
        turn.blocks.push({ kind: 'tool', id: String(data.id), name: String(data.name), arguments: undefined, started: e.time, ended: e.time, result })
      }
      break
    }
    case 'output': {
      const stream = String(data.stream ?? 'stdout')
      const text = decode(data)
      if (last?.kind === 'output' && last.stream === stream) {
        last.text = (last.text + text).slice(-MAX_OUTPUT)
      } else turn.blocks.push({ kind: 'output', stream, text })
      break
    }
    case 'status': {
      const status = data.status as Task['status']
      if (status) turn.task.status = status
      turn.task.waiting_for = status === 'input_required' ? ((data.waiting_for as Task['waiting_for']) ?? null) : null
      if (status === 'pending' && data.reason && data.reason !== 'answered')
        turn.blocks.push({ kind: 'note', tone: 'warn', text: `Retrying (${String(data.reason)}): ${String(data.message ?? '')}` })
      break
    }
    case 'log':
      if (data.message === 'discard_step') {
        const step = Number(data.step ?? -1)
        turn.blocks = turn.blocks.filter((b) => !(b.kind === 'text' && b.step === step))
        turn.blocks.push({ kind: 'note', tone: 'warn', text: 'The model’s stream broke; the step is being redone.' })
      }
      break
    case 'done': {
      turn.task.status = data.status as Task['status']
      turn.task.waiting_for = null
      if (data.result !== undefined) turn.task.result = data.result as Task['result']
      if (data.error) turn.task.error = data.error as Task['error']
      turn.task.finished_at = e.time
      break
    }
    case 'gap':
      turn.blocks.push({ kind: 'note', tone: 'warn', text: `Events ${String(data.from)}–${String(data.to)} were pruned by the retention policy.` })
      break
    case 'delivery':
      if (data.state === 'failed' || data.state === 'unknown')
        turn.blocks.push({ kind: 'note', tone: 'bad', text: `The reply could not be delivered (${String(data.state)}): ${String(data.error ?? '')}` })
      break
  }
  return true
}

/** Whether a task can still change. */
export const unfinished = (t: Task) => t.status === 'pending' || t.status === 'running' || t.status === 'input_required'

async function events(taskId: string, after: number): Promise<Event[]> {
  const all: Event[] = []
  let cursor = after
  for (;;) {
    const page = await get<Schemas['EventPage']>(`/tasks/${seg(taskId)}/events${qs({ after: cursor, limit: 1000 })}`)
    all.push(...page.items)
    if (page.items.length < 1000) return all
    cursor = page.next_after
  }
}

/** Load a session's conversation and follow it live until `stop()`. */
export function openConversation(sessionId: string) {
  const c = reactive<Conversation>({ sessionId, turns: [], loading: true, error: null, titles: null })
  const followers = new Map<string, () => void>()
  let closed = false

  const turnOf = (id: string) => c.turns.find((t) => t.task.id === id)

  function follow(turn: Turn) {
    if (followers.has(turn.task.id) || !unfinished(turn.task)) return
    followers.set(turn.task.id, subscribe({ task_id: turn.task.id, after: () => turn.lastSeq }))
  }

  async function addTask(task: Task, known = 0): Promise<Turn> {
    const existing = turnOf(task.id)
    if (existing) return existing
    const turn = reactive<Turn>({ task, blocks: [], lastSeq: known }) as Turn
    c.turns.push(turn)
    c.turns.sort((a, b) => a.task.queued_at - b.task.queued_at)
    follow(turn)
    return turn
  }

  const unlisten = listen((f: Frame) => {
    if (closed) return
    if (f.type === 'session_title' && f.session_id === sessionId) c.titles = String(f.title ?? '')
    if (!f.task_id || typeof f.seq !== 'number') return
    const turn = turnOf(f.task_id)
    if (f.snapshot) {
      if (turn && f.data?.task) {
        const { last_seq: _ignored, ...rest } = f.data.task
        Object.assign(turn.task, rest)
        if (!unfinished(turn.task)) stopFollowing(turn.task.id)
      } else if (!turn && f.data?.task?.session_id === sessionId) {
        void addTask(f.data.task)
      }
      return
    }
    if (!turn) {
      if (f.session_id && f.session_id !== sessionId) return
      void get<Task>(`/tasks/${seg(f.task_id)}`).then(async (task) => {
        if (task.session_id !== sessionId || closed) return
        const t = await addTask({ ...task })
        for (const e of await events(task.id, t.lastSeq)) fold(t, e)
      })
      return
    }
    fold(turn, { seq: f.seq, type: f.type, data: f.data ?? {}, time: f.time ?? Date.now() })
    if (f.type === 'done') stopFollowing(turn.task.id)
  })
  const unsubscribeSession = subscribe({ session_id: sessionId })

  function stopFollowing(id: string) {
    followers.get(id)?.()
    followers.delete(id)
  }

  async function load() {
    c.loading = true
    c.error = null
    try {
      const page = await get<Schemas['ListOf_Task']>(`/tasks${qs({ session_id: sessionId, limit: 200 })}`)
      const tasks = [...page.items].sort((a, b) => a.queued_at - b.queued_at)
      const loaded = await Promise.all(tasks.map(async (t) => ({ t, evs: await events(t.id, 0) })))
      for (const { t, evs } of loaded) {
        const turn = turnOf(t.id) ?? (await addTask(t))
        for (const e of evs) fold(turn, e)
        follow(turn)
      }
    } catch (e) {
      c.error = e
    } finally {
      c.loading = false
    }
  }
  void load()

  return {
    state: c,
    reload: load,
    /** Show a task just created here, and follow it from its first event. */
    adopt: (task: Task) => addTask(task),
    stop() {
      closed = true
      unlisten()
      unsubscribeSession()
      for (const id of [...followers.keys()]) stopFollowing(id)
    },
  }
}
