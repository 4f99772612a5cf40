// Plugins and the tool playground: install packages from the page (upload),
// switch a plugin off and on, grant what it asks for and see its tools; run a
// tool from a form generated from its schema and from raw JSON, with the
// result and its duration; a failing call shows the server's message; secrets
// are write-only; an oversized package is refused before upload; hostile
// plugin text and tool output stay inert.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync, readFileSync, rmSync, truncateSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createServer } from 'node:http'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { startServer, openBrowser, PACKAGES } from './harness.mjs'

let server, browser
before(async () => {
  server = await startServer()
  browser = await openBrowser()
})
after(async () => {
  await browser?.close()
  await server?.stop()
})

const HOSTILE = '<img src=x onerror=alert(1)>'

/** Nothing hostile turned into markup: no injected image, no script ran. */
async function assertInert(page) {
  assert.equal(await page.locator('img[src="x"]').count(), 0, 'an <img> was injected')
  assert.equal(await page.evaluate(() => window.__pwned ?? null), null)
}

test('upload a plugin, switch it off and on, grant what another asks for, see the tools', async () => {
  const page = await browser.page(server)
  await page.goto(server.base + '/plugins')
  await page.getByTestId('plugins-empty').waitFor()
  // With nothing installed the install panel is open.
  const panel = page.getByTestId('install-panel')
  await panel.waitFor()
  await browser.check(page, 'plugins-empty')

  // Upload data: the picker reads the package's manifest before sending it.
  await page.getByTestId('package-file').setInputFiles(join(PACKAGES, 'data-0.1.0.tar.gz'))
  await page.getByTestId('package-info').filter({ hasText: 'data' }).waitFor()
  await page.getByTestId('install-submit').click()
  const result = page.getByTestId('install-result')
  await result.filter({ hasText: 'Installed data 0.1.0' }).waitFor()
  const row = page.getByTestId('plugin-row-data')
  await row.waitFor()
  assert.match(await row.getByTestId('plugin-status').innerText(), /Ready/)
  await browser.check(page, 'plugins-installed')

  // Off, then on again, from the list.
  const sw = row.getByRole('switch', { name: 'Enable data' })
  assert.equal(await sw.isChecked(), true)
  await sw.click()
  await row.getByTestId('plugin-status').filter({ hasText: 'Disabled' }).waitFor()
  assert.equal((await server.api('GET', '/plugins/data')).enabled, false)
  await sw.click()
  await row.getByTestId('plugin-status').filter({ hasText: 'Ready' }).waitFor()
  assert.equal((await server.api('GET', '/plugins/data')).enabled, true)

  // notes asks for key-value storage: installed without grants, it waits for one.
  await page.getByTestId('package-file').setInputFiles(join(PACKAGES, 'notes-0.1.0.tar.gz'))
  await page.getByTestId('package-info').filter({ hasText: 'notes' }).waitFor()
  await page.getByTestId('install-submit').click()
  await page.getByTestId('install-result').filter({ hasText: 'Installed notes' }).waitFor()
  assert.match(await page.getByTestId('install-pending').innerText(), /key-value storage/)
  await page.getByTestId('plugin-row-notes').getByTestId('plugin-status').filter({ hasText: 'Needs grants' }).waitFor()

  // A package dropped on the picker installs the same way.
  const echo = readFileSync(join(PACKAGES, 'echo-0.1.0.tar.gz')).toString('base64')
  await page.getByTestId('package-drop').evaluate((el, b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))
    const dt = new DataTransfer()
    dt.items.add(new File([bytes], 'echo-0.1.0.tar.gz', { type: 'application/gzip' }))
    el.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }))
  }, echo)
  await page.getByTestId('package-info').filter({ hasText: 'echo' }).waitFor()
  await page.getByTestId('install-submit').click()
  await page.getByTestId('install-result').filter({ hasText: 'Installed echo' }).waitFor()
  await page.getByTestId('plugin-row-echo').waitFor()

  // Its page: the capability, what a grant allows, and the grant.
  await page.getByTestId('plugin-row-notes').getByTestId('plugin-link').click()
  await page.getByTestId('plugin-name').filter({ hasText: 'notes' }).waitFor()
  await page.getByTestId('tab-capabilities').click()
  const cap = page.getByTestId('cap-kv')
  await cap.waitFor()
  assert.match(await cap.innerText(), /separate key-value space for each user/)
  assert.match(await cap.getByTestId('cap-status').innerText(), /Pending/)
  await browser.check(page, 'plugin-capabilities')
  await page.getByTestId('grant-kv').click()
  await cap.getByTestId('cap-status').filter({ hasText: 'Granted' }).waitFor()
  assert.equal((await server.api('GET', '/plugins/notes')).granted.kv, true)

  // Its tools, with their schemas behind a disclosure.
  await page.getByTestId('tab-tools').click()
  const remember = page.getByTestId('tool-remember')
  await remember.waitFor()
  await remember.getByText('Input schema').click()
  assert.match(await remember.getByTestId('tool-input-schema').locator('pre').innerText(), /"properties"/)
  await browser.check(page, 'plugin-tools')
  page.assertClean()
})

test('run a tool from the generated form and as raw JSON; see the result and its duration', async () => {
  if (!(await server.api('GET', '/plugins')).items.some((p) => p.name === 'data')) await server.installPlugin('data')
  const page = await browser.page(server)
  await page.goto(server.base + '/playground')
  await page.getByTestId('playground-empty').waitFor()
  // Search, then pick.
  await page.getByTestId('tool-search').fill('jq')
  await page.getByTestId('pick-data-json_query').click()
  await page.getByTestId('tool-title').filter({ hasText: 'data / json_query' }).waitFor()
  assert.match(page.url(), /\/playground\/data\/json_query$/)

  // The form: both fields are required.
  const form = page.getByTestId('schema-form')
  await form.getByLabel('filter').fill('.items[] | select(.price > 10) | .name')
  await form.getByLabel('input').fill('{"items": [{"name": "apple", "price": 12}, {"name": "fig", "price": 3}]}')
  await browser.check(page, 'playground-form')
  await page.getByTestId('run-tool').click()
  const res = page.getByTestId('tool-result')
  await res.getByTestId('result-status').filter({ hasText: 'ok' }).waitFor()
  const out = await res.getByTestId('block-json').innerText()
  assert.match(out, /apple/)
  assert.doesNotMatch(out, /fig/)
  assert.match(await res.getByTestId('result-duration').innerText(), /\d+(\.\d+)? (ms|s) round trip/)
  assert.match(await res.getByTestId('result-request-id').innerText(), /request \S+/)
  await browser.check(page, 'playground-result')

  // Raw JSON holds what the form holds; an edit there shows in the form.
  await page.getByTestId('mode-json').click()
  const raw = page.getByTestId('raw-args')
  const json = JSON.parse(await raw.inputValue())
  assert.equal(json.filter, '.items[] | select(.price > 10) | .name')
  assert.equal(json.input.items.length, 2)
  json.filter = '[.items[].name]'
  await raw.fill(JSON.stringify(json, null, 2))
  await page.getByTestId('run-tool').click()
  await res.getByTestId('block-json').filter({ hasText: 'fig' }).waitFor()
  await page.getByTestId('mode-form').click()
  assert.equal(await form.getByLabel('filter').inputValue(), '[.items[].name]')

  // Invalid JSON blocks the run and says why.
  await page.getByTestId('mode-json').click()
  await raw.fill('{"filter": ')
  assert.equal(await page.getByTestId('run-tool').isDisabled(), true)
  assert.match(await page.locator('#raw-args-hint').innerText(), /Not valid yet/)
  await browser.check(page, 'playground-raw')
  page.assertClean()
})

test('a failing call shows the server’s own message', async () => {
  const page = await browser.page(server)
  page.allow(/tools\/data\/json_query:call → 400/)
  page.allow(/status of 400/)
  const bad = { input: {}, filter: '.[[[' }
  const expected = await server.api('POST', '/tools/data/json_query:call', { arguments: bad }).then(
    () => assert.fail('the bad filter was accepted'),
    (e) => e.body.error,
  )
  await page.goto(server.base + '/playground/data/json_query')
  await page.getByTestId('mode-json').click()
  await page.getByTestId('raw-args').fill(JSON.stringify(bad))
  await page.getByTestId('run-tool').click()
  const err = page.getByTestId('result-error')
  await err.waitFor()
  assert.equal(await err.getByTestId('result-error-message').innerText(), expected.message)
  assert.match(await page.getByTestId('result-status').innerText(), new RegExp(expected.code))
  assert.match(await page.getByTestId('result-duration').innerText(), /round trip/)
  await browser.check(page, 'playground-error')
  page.assertClean()
})

test('images come back as images; secrets are write-only', async () => {
  await server.installPlugin('conformance')
  await server.installPlugin('hostile')
  const page = await browser.page(server)
  await page.goto(server.base + '/playground/conformance/test_image_content')
  await page.getByTestId('run-tool').click()
  const img = page.getByTestId('block-image')
  await img.waitFor()
  assert.match(await img.getAttribute('src'), /^data:image\/png;base64,[A-Za-z0-9+/=]+$/)
  assert.equal(await img.evaluate((el) => el.complete && el.naturalWidth > 0), true)

  // A secret: set from the page, never shown back.
  const SECRET = 'sekret-value-4711'
  await page.goto(server.base + '/plugins/hostile?tab=secrets')
  const box = page.getByTestId('secret-token')
  await box.waitFor()
  assert.match(await box.getByTestId('secret-state').innerText(), /No value/)
  await box.getByLabel('token').fill(SECRET)
  assert.equal(await box.getByLabel('token').getAttribute('type'), 'password')
  await box.getByTestId('secret-save-token').click()
  await box.getByTestId('secret-state').filter({ hasText: 'Value set' }).waitFor()
  assert.equal(await box.getByLabel('token').inputValue(), '')
  await page.reload()
  await page.getByTestId('secret-token').getByTestId('secret-state').filter({ hasText: 'Value set' }).waitFor()
  assert.ok(!(await page.content()).includes(SECRET), 'the secret came back')
  await browser.check(page, 'plugin-secrets')

  // Delete it, after a confirmation.
  await page.getByTestId('secret-delete-token').click()
  await page.getByRole('dialog').getByTestId('confirm-ok').click()
  await page.getByTestId('secret-token').getByTestId('secret-state').filter({ hasText: 'No value' }).waitFor()
  page.assertClean()
})

test('a package over the upload limit is refused before it is sent, naming the limit', async () => {
  const page = await browser.page(server)
  await page.goto(server.base + '/plugins?install=1')
  // A package one byte over the limit the server publishes (64 MiB by default).
  const limit = (await server.api('GET', '/limits')).plugin_upload_bytes
  const big = join(mkdtempSync(join(tmpdir(), 'sy-big-')), 'big-0.1.0.tar.gz')
  writeFileSync(big, '')
  truncateSync(big, limit + 1)
  let sent = false
  page.on('request', (r) => {
    if (r.method() === 'POST' && r.url().endsWith('/api/v1/plugins')) sent = true
  })
  await page.getByTestId('package-file').setInputFiles(big)
  const problem = page.getByTestId('package-problem')
  await problem.waitFor()
  assert.match(await problem.innerText(), /at most 64 MiB/)
  assert.equal(await page.getByTestId('install-submit').isDisabled(), true)
  // A lone .wasm is refused too: it needs its plugin.toml.
  await page.getByTestId('package-file').setInputFiles({ name: 'x.wasm', mimeType: 'application/wasm', buffer: Buffer.from([0, 97, 115, 109]) })
  await problem.filter({ hasText: 'needs its plugin.toml' }).waitFor()
  // Dropped files go through the same checks.
  await page.getByTestId('package-drop').evaluate((el) => {
    const dt = new DataTransfer()
    dt.items.add(new File(['hello'], 'notes.txt', { type: 'text/plain' }))
    el.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }))
  })
  await problem.filter({ hasText: 'is not a plugin package' }).waitFor()
  assert.equal(sent, false)
  await browser.check(page, 'plugins-too-large')
  page.assertClean()
})

test('a hostile plugin description and tool output stay text; removing asks first', async () => {
  // A package whose description is markup, with the echo component.
  const dir = mkdtempSync(join(tmpdir(), 'sy-evil-'))
  execFileSync('tar', ['xzf', join(PACKAGES, 'echo-0.1.0.tar.gz'), '-C', dir])
  const top = join(dir, 'echo')
  const manifest = readFileSync(join(top, 'plugin.toml'), 'utf8')
    .replace(/^name = .*$/m, 'name = "evil"')
    .replace(/^description = .*$/m, `description = "Echo ${HOSTILE} <script>window.__pwned = 1</script>"`)
  writeFileSync(join(top, 'plugin.toml'), manifest)
  const pkg = join(dir, 'evil.tar.gz')
  execFileSync('tar', ['czf', pkg, '-C', dir, 'echo'])

  const page = await browser.page(server)
  await page.goto(server.base + '/plugins?install=1')
  await page.getByTestId('package-file').setInputFiles(pkg)
  await page.getByTestId('package-info').filter({ hasText: 'evil' }).waitFor()
  await page.getByTestId('install-submit').click()
  const row = page.getByTestId('plugin-row-evil')
  await row.waitFor()
  assert.match(await row.getByTestId('plugin-description').innerText(), /<img src=x onerror=alert\(1\)>/)
  await assertInert(page)
  await browser.check(page, 'plugins-hostile')

  await row.getByTestId('plugin-link').click()
  await page.getByTestId('plugin-description').filter({ hasText: HOSTILE }).waitFor()
  await assertInert(page)

  // Tool output that is markup is shown as text.
  await page.goto(server.base + '/playground/evil/echo')
  await page.getByTestId('schema-form').getByLabel('text').fill(HOSTILE)
  await page.getByTestId('run-tool').click()
  await page.getByTestId('result-status').filter({ hasText: 'ok' }).waitFor()
  assert.match(await page.getByTestId('tool-result').innerText(), /<img src=x onerror=alert\(1\)>/)
  await assertInert(page)
  await browser.check(page, 'playground-hostile')

  // Remove, with a confirmation (cancel first: nothing happens).
  await page.goto(server.base + '/plugins/evil')
  await page.getByTestId('plugin-remove').click()
  const dialog = page.getByRole('dialog')
  await dialog.waitFor()
  assert.match(await dialog.innerText(), /Remove evil\?/)
  await browser.check(page, 'plugin-remove-confirm')
  await dialog.getByTestId('confirm-cancel').click()
  assert.equal((await server.api('GET', '/plugins/evil')).name, 'evil')
  await page.getByTestId('plugin-remove').click()
  await page.getByRole('dialog').getByTestId('confirm-ok').click()
  await page.getByTestId('removed-note').filter({ hasText: 'Removed evil' }).waitFor()
  assert.equal((await server.api('GET', '/plugins')).items.some((p) => p.name === 'evil'), false)
  await assertInert(page)
  page.assertClean()
  rmSync(dir, { recursive: true, force: true })
})

test('install from a URL with its sha256; a wrong checksum shows the server’s message', async () => {
  // The package, served from a local address (administrators may use those).
  const bytes = readFileSync(join(PACKAGES, 'echo-0.1.0.tar.gz'))
  const files = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': bytes.length })
    res.end(bytes)
  })
  await new Promise((r) => files.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${files.address().port}/echo-0.1.0.tar.gz`
  const sha = createHash('sha256').update(bytes).digest('hex')
  await server.api('DELETE', '/plugins/echo').catch(() => {})
  try {
    const page = await browser.page(server)
    page.allow(/from-url → 422/)
    page.allow(/status of 422/)
    await page.goto(server.base + '/plugins?install=1')
    await page.getByTestId('tab-url').click()
    await page.getByTestId('install-url').fill(url)
    await page.getByTestId('install-sha').fill('abc')
    assert.equal(await page.getByTestId('install-url-submit').isDisabled(), true)
    await page.getByTestId('install-sha').fill('0'.repeat(64))
    await page.getByTestId('install-url-submit').click()
    const err = page.getByTestId('install-panel').getByRole('alert')
    await err.waitFor()
    assert.match(await err.innerText(), /sha|checksum/i)
    await browser.check(page, 'plugins-url-error')
    await page.getByTestId('install-sha').fill(sha)
    await page.getByTestId('install-url-submit').click()
    await page.getByTestId('install-result').filter({ hasText: 'Installed echo' }).waitFor()
    await page.getByTestId('plugin-row-echo').waitFor()
    page.assertClean()
  } finally {
    files.close()
  }
})

test('a plugin’s prompts and resources are listed on its page', async () => {
  await server.installPlugin('conformance')
  const page = await browser.page(server)
  await page.goto(server.base + '/plugins/conformance?tab=prompts')
  await page.getByTestId('plugin-prompts').getByText('test_simple_prompt').waitFor()
  await page.goto(server.base + '/plugins/conformance?tab=resources')
  await page.getByTestId('plugin-resources').getByText('test://static-text').waitFor()
  await browser.check(page, 'plugin-resources')
  page.assertClean()
})
