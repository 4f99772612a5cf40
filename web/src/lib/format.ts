// Small formatters every page shares.

/** "3 min ago" style time for epoch milliseconds. */
export function ago(ms: number | null | undefined): string {
  if (!ms) return '—'
  const s = Math.round((Date.now() - ms) / 1000)
  if (Math.abs(s) < 5) return 'just now'
  const units: [number, string][] = [[86400, 'd'], [3600, 'h'], [60, 'min'], [1, 's']]
  for (const [n, u] of units) {
    if (Math.abs(s) >= n) {
      const v = Math.round(Math.abs(s) / n)
      return s >= 0 ? `${v} ${u} ago` : `in ${v} ${u}`
    }
  }
  return 'just now'
}

/** A local date and time for epoch milliseconds. */
export function when(ms: number | null | undefined): string {
  return ms ? new Date(ms).toLocaleString() : '—'
}

/** A duration in milliseconds, readable. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—'
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`
}

/** Bytes, readable (KiB, MiB…). */
export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—'
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i += 1
  }
  return `${i ? v.toFixed(v < 10 ? 1 : 0) : v} ${units[i]}`
}

/** Pretty JSON. */
export function pretty(v: unknown): string {
  try {
    return JSON.stringify(v, null, 2)
  } catch {
    return String(v)
  }
}

/** The badge class of a task or sandbox status. */
export function tone(status: string | undefined): string {
  switch (status) {
    case 'completed':
    case 'running':
    case 'delivered':
    case 'ok':
      return 'ok'
    case 'failed':
    case 'dead':
    case 'degraded':
      return 'bad'
    case 'input_required':
    case 'pending':
    case 'retry':
    case 'paused':
    case 'unknown':
      return 'warn'
    default:
      return 'info'
  }
}
