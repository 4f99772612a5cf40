// Just enough JSON Schema to build a form: local `$ref`s resolved, nullable
// unions unwrapped, each property sorted into one kind of input, and the
// defaults a new form starts with. Anything richer is edited as JSON.
import type { JsonSchema } from './types'

export type Kind = 'string' | 'number' | 'integer' | 'boolean' | 'enum' | 'array' | 'object' | 'json'

/** A deep copy of JSON data (also of Vue's reactive proxies, which structuredClone refuses). */
export const clone = <T>(v: T): T => (v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T))

const isObj = (v: unknown): v is JsonSchema => typeof v === 'object' && v !== null && !Array.isArray(v)

function pointer(root: JsonSchema, ref: string): JsonSchema | undefined {
  if (!ref.startsWith('#')) return undefined
  let at: unknown = root
  for (const raw of ref.slice(1).split('/').filter(Boolean)) {
    const part = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~')
    if (!isObj(at)) return undefined
    at = at[part]
  }
  return isObj(at) ? at : undefined
}

/** `s` with local `$ref`s followed, single-entry `allOf` merged and `X | null` unions unwrapped. */
export function resolve(s: unknown, root: JsonSchema, depth = 0): JsonSchema & { nullable?: boolean } {
  if (!isObj(s)) return {}
  if (depth > 16) return s
  let out: JsonSchema & { nullable?: boolean } = { ...s }
  if (typeof out.$ref === 'string') {
    const target = pointer(root, out.$ref)
    const { $ref: _ref, ...rest } = out
    void _ref
    out = target ? { ...resolve(target, root, depth + 1), ...rest } : rest
  }
  if (Array.isArray(out.allOf) && out.allOf.length === 1) {
    const { allOf, ...rest } = out
    out = { ...resolve(allOf[0], root, depth + 1), ...rest }
  }
  for (const key of ['anyOf', 'oneOf'] as const) {
    const list = out[key]
    if (!Array.isArray(list)) continue
    const nonNull = list.filter((x) => !(isObj(x) && x.type === 'null'))
    if (nonNull.length === 1 && nonNull.length < list.length) {
      const { [key]: _drop, ...rest } = out
      void _drop
      out = { ...resolve(nonNull[0], root, depth + 1), ...rest, nullable: true }
    }
  }
  if (Array.isArray(out.type)) {
    const types = (out.type as unknown[]).filter((t) => t !== 'null')
    if (types.length < (out.type as unknown[]).length) out.nullable = true
    if (types.length === 1) out.type = types[0]
  }
  return out
}

/** The kind of input for a resolved schema. */
export function kindOf(s: JsonSchema): Kind {
  if (Array.isArray(s.enum) && s.enum.length) return 'enum'
  if ('const' in s) return 'enum'
  const t = s.type
  if (t === 'string' || t === 'number' || t === 'integer' || t === 'boolean') return t
  if (t === 'array' || (t === undefined && 'items' in s)) return isObj(s.items) ? 'array' : 'json'
  if (t === 'object' || (t === undefined && isObj(s.properties))) return isObj(s.properties) && Object.keys(s.properties).length ? 'object' : 'json'
  return 'json'
}

/** The choices of an enum (or const) schema. */
export function choices(s: JsonSchema): unknown[] {
  if (Array.isArray(s.enum)) return s.enum
  if ('const' in s) return [s.const]
  return []
}

/** The properties of an object schema, required ones first, then in order. */
export function properties(s: JsonSchema): { name: string; schema: unknown; required: boolean }[] {
  const props = isObj(s.properties) ? s.properties : {}
  const req = new Set(Array.isArray(s.required) ? (s.required as string[]) : [])
  const list = Object.entries(props).map(([name, schema]) => ({ name, schema, required: req.has(name) }))
  return [...list.filter((p) => p.required), ...list.filter((p) => !p.required)]
}

/** The value a new form starts with: every default, and required objects filled in. */
export function initial(s: unknown, root: JsonSchema, depth = 0): unknown {
  const r = resolve(s, root)
  if ('default' in r && r.default !== null) return clone(r.default)
  if (depth > 8 || kindOf(r) !== 'object') return undefined
  const out: Record<string, unknown> = {}
  for (const p of properties(r)) {
    const pr = resolve(p.schema, root)
    if ('default' in pr && pr.default !== null) out[p.name] = clone(pr.default)
    else if (p.required && kindOf(pr) === 'object') out[p.name] = initial(pr, root, depth + 1)
  }
  return out
}

/** Keys of `value` the object schema does not declare (the form cannot show them). */
export function undeclared(s: JsonSchema, value: unknown): string[] {
  if (!isObj(value)) return []
  const props = isObj(s.properties) ? s.properties : {}
  return Object.keys(value).filter((k) => !(k in props))
}

/** Whether a string property reads better as several lines (long text by its name or size). */
export function multiline(name: string, s: JsonSchema): boolean {
  if (typeof s.format === 'string') return false
  if (typeof s.maxLength === 'number') return s.maxLength > 200
  return /(^|_)(text|body|content|contents|input|prompt|message|description|query|filter|data|old|new|replacement|code|script|source|html|markdown|md|json|yaml|csv|template|diff|patch|document|note|notes|instructions|system|summary|comment|payload)s?$/i.test(name)
}

/** The HTML input type for a string format. */
export function inputType(s: JsonSchema): string {
  switch (s.format) {
    case 'uri':
    case 'url':
      return 'url'
    case 'email':
      return 'email'
    case 'date':
      return 'date'
    case 'time':
      return 'time'
    default:
      return 'text'
  }
}

/** A readable value for hints ("Default: 3"). */
export function show(v: unknown): string {
  if (typeof v === 'string') return v === '' ? '""' : v
  return JSON.stringify(v)
}
