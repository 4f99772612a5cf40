// The first-load budget: what the browser transfers (brotli, as the host
// serves it) for the chat page — index.html, the entry script and styles, the
// modules they preload, and the chat page's own chunk — must stay under
// 200 KB, and xterm.js must not be part of it. Fails the build otherwise.
import { readFileSync, existsSync } from 'node:fs'
import { brotliCompressSync } from 'node:zlib'
import { join } from 'node:path'

const BUDGET = 200 * 1024
const dist = new URL('../dist/', import.meta.url).pathname
const manifestPath = join(dist, '.vite', 'manifest.json')
if (!existsSync(manifestPath)) {
  console.error('budget: dist/.vite/manifest.json is missing (build.manifest must be on)')
  process.exit(1)
}
const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'))
const entry = Object.values(manifest).find((c) => c.isEntry)
const files = new Set(['index.html'])
const visit = (key) => {
  const chunk = manifest[key]
  if (!chunk || files.has(chunk.file)) return
  files.add(chunk.file)
  for (const css of chunk.css ?? []) files.add(css)
  for (const imp of chunk.imports ?? []) visit(imp)
}
visit(Object.keys(manifest).find((k) => manifest[k] === entry))
const chat = Object.keys(manifest).find((k) => k.endsWith('pages/chat/ChatPage.vue'))
if (chat) visit(chat)
let total = 0
const rows = []
for (const f of files) {
  const path = join(dist, f)
  const br = existsSync(`${path}.br`) ? readFileSync(`${path}.br`) : brotliCompressSync(readFileSync(path))
  total += br.length
  rows.push([f, br.length])
}
for (const [f, n] of rows) console.log(`  ${(n / 1024).toFixed(1).padStart(7)} KB  ${f}`)
console.log(`budget: chat page first load ${(total / 1024).toFixed(1)} KB of ${BUDGET / 1024} KB (brotli)`)
const xterm = [...files].filter((f) => /xterm/i.test(readFileSync(join(dist, f), 'utf8').slice(0, 200000).match(/xterm\.js|@xterm/)?.[0] ?? ''))
if (xterm.length) {
  console.error(`budget: xterm.js is in the first load (${xterm.join(', ')}): import it only on the terminal page`)
  process.exit(1)
}
if (total > BUDGET) {
  console.error('budget: over the first-load budget: split a chunk or drop a dependency')
  process.exit(1)
}
