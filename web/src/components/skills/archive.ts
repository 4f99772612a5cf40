// Skill uploads: the server takes a .tar.gz or .zip of the skill folder. A
// folder chosen in the browser (or a lone SKILL.md) is packed here into a
// .tar.gz (ustar + gzip via CompressionStream), so nobody needs a terminal.

/** Largest archive the server accepts (8 MiB). */
export const MAX_ARCHIVE = 8 * 1024 * 1024
/** Largest SKILL.md (512 KiB) and total of the other files (4 MiB), at most 65 files. */
export const MAX_SKILL_MD = 512 * 1024
export const MAX_FILES_BYTES = 4 * 1024 * 1024
export const MAX_FILES = 65

export interface Entry {
  /** Path inside the archive, `/`-separated. */
  path: string
  file: Blob
}

const enc = new TextEncoder()

function header(path: string, size: number, type: '0' | '5', mtime: number): Uint8Array {
  const h = new Uint8Array(512)
  const put = (s: string, at: number, len: number) => h.set(enc.encode(s).subarray(0, len), at)
  const oct = (n: number, len: number) => n.toString(8).padStart(len - 1, '0') + '\0'
  let name = path
  let prefix = ''
  if (enc.encode(name).length > 100) {
    const cut = path.lastIndexOf('/', 154)
    if (cut <= 0 || enc.encode(path.slice(cut + 1)).length > 100) throw new Error(`the path “${path}” is too long for an archive`)
    prefix = path.slice(0, cut)
    name = path.slice(cut + 1)
  }
  put(name, 0, 100)
  put(oct(type === '5' ? 0o755 : 0o644, 8), 100, 8)
  put(oct(0, 8), 108, 8)
  put(oct(0, 8), 116, 8)
  put(oct(size, 12), 124, 12)
  put(oct(Math.floor(mtime / 1000), 12), 136, 12)
  h.fill(32, 148, 156)
  h[156] = type.charCodeAt(0)
  put('ustar\0', 257, 6)
  put('00', 263, 2)
  put(prefix, 345, 155)
  let sum = 0
  for (const b of h) sum += b
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8)
  return h
}

/** A .tar.gz of the entries (folders are added for every parent path). */
export async function tarGz(entries: Entry[]): Promise<Blob> {
  const parts: BlobPart[] = []
  const dirs = new Set<string>()
  const now = Date.now()
  for (const e of entries) {
    const segs = e.path.split('/')
    for (let i = 1; i < segs.length; i++) {
      const d = `${segs.slice(0, i).join('/')}/`
      if (!dirs.has(d)) {
        dirs.add(d)
        parts.push(header(d, 0, '5', now) as BlobPart)
      }
    }
    parts.push(header(e.path, e.file.size, '0', now) as BlobPart, e.file)
    const pad = (512 - (e.file.size % 512)) % 512
    if (pad) parts.push(new Uint8Array(pad) as BlobPart)
  }
  parts.push(new Uint8Array(1024) as BlobPart)
  const tar = new Blob(parts)
  const gz = tar.stream().pipeThrough(new CompressionStream('gzip'))
  return new Response(gz).blob()
}

/** What the user picked, ready to send; or why it cannot be. */
export type Prepared = { ok: true; body: Blob; contentType: string; label: string; files: number } | { ok: false; reason: string }

const isArchiveName = (n: string) => /\.(tar\.gz|tgz|zip)$/i.test(n)

/** Check and pack the picked files: one archive as is, a folder's files or one SKILL.md packed. */
export async function prepare(files: { file: File; path: string }[]): Promise<Prepared> {
  if (!files.length) return { ok: false, reason: 'Nothing was chosen.' }
  if (files.length === 1 && isArchiveName(files[0]!.file.name)) {
    const f = files[0]!.file
    if (f.size > MAX_ARCHIVE) return { ok: false, reason: `This archive is ${(f.size / 1048576).toFixed(1)} MiB; a skill archive is at most 8 MiB.` }
    return { ok: true, body: f, contentType: /\.zip$/i.test(f.name) ? 'application/zip' : 'application/gzip', label: f.name, files: 1 }
  }
  if (files.some((f) => isArchiveName(f.file.name) && files.length > 1))
    return { ok: false, reason: 'Choose one archive on its own, or the files of one skill folder.' }
  // A folder: strip its top-level name only when every file shares it, keep the rest.
  const paths = files.map((f) => f.path.replace(/^\/+/, ''))
  const md = paths.findIndex((p) => /^([^/]+\/)?skill\.md$/i.test(p))
  if (md < 0) return { ok: false, reason: 'A skill needs a SKILL.md at the top of its folder.' }
  if (files.length > MAX_FILES + 1) return { ok: false, reason: `A skill has at most ${MAX_FILES} files besides SKILL.md; this has ${files.length - 1}.` }
  if (files[md]!.file.size > MAX_SKILL_MD) return { ok: false, reason: 'SKILL.md is over 512 KiB.' }
  const others = files.reduce((n, f, i) => (i === md ? n : n + f.file.size), 0)
  if (others > MAX_FILES_BYTES) return { ok: false, reason: `The files besides SKILL.md add up to ${(others / 1048576).toFixed(1)} MiB; at most 4 MiB.` }
  try {
    const body = await tarGz(files.map((f, i) => ({ path: paths[i]!, file: f.file })))
    if (body.size > MAX_ARCHIVE) return { ok: false, reason: 'Packed, this skill is over 8 MiB.' }
    const top = paths[md]!.includes('/') ? paths[md]!.split('/')[0] : ''
    return { ok: true, body, contentType: 'application/gzip', label: top ? `folder ${top}` : files.length === 1 ? files[0]!.file.name : `${files.length} files`, files: files.length }
  } catch (e) {
    return { ok: false, reason: `It could not be packed: ${(e as Error).message}` }
  }
}

/** The files under a dropped folder (DataTransfer entries), with their paths. */
export async function fromDrop(dt: DataTransfer): Promise<{ file: File; path: string }[]> {
  const items = [...dt.items].map((i) => i.webkitGetAsEntry?.()).filter((e): e is FileSystemEntry => !!e)
  if (!items.length) return [...dt.files].map((f) => ({ file: f, path: f.name }))
  const out: { file: File; path: string }[] = []
  const walk = async (e: FileSystemEntry, prefix: string): Promise<void> => {
    if (out.length > 500) return
    if (e.isFile) {
      const file = await new Promise<File>((res, rej) => (e as FileSystemFileEntry).file(res, rej))
      out.push({ file, path: prefix + e.name })
    } else if (e.isDirectory) {
      const reader = (e as FileSystemDirectoryEntry).createReader()
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej))
        if (!batch.length) break
        for (const c of batch) await walk(c, `${prefix}${e.name}/`)
      }
    }
  }
  for (const e of items) await walk(e, '')
  return out
}
