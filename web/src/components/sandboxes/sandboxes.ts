// Shared bits of the sandbox pages: what "running" means, how limits read,
// the upload limit, and a poller for live resource use.
import { onBeforeUnmount, reactive, watch } from 'vue'
import { ApiError, get, seg, type Schemas } from '../../api/client'
import { limits } from '../../api/limits'

export type Sandbox = Schemas['Sandbox']
export type Stats = Schemas['Stats']

/** Largest file the server takes or gives (`[sandbox] max_file_bytes`, from `GET /limits`). */
export const maxFileBytes = () => limits.sandbox_file_bytes

/** The sandbox has a container now (stats can be read). */
export function isRunning(s: Pick<Sandbox, 'state'>): boolean {
  return s.state === 'idle' || s.state === 'busy'
}

/** What the states mean, for a tooltip and screen readers. */
export const stateHelp: Record<string, string> = {
  starting: 'Its container is starting.',
  idle: 'Running, waiting for a command.',
  busy: 'Running a command.',
  stopped: 'No container; the workspace is kept. The next command or terminal starts it again.',
  failed: 'It could not start; see the detail.',
}

/** True when the error says the container engine or the image is missing. */
export function isUnavailable(e: unknown): boolean {
  return e instanceof ApiError && (e.status === 503 || e.code === 'sandboxes_unavailable')
}

/** "512 MiB" / "2 GiB" for a MiB count. */
export function mib(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—'
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} GiB`
  if (n >= 1024) return `${(n / 1024).toFixed(1)} GiB`
  return `${n} MiB`
}

/** "1 CPU" / "0.5 CPUs". */
export function cpus(n: number): string {
  return `${Number(n.toFixed(2))} CPU${n === 1 ? '' : 's'}`
}

/** Seconds as "5 min" / "1 h" / "90 s". */
export function secs(n: number): string {
  if (n % 3600 === 0) return `${n / 3600} h`
  if (n % 60 === 0) return `${n / 60} min`
  return `${n} s`
}

/** One live reading of a sandbox. */
export interface Usage {
  stats: Stats | null
  /** CPU use over the last interval, in % of one core (null until two readings). */
  cpuPct: number | null
  error: string | null
  /** The reading failed because the container engine is unavailable (503). */
  unavailable: boolean
  at: number
}

/**
 * Poll `GET /sandboxes/{id}/stats` for the ids `ids()` returns (the running
 * ones) every `everyMs`, while the tab is visible. CPU is the CPU-time delta
 * between two readings over the wall time between them.
 */
export function useUsage(ids: () => string[], everyMs = 3000) {
  const usage = reactive<Record<string, Usage>>({})
  const last: Record<string, { ns: number; at: number }> = {}
  let timer: ReturnType<typeof setTimeout> | undefined
  let stopped = false
  let inFlight = false
  let again = false
  const inflight: Record<string, AbortController> = {}
  const paused = new Set<string>()

  async function poll() {
    if (stopped) return
    if (inFlight) {
      again = true
      return
    }
    inFlight = true
    try {
      if (document.visibilityState !== 'hidden') {
        const want = ids().filter((id) => !paused.has(id))
        for (const id of Object.keys(usage)) if (!want.includes(id)) delete usage[id]
        await Promise.all(
          want.map(async (id) => {
            const ctl = new AbortController()
            inflight[id] = ctl
            try {
              const s = await get<Stats>(`/sandboxes/${seg(id)}/stats`, ctl.signal)
              const now = performance.now()
              const prev = last[id]
              let cpuPct: number | null = usage[id]?.cpuPct ?? null
              if (prev && now > prev.at && s.cpu_total_ns >= prev.ns) {
                cpuPct = ((s.cpu_total_ns - prev.ns) / ((now - prev.at) * 1e6)) * 100
              }
              last[id] = { ns: s.cpu_total_ns, at: now }
              usage[id] = { stats: s, cpuPct, error: null, unavailable: false, at: Date.now() }
            } catch (e) {
              if ((e as Error).name === 'AbortError') return
              delete last[id]
              // 409: it stopped between the list and this reading; the list catches up.
              const msg = e instanceof ApiError && e.status === 409 ? null : e instanceof Error ? e.message : String(e)
              usage[id] = { stats: null, cpuPct: null, error: msg, unavailable: isUnavailable(e), at: Date.now() }
            } finally {
              if (inflight[id] === ctl) delete inflight[id]
            }
          }),
        )
      }
    } finally {
      inFlight = false
      // A sandbox without a CPU figure yet gets its second reading soon.
      const soon = Object.values(usage).some((u) => u.stats && u.cpuPct === null)
      if (!stopped) timer = setTimeout(() => void poll(), again ? 0 : soon ? Math.min(1000, everyMs) : everyMs)
      again = false
    }
  }

  function now() {
    clearTimeout(timer)
    void poll()
  }

  /**
   * Stop reading `id` (cancelling a reading under way) while it is being
   * stopped or deleted, so no reading races the change; `resume` undoes it.
   */
  function pause(id: string) {
    paused.add(id)
    inflight[id]?.abort()
  }
  function resume(id: string) {
    paused.delete(id)
  }

  watch(() => ids().join(','), now, { immediate: true })
  const onVisible = () => {
    if (document.visibilityState === 'visible') now()
  }
  document.addEventListener('visibilitychange', onVisible)
  onBeforeUnmount(() => {
    stopped = true
    clearTimeout(timer)
    document.removeEventListener('visibilitychange', onVisible)
    for (const c of Object.values(inflight)) c.abort()
  })
  return { usage, pause, resume }
}
