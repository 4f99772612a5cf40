// Creating an API token, shared by the tokens page and the Connect page.
import { api, type Schemas } from '../../api/client'
import type { Scope } from './scopes'

/** Create a token for the signed-in user; the answer carries the value once. */
export function createToken(name: string, scopes: Scope[], days: number | null): Promise<Schemas['CreatedToken']> {
  const body: Schemas['NewToken'] = { name, scopes }
  if (days !== null) body.expires_in_days = days
  return api<Schemas['CreatedToken']>('POST', '/tokens', { body })
}

/** The expiry choices offered (days; null = never). */
export const EXPIRY_CHOICES: { days: number | null; label: string }[] = [
  { days: 7, label: '7 days' },
  { days: 30, label: '30 days' },
  { days: 90, label: '90 days' },
  { days: 365, label: '1 year' },
  { days: null, label: 'Never' },
]
