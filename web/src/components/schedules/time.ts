// Time-zone helpers for schedules: the zone list, wall-clock times in a zone
// turned into RFC 3339 instants, and instants shown in a zone.
import type { Schemas } from '../../api/client'

/** The browser's own IANA zone. */
export function browserZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'
  } catch {
    return 'UTC'
  }
}

let cached: string[] | null = null

/** Every IANA zone the browser knows, with UTC and the browser's zone included. */
export function zones(): string[] {
  if (cached) return cached
  let list: string[] = []
  try {
    list = (Intl as unknown as { supportedValuesOf(k: string): string[] }).supportedValuesOf('timeZone')
  } catch {
    list = []
  }
  const set = new Set(list)
  set.add('UTC')
  set.add(browserZone())
  cached = [...set].sort((a, b) => (a === 'UTC' ? -1 : b === 'UTC' ? 1 : a.localeCompare(b)))
  return cached
}

/** Whether `zone` is a zone this browser can format in. */
export function validZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone })
    return true
  } catch {
    return false
  }
}

const formats = new Map<string, Intl.DateTimeFormat>()

/** The zone's offset from UTC at an instant, in minutes (east positive). */
export function offsetMinutes(zone: string, ms: number): number {
  let f = formats.get(zone)
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    })
    formats.set(zone, f)
  }
  const parts = f.formatToParts(new Date(ms))
  const n = (t: string) => Number(parts.find((p) => p.type === t)?.value ?? 0)
  const asUtc = Date.UTC(n('year'), n('month') - 1, n('day'), n('hour') % 24, n('minute'), n('second'))
  return Math.round((asUtc - Math.floor(ms / 1000) * 1000) / 60_000)
}

/** "+01:00" style offset. */
export function offsetText(minutes: number): string {
  const sign = minutes < 0 ? '-' : '+'
  const m = Math.abs(minutes)
  return `${sign}${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`
}

/** The short "GMT+1" style label of a zone at an instant. */
export function zoneLabel(zone: string, ms = Date.now()): string {
  const off = offsetMinutes(zone, ms)
  if (off === 0) return 'UTC'
  const h = Math.floor(Math.abs(off) / 60)
  const m = Math.abs(off) % 60
  return `UTC${off < 0 ? '−' : '+'}${h}${m ? `:${String(m).padStart(2, '0')}` : ''}`
}

/**
 * A wall-clock time (`YYYY-MM-DDTHH:mm`, as a datetime-local input gives it)
 * in `zone`, as RFC 3339 with that zone's offset; null when unparsable.
 */
export function zonedToRfc3339(local: string, zone: string): string | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(local)
  if (!m) return null
  const [y, mo, d, h, mi, s] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? '00'].map(Number)
  const wall = Date.UTC(y, mo - 1, d, h, mi, s)
  // The offset at the guessed instant, then again at the corrected one (DST edges).
  let off = offsetMinutes(zone, wall)
  off = offsetMinutes(zone, wall - off * 60_000)
  const pad = (v: number) => String(v).padStart(2, '0')
  return `${y}-${pad(mo)}-${pad(d)}T${pad(h)}:${pad(mi)}:${pad(s)}${offsetText(off)}`
}

/** An RFC 3339 instant as the wall clock of `zone` (`YYYY-MM-DDTHH:mm`), for datetime-local inputs. */
export function rfc3339ToZoned(text: string, zone: string): string {
  const ms = Date.parse(text)
  if (Number.isNaN(ms)) return ''
  const off = offsetMinutes(zone, ms)
  return new Date(ms + off * 60_000).toISOString().slice(0, 16)
}

/** An instant shown in `zone`: "Mon, 7 Dec 2026, 09:00". */
export function inZone(ms: number, zone: string, withYear = true): string {
  try {
    return new Intl.DateTimeFormat(undefined, {
      timeZone: zone,
      weekday: 'short',
      day: 'numeric',
      month: 'short',
      ...(withYear ? { year: 'numeric' } : {}),
      hour: '2-digit',
      minute: '2-digit',
    }).format(new Date(ms))
  } catch {
    return new Date(ms).toLocaleString()
  }
}

/** The zone a trigger's times are best shown in. */
export function triggerZone(t: Schemas['Trigger'] | undefined): string {
  if (t && t.type === 'cron') return t.timezone
  return browserZone()
}

/** A trigger in a few words (the server's description is better when there is one). */
export function triggerText(t: Schemas['Trigger']): string {
  if (t.type === 'cron') return `cron ${t.expression} (${t.timezone})`
  if (t.type === 'interval') return `every ${every(t.every_secs)}`
  return `once at ${inZone(Date.parse(t.at), browserZone())}`
}

/** Seconds as "15 min", "2 h", "1 d 6 h". */
export function every(secs: number): string {
  if (secs % 86400 === 0) return `${secs / 86400} d`
  if (secs % 3600 === 0) return `${secs / 3600} h`
  if (secs % 60 === 0) return `${secs / 60} min`
  return `${secs} s`
}
