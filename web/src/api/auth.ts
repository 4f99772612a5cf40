// The signed-in user's tokens: kept in localStorage so a reload stays signed
// in, refreshed a minute before the access token expires, dropped on logout or
// when the refresh token is refused.
import { reactive } from 'vue'
import type { Schemas } from './client'

const KEY = 'switchyard.auth'

interface Stored {
  access: string
  refresh: string
  expiresAt: number
  user: Schemas['User']
}

/** The reactive sign-in state every page reads. */
export const auth = reactive<{ tokens: Stored | null }>({ tokens: load() })

let timer: ReturnType<typeof setTimeout> | undefined
let refreshing: Promise<boolean> | null = null

function load(): Stored | null {
  try {
    const raw = localStorage.getItem(KEY)
    return raw ? (JSON.parse(raw) as Stored) : null
  } catch {
    return null
  }
}

/** Keep the tokens of a login, setup or refresh answer. */
export function signIn(t: Schemas['TokenResponse']): void {
  auth.tokens = {
    access: t.access_token,
    refresh: t.refresh_token,
    expiresAt: Date.now() + t.expires_in * 1000,
    user: t.user,
  }
  localStorage.setItem(KEY, JSON.stringify(auth.tokens))
  schedule()
}

/** Forget the tokens (the server-side logout is the caller's). */
export function signOut(): void {
  auth.tokens = null
  localStorage.removeItem(KEY)
  if (timer) clearTimeout(timer)
}

/** The current access token, if any. */
export function accessToken(): string | null {
  return auth.tokens?.access ?? null
}

/** Trade the refresh token for new tokens; false when it is refused. */
export function refresh(): Promise<boolean> {
  if (refreshing) return refreshing
  const current = auth.tokens
  if (!current) return Promise.resolve(false)
  refreshing = (async () => {
    try {
      const res = await fetch('/api/v1/auth/refresh', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refresh_token: current.refresh }),
      })
      if (res.ok) {
        signIn((await res.json()) as Schemas['TokenResponse'])
        return true
      }
      if (res.status === 401 || res.status === 400) signOut()
      return false
    } catch {
      return false
    } finally {
      refreshing = null
    }
  })()
  return refreshing
}

/** Arrange the refresh that runs a minute before the access token expires. */
export function schedule(): void {
  if (timer) clearTimeout(timer)
  const t = auth.tokens
  if (!t) return
  const wait = Math.max(5_000, t.expiresAt - Date.now() - 60_000)
  timer = setTimeout(() => void refresh(), Math.min(wait, 2 ** 31 - 1))
}

window.addEventListener('storage', (e) => {
  if (e.key === KEY) auth.tokens = load()
})
