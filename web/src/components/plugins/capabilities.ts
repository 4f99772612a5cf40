// Plain words for what each capability lets a plugin do, so an administrator
// knows what a grant allows before giving it (rules: docs/plugins.md).
import type { Caps } from './types'

/** One requested capability, as a row of the grants table. */
export interface CapRow {
  /** Stable key: `http:PATTERN`, `kv`, `kv_shared`, `secret:NAME`. */
  key: string
  kind: 'http' | 'kv' | 'kv_shared' | 'secret'
  /** The value as the manifest writes it (host pattern, secret name). */
  value: string
  /** Short label. */
  label: string
  /** The kind in words ("Outbound HTTP"). */
  kindLabel: string
  /** What a grant allows. */
  allows: string
  /** How risky, for the badge: `high` reaches private networks or shares data. */
  risk: 'normal' | 'high'
  granted: boolean
}

const ADDRESS = /^(\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?|\[[0-9a-fA-F:.]+(\/\d{1,3})?\])(:(\d+|\*))?$/

/** What a grant of the HTTP host pattern `p` allows. */
export function describeHttp(p: string): { allows: string; risk: 'normal' | 'high' } {
  if (p === '*') return { allows: 'Send HTTP requests to any public internet address (never to loopback or private networks).', risk: 'high' }
  if (ADDRESS.test(p)) {
    const [, port] = p.match(/^(?:\[.*\]|[^:]+)(?::(.+))?$/) ?? []
    const where = port === '*' ? 'on any port' : port ? `on port ${port}` : 'on ports 80 and 443'
    return {
      allows: `Send HTTP requests to the address${p.includes('/') ? 'es in the range' : ''} ${p.replace(/:(\d+|\*)$/, '')} ${where}, even when non-public (loopback, private network, cloud metadata).`,
      risk: 'high',
    }
  }
  const m = p.match(/^(.*?)(?::(\d+|\*))?$/)
  const host = m?.[1] ?? p
  const port = m?.[2]
  const where = port === '*' ? 'on any port' : port ? `on port ${port}` : 'on ports 80 and 443'
  if (host.startsWith('*.')) return { allows: `Send HTTP requests to any subdomain of ${host.slice(2)} (not ${host.slice(2)} itself) ${where}, public addresses only.`, risk: 'normal' }
  return { allows: `Send HTTP requests to ${host} ${where}, public addresses only.`, risk: port === '*' ? 'high' : 'normal' }
}

/** The rows of everything `requested`, each marked granted or not. */
export function capRows(requested: Caps, granted: Caps): CapRow[] {
  const rows: CapRow[] = []
  for (const h of requested.http ?? []) {
    const d = describeHttp(h)
    rows.push({ key: `http:${h}`, kind: 'http', value: h, label: `Outbound HTTP: ${h}`, kindLabel: 'Outbound HTTP', ...d, granted: (granted.http ?? []).includes(h) })
  }
  if (requested.kv === 'shared') {
    rows.push({
      key: 'kv_shared',
      kind: 'kv_shared',
      value: 'one shared space',
      label: 'Key-value storage, shared',
      kindLabel: 'Key-value storage',
      allows: 'Keep data in one key-value space that every call shares, whoever makes it: what one user stores, calls for another user can read.',
      risk: 'high',
      granted: granted.kv === 'shared',
    })
  } else if (requested.kv) {
    rows.push({
      key: 'kv',
      kind: 'kv',
      value: 'per user',
      label: 'Key-value storage, per user',
      kindLabel: 'Key-value storage',
      allows: 'Keep data between calls in a separate key-value space for each user (up to 16 MiB each); users never see each other’s data.',
      risk: 'normal',
      granted: !!granted.kv,
    })
  }
  for (const s of requested.secrets ?? []) {
    rows.push({
      key: `secret:${s}`,
      kind: 'secret',
      value: s,
      label: `Secret: ${s}`,
      kindLabel: 'Secret',
      allows: `Read the value of the secret “${s}” (set on the Secrets tab) during every call, whoever makes it.`,
      risk: 'normal',
      granted: (granted.secrets ?? []).includes(s),
    })
  }
  return rows
}

/** A one-line summary of pending capabilities, for lists and install results. */
export function capSummary(c: Caps | undefined): string {
  if (!c) return ''
  const parts: string[] = []
  if (c.http?.length) parts.push(`outbound HTTP to ${c.http.join(', ')}`)
  if (c.kv === 'shared') parts.push('shared key-value storage')
  else if (c.kv) parts.push('key-value storage')
  if (c.secrets?.length) parts.push(`secret${c.secrets.length > 1 ? 's' : ''} ${c.secrets.join(', ')}`)
  return parts.join('; ')
}
