// A small reader of the Prometheus text format (what `/metrics` answers) and
// the sums the System page shows.
import { accessToken, refresh } from '../../api/auth'
import { ApiError } from '../../api/client'

/** One sample: a metric name, its labels and value. */
export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

function unescape(v: string): string {
  return v.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
}

/** Parse the text exposition format; comments and malformed lines are skipped. */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = []
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (!line || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line)
    if (!m) continue
    const labels: Record<string, string> = {}
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g
      let l: RegExpExecArray | null
      while ((l = re.exec(m[3]))) labels[l[1]!] = unescape(l[2]!)
    }
    const v = m[4]!
    const value = v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v)
    if (!Number.isNaN(value) || v === 'NaN') out.push({ name: m[1]!, labels, value })
  }
  return out
}

/** Samples of one metric. */
export function pick(samples: Sample[], name: string): Sample[] {
  return samples.filter((s) => s.name === name)
}

/** The sum of a metric's samples matching `where`. */
export function total(samples: Sample[], name: string, where: (l: Record<string, string>) => boolean = () => true): number {
  let n = 0
  for (const s of samples) if (s.name === name && where(s.labels)) n += s.value
  return n
}

/** Sums of a metric grouped by one label. */
export function by(samples: Sample[], name: string, label: string): Map<string, number> {
  const m = new Map<string, number>()
  for (const s of samples) if (s.name === name) m.set(s.labels[label] ?? '', (m.get(s.labels[label] ?? '') ?? 0) + s.value)
  return m
}

/** Whether any sample of the metric exists. */
export function has(samples: Sample[], name: string): boolean {
  return samples.some((s) => s.name === name)
}

/** GET /metrics with the signed-in administrator's token (refreshed once on a 401). */
export async function fetchMetrics(signal?: AbortSignal): Promise<string> {
  const go = () =>
    fetch('/metrics', { headers: { authorization: `Bearer ${accessToken() ?? ''}`, accept: 'text/plain' }, signal })
  let res: Response
  try {
    res = await go()
    if (res.status === 401 && (await refresh())) res = await go()
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e
    throw new ApiError(0, 'unreachable', 'The server cannot be reached. Check that switchyard is running; retrying may help.')
  }
  if (!res.ok) {
    let message = `HTTP ${res.status}`
    let code = `http_${res.status}`
    try {
      const b = (await res.json()) as { error?: { code?: string; message?: string } }
      message = b.error?.message ?? message
      code = b.error?.code ?? code
    } catch {
      /* not JSON */
    }
    throw new ApiError(res.status, code, message)
  }
  const type = res.headers.get('content-type') ?? ''
  if (type.includes('text/html')) {
    throw new ApiError(404, 'not_found', 'This address does not serve /metrics (a development server that does not forward it?).')
  }
  return res.text()
}
