// Builds the console into dist/ (embedded in the host binary by rust-embed).
// Every emitted file over 1 KiB also gets .gz and .br siblings, so the host
// serves precompressed bytes without compressing at request time.
import { defineConfig, type Plugin } from 'vite'
import vue from '@vitejs/plugin-vue'
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

function precompress(): Plugin {
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => {
      const path = join(dir, name)
      return statSync(path).isDirectory() ? walk(path) : [path]
    })
  return {
    name: 'switchyard-precompress',
    apply: 'build',
    closeBundle() {
      for (const file of walk('dist')) {
        if (/\.(gz|br)$/.test(file) || statSync(file).size < 1024) continue
        const bytes = readFileSync(file)
        writeFileSync(`${file}.gz`, gzipSync(bytes, { level: 9 }))
        writeFileSync(
          `${file}.br`,
          brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }),
        )
      }
    },
  }
}

export default defineConfig({
  plugins: [vue(), precompress()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    modulePreload: { polyfill: false },
    cssCodeSplit: true,
    sourcemap: false,
    manifest: true,
  },
  server: {
    proxy: {
      '/api': { target: process.env.SWITCHYARD_URL ?? 'http://127.0.0.1:7700', ws: true },
      '/mcp': process.env.SWITCHYARD_URL ?? 'http://127.0.0.1:7700',
      '/metrics': process.env.SWITCHYARD_URL ?? 'http://127.0.0.1:7700',
    },
  },
})
