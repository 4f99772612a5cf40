// The console's API types are generated from the server's OpenAPI document,
// never written by hand: this fails when src/api/schema.d.ts is stale.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startServer } from './harness.mjs'

test('src/api/schema.d.ts matches the server’s OpenAPI document', async () => {
  const server = await startServer({ setup: false })
  try {
    const doc = await (await fetch(server.base + '/api/v1/openapi.json')).text()
    const dir = mkdtempSync(join(tmpdir(), 'sy-types-'))
    writeFileSync(join(dir, 'openapi.json'), doc)
    const web = new URL('..', import.meta.url).pathname
    execFileSync(join(web, 'node_modules/.bin/openapi-typescript'), [join(dir, 'openapi.json'), '-o', join(dir, 'schema.d.ts')], { stdio: 'pipe' })
    const fresh = readFileSync(join(dir, 'schema.d.ts'), 'utf8')
    const committed = readFileSync(join(web, 'src/api/schema.d.ts'), 'utf8')
    assert.ok(fresh === committed, `web/src/api/schema.d.ts is stale: regenerate it with\n  cp ${join(dir, 'schema.d.ts')} web/src/api/schema.d.ts`)
  } finally {
    await server.stop()
  }
})
