// Every REST call of the console goes through `api`: it adds the access token,
// refreshes it once on a 401, and turns error bodies into `ApiError`s whose
// message says what went wrong (the server's own words).
import type { components } from './schema'
import { accessToken, refresh, signOut } from './auth'

/** The API's schemas, generated from its OpenAPI document. */
export type Schemas = components['schemas']

/** A failed call: the HTTP status, the server's error code and message. */
export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
  ) {
    super(message)
  }
}

type Unauthorized = () => void
let unauthorized: Unauthorized = () => {}

/** What to do when the session cannot be refreshed (the router sends to login). */
export function onUnauthorized(f: Unauthorized): void {
  unauthorized = f
}

/** Options of one call. */
export interface CallOptions {
  body?: unknown
  raw?: BodyInit
  contentType?: string
  signal?: AbortSignal
  anonymous?: boolean
}

async function send(method: string, path: string, o: CallOptions): Promise<Response> {
  const headers: Record<string, string> = {}
  const token = accessToken()
  if (token && !o.anonymous) headers.authorization = `Bearer ${token}`
  let body: BodyInit | undefined
  if (o.raw !== undefined) {
    body = o.raw
    if (o.contentType) headers['content-type'] = o.contentType
  } else if (o.body !== undefined) {
    body = JSON.stringify(o.body)
    headers['content-type'] = 'application/json'
  }
  try {
    return await fetch(`/api/v1${path}`, { method, headers, body, signal: o.signal })
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e
    throw new ApiError(0, 'unreachable', 'The server cannot be reached. Check that switchyard is running; retrying may help.')
  }
}

/** Call the REST API and return the raw response (after auth handling). */
export async function call(method: string, path: string, o: CallOptions = {}): Promise<Response> {
  let res = await send(method, path, o)
  if (res.status === 401 && !o.anonymous && accessToken()) {
    if (await refresh()) res = await send(method, path, o)
    if (res.status === 401) {
      signOut()
      unauthorized()
    }
  }
  if (!res.ok) {
    let code = `http_${res.status}`
    let message = res.statusText || `HTTP ${res.status}`
    try {
      const b = (await res.json()) as { error?: { code?: string; message?: string } }
      code = b.error?.code ?? code
      message = b.error?.message ?? message
    } catch {
      /* not JSON: keep the status line */
    }
    throw new ApiError(res.status, code, message)
  }
  return res
}

/** Call the REST API and parse the JSON answer (undefined for 204). */
export async function api<T>(method: string, path: string, o: CallOptions = {}): Promise<T> {
  const res = await call(method, path, o)
  if (res.status === 204) return undefined as T
  const text = await res.text()
  return (text ? JSON.parse(text) : undefined) as T
}

/** GET shorthand. */
export const get = <T>(path: string, signal?: AbortSignal) => api<T>('GET', path, { signal })

/** Encode one path segment. */
export const seg = (s: string) => encodeURIComponent(s)

/** A query string from the defined entries. */
export function qs(q: Record<string, string | number | boolean | undefined | null>): string {
  const p = new URLSearchParams()
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v))
  const s = p.toString()
  return s ? `?${s}` : ''
}

/** A readable message for anything thrown. */
export function message(e: unknown): string {
  if (e instanceof ApiError) return e.message
  if (e instanceof Error) return e.message
  return String(e)
}
