// Plugin packages before they are sent: which files make an install (one
// .tar.gz, or plugin.toml + a .wasm component), whether they fit the server's
// upload limit, and what the package says it is (name and version read from
// plugin.toml inside the archive, so an upgrade of the wrong plugin is caught
// before it is sent).
import { ApiError, api, seg } from '../../api/client'
import type { Schemas } from '../../api/client'
import { limits } from '../../api/limits'

/** The server's plugin upload limit (`GET /limits`, read at sign-in). */
export function uploadLimit(): number {
  return limits.plugin_upload_bytes
}

/** Take the limit a 413 answer names ("larger than N MiB") if it is lower. */
export function learnLimit(e: unknown): void {
  if (!(e instanceof ApiError) || e.status !== 413) return
  const m = e.message.match(/(\d+)\s*MiB/)
  if (m) limits.plugin_upload_bytes = Math.min(limits.plugin_upload_bytes, Number(m[1]) * 1024 * 1024)
}

/** What the picked files amount to. */
export type Picked =
  | { kind: 'archive'; file: File; size: number }
  | { kind: 'parts'; manifest: File; component: File; size: number }
  | { kind: 'invalid'; reason: string }

const isArchive = (f: File) => /\.(tar\.gz|tgz)$/i.test(f.name) || f.type === 'application/gzip' || f.type === 'application/x-gzip'
const isWasm = (f: File) => /\.wasm$/i.test(f.name) || f.type === 'application/wasm'
const isManifest = (f: File) => /\.toml$/i.test(f.name)

/** Sort the picked files into an install, or say what is wrong. */
export function pick(files: File[]): Picked {
  if (!files.length) return { kind: 'invalid', reason: 'No file was chosen.' }
  const archives = files.filter(isArchive)
  const wasm = files.filter(isWasm)
  const toml = files.filter(isManifest)
  if (archives.length === 1 && files.length === 1) return { kind: 'archive', file: archives[0]!, size: archives[0]!.size }
  if (wasm.length === 1 && toml.length === 1 && files.length === 2)
    return { kind: 'parts', manifest: toml[0]!, component: wasm[0]!, size: toml[0]!.size + wasm[0]!.size }
  if (wasm.length === 1 && files.length === 1)
    return { kind: 'invalid', reason: 'A .wasm component needs its plugin.toml: choose both files together, or a .tar.gz package.' }
  if (toml.length === 1 && files.length === 1)
    return { kind: 'invalid', reason: 'plugin.toml needs its .wasm component: choose both files together, or a .tar.gz package.' }
  if (files.length > 1)
    return { kind: 'invalid', reason: 'Choose one .tar.gz package, or exactly two files: plugin.toml and its .wasm component.' }
  return { kind: 'invalid', reason: `“${files[0]!.name}” is not a plugin package: choose a .tar.gz package, or plugin.toml with its .wasm component.` }
}

/** "80 MiB" style size. */
export function mib(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(n < 10 * 1024 * 1024 ? 1 : 0)} MiB` : `${Math.max(1, Math.round(n / 1024))} KiB`
}

/** The refusal for files over the limit, naming it; empty when they fit. */
export function tooLarge(p: Picked): string {
  if (p.kind === 'invalid') return ''
  const limit = uploadLimit()
  if (p.size <= limit) return ''
  return `This package is ${mib(p.size)}: the server accepts uploads of at most ${mib(limit)} (its SWITCHYARD_MAX_UPLOAD_MB setting). Ask an administrator to raise it, or install from a URL on the server's side.`
}

/** Name, version and description from plugin.toml text (top-level keys only). */
export function readManifest(text: string): { name?: string; version?: string; description?: string } {
  const out: Record<string, string> = {}
  for (const line of text.split(/\r?\n/)) {
    if (/^\s*\[/.test(line)) break
    const m = line.match(/^\s*(name|version|description)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)')/)
    if (m) out[m[1]!] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] ?? '')
  }
  return out
}

async function gunzip(file: Blob, cap: number): Promise<Uint8Array> {
  const stream = file.stream().pipeThrough(new DecompressionStream('gzip'))
  const reader = stream.getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    chunks.push(value)
    total += value.length
    if (total > cap) {
      await reader.cancel()
      break
    }
  }
  const out = new Uint8Array(total)
  let at = 0
  for (const c of chunks) {
    out.set(c, at)
    at += c.length
  }
  return out
}

/** The plugin.toml of a .tar.gz package, read in the browser; null when unreadable. */
export async function inspect(p: Picked): Promise<{ name?: string; version?: string; description?: string } | null> {
  try {
    if (p.kind === 'parts') return readManifest(await p.manifest.text())
    if (p.kind !== 'archive' || typeof DecompressionStream === 'undefined') return null
    const tar = await gunzip(p.file, 512 * 1024 * 1024)
    const dec = new TextDecoder()
    let best: { depth: number; text: string } | null = null
    for (let at = 0; at + 512 <= tar.length; ) {
      const h = tar.subarray(at, at + 512)
      if (h.every((b) => b === 0)) break
      const str = (from: number, len: number) => dec.decode(h.subarray(from, from + len)).replace(/\0.*$/s, '')
      const name = (str(345, 155) ? `${str(345, 155)}/` : '') + str(0, 100)
      const size = parseInt(str(124, 12).trim() || '0', 8) || 0
      const type = String.fromCharCode(h[156] ?? 48)
      const path = name.replace(/^\.\//, '')
      if ((type === '0' || type === '\0') && /(^|\/)plugin\.toml$/.test(path) && size <= 64 * 1024) {
        const depth = path.split('/').length
        if (!best || depth < best.depth) best = { depth, text: dec.decode(tar.subarray(at + 512, at + 512 + size)) }
      }
      at += 512 + Math.ceil(size / 512) * 512
    }
    return best ? readManifest(best.text) : null
  } catch {
    return null
  }
}

/** What an install answers: done (201/200), or still compiling (202). */
export type Answer = Schemas['InstallResult'] | Schemas['InstallStatus']

/** Send the package: the archive as application/gzip, or a multipart form. */
export function install(p: Exclude<Picked, { kind: 'invalid' }>, grant: boolean): Promise<Answer> {
  const q = grant ? '?grant=true' : ''
  if (p.kind === 'archive') return api<Answer>('POST', `/plugins${q}`, { raw: p.file, contentType: 'application/gzip' })
  const form = new FormData()
  form.append('manifest', p.manifest, p.manifest.name)
  form.append('component', p.component, p.component.name)
  return api<Answer>('POST', `/plugins${q}`, { raw: form })
}

/** Follow an install that answered 202 until its tools are there (or it failed). */
export async function settle(answer: Answer, progress: (s: Schemas['InstallStatus']) => void): Promise<Schemas['InstallResult']> {
  if ('plugin' in answer) return answer
  let status = answer
  while (status.state === 'compiling') {
    progress(status)
    await new Promise((r) => setTimeout(r, 1000))
    status = await api<Schemas['InstallStatus']>('GET', `/plugins/${seg(status.name)}/install`)
  }
  if (status.state === 'failed') throw new Error(status.error ?? 'the install failed')
  return { plugin: await api<Schemas['PluginDetail']>('GET', `/plugins/${seg(status.name)}`) }
}

/** The detail page of plugin `name`. */
export const pluginPath = (name: string) => `/plugins/${seg(name)}`
