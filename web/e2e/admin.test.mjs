// Administration in a real browser: an admin adds a user who then sees only
// their own things; sandbox limits, disabling and deleting from the Users
// page; an API token shown once and revoked; the audit log with filters,
// "Load more" and details; the System page's health and metrics; the Connect
// page's token, snippets and live MCP check. Names that look like HTML stay
// text everywhere.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startServer, openBrowser } from './harness.mjs'

const HOSTILE = '<img src=x onerror=alert(1)>'

let server
let browser
before(async () => {
  server = await startServer()
  browser = await openBrowser()
})
after(async () => {
  await browser?.close()
  await server?.stop()
})

/** Nothing from a hostile name became an element. */
async function assertInert(page) {
  assert.equal(await page.locator('img[src="x"]').count(), 0, 'no <img> was injected')
  assert.equal(await page.evaluate(() => document.querySelectorAll('[onerror]').length), 0, 'no onerror attribute exists')
}

test('an admin adds a user from the Users page; that user sees only their own sessions', async () => {
  const page = await browser.page(server)
  await page.goto(server.base + '/admin/users')
  await page.getByTestId('user-row').filter({ hasText: 'admin' }).waitFor()
  await page.getByTestId('user-new').click()
  const form = page.getByTestId('user-form')
  await form.getByLabel('Username').fill('carol')
  await form.getByLabel('Password').fill('carol-password-1')
  await form.getByLabel('Role').selectOption('user')
  await browser.check(page, 'admin-users-create')
  await page.getByTestId('user-create').click()
  await page.getByTestId('user-created').waitFor()
  assert.match(await page.getByTestId('user-created').innerText(), /^carol can sign in now/)
  const row = page.locator('[data-testid="user-row"][data-username="carol"]')
  await row.waitFor()
  assert.equal(await row.getByTestId('user-role-badge').innerText(), 'user')
  assert.equal(await row.getByTestId('user-status').innerText(), 'active')
  await browser.check(page, 'admin-users')
  page.assertClean()

  // The admin has a session the new user must never see.
  const secret = await server.api('POST', '/sessions', { title: 'admin secret' })

  const carol = { username: 'carol', password: 'carol-password-1' }
  const login = await server.login(carol.username, carol.password)
  await server.api('POST', '/sessions', { title: 'carol notes' }, login.access_token)
  const cpage = await browser.page(server, carol)
  await cpage.goto(server.base + '/chat')
  await cpage.getByTestId('whoami').getByText('carol').waitFor()
  await cpage.getByTestId('session-list').getByText('carol notes').waitFor()
  assert.equal(await cpage.getByTestId('session-list').getByText('admin secret').count(), 0)
  assert.equal(await cpage.getByRole('link', { name: 'Users' }).count(), 0, 'no admin navigation for a user')
  await cpage.goto(server.base + '/admin/users')
  await cpage.waitForURL(/\/chat/)
  cpage.assertClean()
  await assert.rejects(server.api('GET', `/sessions/${secret.id}`, undefined, login.access_token), (e) => [403, 404].includes(e.status))
})

test('sandbox limits, disabling and deleting a user from the Users page', async () => {
  const dave = await server.user('dave')
  const page = await browser.page(server)
  await page.goto(server.base + '/admin/users')
  const row = page.locator('[data-testid="user-row"][data-username="dave"]')
  await row.getByTestId('user-edit').click()
  const editor = page.getByTestId('user-editor')
  await editor.getByTestId('user-limits-form').waitFor()
  await editor.getByLabel('Live sandboxes at once').fill('2')
  await editor.getByLabel('Memory per sandbox (MiB)').fill('256')
  await editor.getByTestId('user-limits-save').click()
  await editor.getByTestId('user-limits-done').waitFor()
  await browser.check(page, 'admin-user-editor')
  const limits = await server.api('GET', `/users/${dave.id}/sandbox-limits`)
  assert.equal(limits.quota, 2)
  assert.equal(limits.max.memory_mb, 256)

  // Promote and demote again from the panel.
  await editor.getByTestId('user-role-admin').check()
  await editor.getByTestId('user-role-save').click()
  await editor.getByText('dave is now an administrator.').waitFor()
  assert.equal((await server.api('GET', `/users/${dave.id}`)).role, 'admin')
  await editor.getByTestId('user-role-user').check()
  await editor.getByTestId('user-role-save').click()
  await editor.getByText('dave is now a user.').waitFor()
  await editor.getByTestId('user-editor-close').click()
  assert.equal(await row.getByTestId('user-role-badge').innerText(), 'user')

  // Disable (confirmed first): dave can no longer sign in; enable again.
  await row.getByTestId('user-disable').click()
  const dialog = page.getByTestId('confirm-dialog')
  await dialog.getByText('signed out everywhere').waitFor()
  await browser.check(page, 'admin-user-disable-confirm')
  await dialog.getByTestId('confirm-ok').click()
  await row.getByTestId('user-status').getByText('disabled').waitFor()
  await assert.rejects(server.login('dave', dave.password), (e) => e.status === 401 || e.status === 403)
  await row.getByTestId('user-enable').click()
  await row.getByTestId('user-status').getByText('active').waitFor()
  await server.login('dave', dave.password)

  // Delete: cancel first, then for real.
  await row.getByTestId('user-delete').click()
  await dialog.getByTestId('confirm-cancel').click()
  assert.equal(await row.count(), 1)
  await row.getByTestId('user-delete').click()
  await dialog.getByTestId('confirm-ok').click()
  await row.waitFor({ state: 'detached' })
  await assert.rejects(server.api('GET', `/users/${dave.id}`), (e) => e.status === 404)
  page.assertClean()
})

test('an API token is shown once, works, and is revoked; its HTML-like name stays text', async () => {
  const page = await browser.page(server)
  await page.goto(server.base + '/tokens')
  await page.getByTestId('token-new').click()
  await page.getByTestId('token-name').fill(HOSTILE)
  await page.getByTestId('scope-read').check()
  await page.getByTestId('token-expiry').selectOption('30')
  await browser.check(page, 'tokens-form')
  await page.getByTestId('token-create').click()
  const reveal = page.getByTestId('token-reveal')
  await reveal.getByText('it will not be shown again').waitFor()
  const value = await page.getByTestId('token-value').inputValue()
  assert.match(value, /^sy_/)
  await browser.check(page, 'tokens-created')
  const me = await server.api('GET', '/auth/me', undefined, value)
  assert.equal(me.via, 'api_token')

  const row = page.getByTestId('token-row').filter({ hasText: HOSTILE })
  await row.waitFor()
  assert.equal(await row.locator('.token-name').innerText(), HOSTILE)
  assert.equal(await row.getByText('read', { exact: true }).count(), 1)
  await assertInert(page)

  // Gone after a reload: only the prefix is listed.
  await page.reload()
  await row.waitFor()
  assert.equal(await page.getByTestId('token-reveal').count(), 0)
  assert.ok(!(await page.content()).includes(value), 'the value is not in the page any more')

  // Revoke, confirmed first.
  await row.getByTestId('token-revoke').click()
  const dialog = page.getByTestId('confirm-dialog')
  await dialog.getByText(HOSTILE).waitFor()
  await dialog.getByTestId('confirm-ok').click()
  await row.waitFor({ state: 'detached' })
  await page.getByTestId('token-notice').getByText('revoked').waitFor()
  await assert.rejects(server.api('GET', '/auth/me', undefined, value), (e) => e.status === 401)
  await assertInert(page)
  page.assertClean()
})

test('the audit log lists the user creation, filters, loads more and expands details', async () => {
  // Enough token entries for a second page.
  for (let i = 0; i < 55; i++) {
    const t = await server.api('POST', '/tokens', { name: i === 54 ? HOSTILE : `bulk ${i}` })
    await server.api('DELETE', `/tokens/${t.token.id}`)
  }
  const page = await browser.page(server)
  await page.goto(server.base + '/admin/audit')
  await page.getByTestId('audit-list').waitFor()
  await browser.check(page, 'audit')

  // Filter to user changes: carol's creation is there.
  await page.getByTestId('audit-action').fill('user.')
  await page.getByTestId('audit-apply').click()
  await page.waitForURL(/action=user\./)
  const created = page.locator('[data-testid="audit-row"][data-action="user.create"]').filter({ hasText: 'user:carol' })
  await created.waitFor()
  for (const a of await page.getByTestId('audit-row').evaluateAll((rows) => rows.map((r) => r.dataset.action))) {
    assert.ok(a.startsWith('user.'), `${a} is a user action`)
  }
  await created.getByTestId('audit-toggle').click()
  const detail = page.getByTestId('audit-detail').first()
  assert.match(await detail.getByTestId('audit-details-json').innerText(), /"role": "user"/)
  assert.equal(await created.getByTestId('audit-toggle').getAttribute('aria-expanded'), 'true')
  await browser.check(page, 'audit-filtered')

  // The filter survives a reload; Clear brings everything back.
  await page.reload()
  assert.equal(await page.getByTestId('audit-action').inputValue(), 'user.')
  await page.getByTestId('audit-clear').click()
  await page.waitForURL((u) => !u.search.includes('action'))

  // Token entries: 110 of them, 50 a page.
  await page.getByTestId('audit-action').fill('token.')
  await page.getByTestId('audit-outcome').selectOption('ok')
  await page.getByTestId('audit-apply').click()
  await page.waitForURL(/action=token\./)
  await page.getByTestId('audit-more').waitFor()
  assert.equal(await page.getByTestId('audit-row').count(), 50)
  await page.getByTestId('audit-more').click()
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="audit-row"]').length === 100)

  // The hostile name in an entry's details is text.
  await page.getByTestId('audit-action').fill('token.create')
  await page.getByTestId('audit-apply').click()
  const hostile = page.locator('[data-testid="audit-row"][data-action="token.create"]').first()
  await hostile.getByTestId('audit-toggle').click()
  await page.getByTestId('audit-details-json').first().getByText(HOSTILE, { exact: false }).waitFor()
  await assertInert(page)
  page.assertClean()
})

test('the System page shows the version, uptime and live metrics', async () => {
  await server.installPlugin('echo')
  for (let i = 0; i < 3; i++) await server.api('POST', '/tools/echo/echo:call', { arguments: { text: 'hi' } })
  const health = await server.api('GET', '/health')
  const page = await browser.page(server)
  await page.goto(server.base + '/admin/system')
  await page.getByTestId('system-version').getByText(health.version).waitFor()
  await page.getByTestId('system-status').getByText('ok').waitFor()
  assert.match(await page.getByTestId('system-uptime').innerText(), /\d+ (s|min|h|d)/)
  const tool = page.getByTestId('system-plugin-row').filter({ hasText: 'echo/echo' })
  await tool.waitFor()
  assert.match(await tool.innerText(), /\b3\b/)
  await page.getByTestId('system-tasks').getByText('pending').waitFor()
  await page.getByTestId('system-http').getByText('/api/v1/tools/{plugin}/{tool}:call').waitFor()
  await page.getByTestId('system-sandboxes').waitFor()
  await browser.check(page, 'system')

  // It refreshes by itself.
  for (let i = 0; i < 2; i++) await server.api('POST', '/tools/echo/echo:call', { arguments: { text: 'again' } })
  await tool.getByText('5', { exact: true }).waitFor({ timeout: 15_000 })
  await page.getByTestId('system-raw').locator('summary').click()
  await page.getByTestId('system-raw').getByText('switchyard_plugin_calls_total').first().waitFor()
  page.assertClean()
})

test('the Connect page creates a token for MCP, fills the snippets and checks the connection', async () => {
  const page = await browser.page(server)
  await page.goto(server.base + '/connect')
  assert.equal(await page.getByTestId('mcp-url').inputValue(), server.base + '/mcp')
  const snippet = page.getByTestId('client-panel-claude-code').getByTestId('snippet')
  assert.match(await snippet.innerText(), /claude mcp add --transport http switchyard .*\/mcp --header "Authorization: Bearer YOUR_TOKEN"/)
  await browser.check(page, 'connect')
  await page.getByTestId('connect-create-token').click()
  const value = await page.getByTestId('token-value').inputValue()
  assert.match(value, /^sy_/)
  assert.ok((await snippet.innerText()).includes(`Bearer ${value}`))
  await page.getByTestId('client-tab-cursor').click()
  const cursor = JSON.parse(await page.getByTestId('client-panel-cursor').getByTestId('snippet').innerText())
  assert.deepEqual(cursor.mcpServers.switchyard, { url: server.base + '/mcp', headers: { Authorization: `Bearer ${value}` } })
  // Keyboard: arrows move between the client tabs.
  await page.getByTestId('client-tab-cursor').press('ArrowRight')
  await page.getByTestId('client-panel-vscode').getByTestId('snippet').waitFor()
  await page.getByTestId('connect-check').click()
  await page.getByTestId('connect-check-ok').getByText('switchyard').waitFor()
  await browser.check(page, 'connect-token')
  const listed = await server.api('GET', '/tokens')
  const made = listed.items.find((t) => value.startsWith(t.prefix) && t.name === 'MCP client')
  assert.ok(made, 'the token is listed')
  assert.deepEqual([...made.scopes].sort(), ['read', 'sandboxes', 'tasks', 'tools:call'])
  page.assertClean()
})

test('a user manages only their own tokens and cannot open admin pages', async () => {
  const erin = await server.user('erin')
  const adminToken = await server.api('POST', '/tokens', { name: 'admin-only token' })
  const page = await browser.page(server, erin)
  await page.goto(server.base + '/tokens')
  await page.getByTestId('tokens-empty').waitFor()
  assert.equal(await page.getByText('admin-only token').count(), 0)
  // The metrics scope is for administrators: not offered.
  await page.getByTestId('token-new').click()
  assert.equal(await page.getByTestId('scope-metrics').count(), 0)
  await page.getByTestId('token-name').fill('erin laptop')
  await page.getByTestId('token-create').click()
  await page.getByTestId('token-reveal').waitFor()
  await page.getByTestId('token-reveal-done').click()
  await page.getByTestId('token-row').filter({ hasText: 'erin laptop' }).getByText('all').waitFor()
  for (const path of ['/admin/users', '/admin/audit', '/admin/system']) {
    await page.goto(server.base + path)
    await page.waitForURL(/\/chat/)
  }
  page.assertClean()
  await server.api('DELETE', `/tokens/${adminToken.token.id}`)
})
