// Sandboxes: create one from the list page, use its terminal, move files in
// and out byte for byte, refuse an oversized upload before sending anything,
// show hostile file names as text, delete it. Needs the Docker engine and the
// sandbox image (the harness server prints whether sandboxes can start).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync, closeSync, openSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startServer, openBrowser } from './harness.mjs'

let server, browser, dir
before(async () => {
  server = await startServer()
  browser = await openBrowser()
  dir = mkdtempSync(join(tmpdir(), 'sy-e2e-sandboxes-'))
})
after(async () => {
  await browser?.close()
  await server?.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const HOSTILE = '<img src=x onerror=alert(1)>.txt'

/** The terminal's screen as lines of text. */
const screenLines = (page) => page.locator('[data-testid="terminal-screen"] .xterm-rows > div').allInnerTexts()

test('create a sandbox, use its terminal and files, delete it', async () => {
  const page = await browser.page(server)
  const scripts = []
  page.on('request', (r) => {
    if (r.resourceType() === 'script') scripts.push(r.url())
  })

  // The list: empty at first, with an explanation.
  await page.goto(server.base + '/sandboxes')
  await page.getByTestId('sandboxes-empty').waitFor()
  await page.getByText('A sandbox is a small Linux machine of your own').waitFor()
  await browser.check(page, 'sandboxes-empty')
  assert.ok(!scripts.some((u) => /xterm/i.test(u)), `xterm.js is not loaded by the list page: ${scripts.join(', ')}`)

  // Create one with a limit set.
  await page.getByTestId('new-sandbox').click()
  const form = page.getByTestId('create-form')
  await form.waitFor()
  await browser.check(page, 'sandboxes-create')
  await page.getByLabel('Name (optional)').fill('e2e-box')
  await page.getByLabel('Memory (MiB)').fill('256')
  await page.getByTestId('create-submit').click()
  await page.waitForURL(/\/sandboxes\/[^/?]+$/, { timeout: 60_000 })
  const id = decodeURIComponent(new URL(page.url()).pathname.split('/').pop())
  await page.getByTestId('sandbox-name').getByText('e2e-box').waitFor()
  const created = await server.api('GET', `/sandboxes/${id}`)
  assert.equal(created.limits.memory_mb, 256)

  // The terminal: connect, type, see the output.
  await page.getByTestId('terminal-state').getByText('Connected').waitFor({ timeout: 30_000 })
  await page.getByTestId('terminal-screen').click()
  await page.keyboard.type('echo hi\n')
  await page.waitForFunction(
    () => [...document.querySelectorAll('[data-testid="terminal-screen"] .xterm-rows > div')].some((d) => d.textContent.trim() === 'hi'),
    null,
    { timeout: 15_000 },
  )
  assert.ok((await screenLines(page)).some((l) => l.trim() === 'hi'))
  assert.equal(await page.locator('[data-testid="terminal"] style').count(), 0, 'xterm left no <style> element (the CSP forbids them)')
  // Live resource use shows up for the running sandbox.
  await page.getByTestId('use-memory').waitFor({ timeout: 15_000 })
  await browser.check(page, 'sandbox-terminal')

  // Files: upload (file input), see it listed, download it back byte for byte.
  await page.getByTestId('tab-files').click()
  await page.getByTestId('files-table').or(page.getByTestId('files-empty')).waitFor()
  const bytes = Buffer.alloc(70_000)
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 131 + (i >> 8)) & 0xff
  const local = join(dir, 'data.bin')
  writeFileSync(local, bytes)
  await page.getByTestId('upload-input').setInputFiles(local)
  await page.getByTestId('upload-item').filter({ hasText: 'Saved as /workspace/data.bin' }).waitFor({ timeout: 30_000 })
  const row = page.getByTestId('file-row').filter({ hasText: 'data.bin' })
  await row.waitFor()
  const downloading = page.waitForEvent('download')
  await row.getByTestId('download').click()
  const download = await downloading
  assert.equal(download.suggestedFilename(), 'data.bin')
  const back = readFileSync(await download.path())
  assert.equal(back.length, bytes.length)
  assert.ok(back.equals(bytes), 'the downloaded bytes are the uploaded ones')

  // An oversized file is refused before any request, with the limit named.
  const big = join(dir, 'too-big.bin')
  closeSync(openSync(big, 'w'))
  truncateSync(big, 256 * 1024 * 1024 + 1) // sparse: takes no disk
  const puts = []
  const onRequest = (r) => {
    if (r.method() === 'PUT') puts.push(r.url())
  }
  page.on('request', onRequest)
  await page.getByTestId('upload-input').setInputFiles(big)
  const refused = page.getByTestId('upload-item').filter({ hasText: 'too-big.bin' })
  await refused.waitFor()
  assert.equal(await refused.getAttribute('data-state'), 'refused')
  assert.match(await refused.getByTestId('upload-message').innerText(), /at most 256 MiB/)
  await page.waitForTimeout(300)
  page.off('request', onRequest)
  assert.deepEqual(puts, [], 'no upload request was sent')

  // A hostile file name is shown as text.
  await server.api('POST', `/sandboxes/${id}/exec`, { argv: ['sh', '-c', 'printf x > "$1"', 'sh', HOSTILE] })
  await page.getByTestId('files-refresh').click()
  const hostile = page.getByTestId('file-row').filter({ hasText: HOSTILE })
  await hostile.waitFor()
  assert.equal(await hostile.getByTestId('file-name').innerText(), HOSTILE)
  assert.equal(await page.locator('[data-testid="files"] img').count(), 0, 'no element was injected')
  assert.equal(await page.locator('img[src="x"]').count(), 0)
  // /workspace/output is listed first, as results.
  assert.match(await page.getByTestId('file-row').first().innerText(), /output\/\s*results/)
  await browser.check(page, 'sandbox-files')

  // The list shows it with its limits and live use.
  await page.goto(server.base + '/sandboxes')
  const listed = page.getByTestId('sandbox-row').filter({ hasText: 'e2e-box' })
  await listed.waitFor()
  await listed.getByText('256 MiB').first().waitFor()
  await listed.getByTestId('use-memory').waitFor({ timeout: 15_000 })
  await browser.check(page, 'sandboxes-list')

  // Delete, after confirming.
  await listed.getByTestId('delete').click()
  const dialog = page.getByTestId('confirm-dialog')
  await dialog.getByText('This cannot be undone').waitFor()
  await dialog.getByTestId('confirm-ok').click()
  await page.getByTestId('notice').getByText('Deleted “e2e-box”').waitFor()
  await page.getByTestId('sandboxes-empty').waitFor()
  const left = await server.api('GET', '/sandboxes')
  assert.equal(left.items.length, 0)
  page.assertClean()
})

test('the terminal says when its shell ends and reconnects', async () => {
  const sb = await server.api('POST', '/sandboxes', { name: 'e2e-term' })
  try {
    const page = await browser.page(server)
    await page.goto(`${server.base}/sandboxes/${sb.id}`)
    await page.getByTestId('terminal-state').getByText('Connected').waitFor({ timeout: 30_000 })
    await page.getByTestId('terminal-screen').click()
    await page.keyboard.type('exit\n')
    await page.getByTestId('terminal-ended').getByText('The shell ended').waitFor({ timeout: 15_000 })
    await page.getByTestId('terminal-reconnect').click()
    await page.getByTestId('terminal-state').getByText('Connected').waitFor({ timeout: 30_000 })
    await page.getByTestId('terminal-screen').click()
    await page.keyboard.type('echo again-$((40+2))\n')
    await page.waitForFunction(
      () => [...document.querySelectorAll('[data-testid="terminal-screen"] .xterm-rows > div')].some((d) => d.textContent.trim() === 'again-42'),
      null,
      { timeout: 15_000 },
    )
    page.assertClean()
  } finally {
    await server.api('DELETE', `/sandboxes/${sb.id}`).catch(() => {})
  }
})

test('without a container engine the page says so and what to do', async () => {
  const down = await startServer({ config: '[sandbox]\ndocker_socket = "/nonexistent/docker.sock"\nwarm_pool = 0\n' })
  try {
    const page = await browser.page(down)
    page.allow(/→ 503|status of 503/)
    await page.goto(down.base + '/sandboxes')
    await page.getByTestId('sandboxes-empty').waitFor()
    await page.getByTestId('new-sandbox').click()
    await page.getByTestId('create-submit').click()
    await page.getByTestId('engine-down').or(page.getByTestId('create-form').getByRole('alert')).first().waitFor()
    const alert = page.getByTestId('create-form').getByRole('alert')
    await alert.waitFor()
    assert.match(await alert.innerText(), /Docker engine/)
    await browser.check(page, 'sandboxes-engine-down')
    page.assertClean()
  } finally {
    await down.stop()
  }
})
