// First run, sign-in and sign-out, an expired session, and how the host
// serves the console (CSP, caching, compression, page paths vs API paths).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startServer, openBrowser } from './harness.mjs'

let browser
before(async () => {
  browser = await openBrowser()
})
after(async () => {
  await browser?.close()
})

test('a newcomer opens the printed setup link and creates the first admin', async () => {
  const server = await startServer({ setup: false })
  try {
    assert.match(server.setupUrl, /\/setup#token=sys_[0-9a-f]{48}$/)
    const page = await browser.page(server, null)
    await page.goto(server.base + '/login')
    await page.getByText('No administrator exists yet').waitFor()
    await page.goto(server.setupUrl)
    await page.getByRole('heading', { name: 'Welcome to switchyard' }).waitFor()
    assert.equal(new URL(page.url()).hash, '', 'the token leaves the address bar')
    await browser.check(page, 'setup')
    await page.getByLabel('Username').fill('founder')
    await page.getByLabel('Password (at least 8 characters)').fill('a-long-password')
    await page.getByLabel('Password again').fill('a-long-password')
    await page.getByRole('button', { name: 'Create administrator' }).click()
    await page.waitForURL(/\/chat$/)
    await page.getByTestId('whoami').getByText('founder').waitFor()
    page.assertClean()

    // The link works once.
    const again = await fetch(server.base + '/api/v1/setup', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: server.setupUrl.split('#token=')[1], username: 'intruder', password: 'another-password' }),
    })
    assert.equal(again.status, 409)
    const state = await (await fetch(server.base + '/api/v1/setup')).json()
    assert.deepEqual(state, { required: false })

    // Sign out, a wrong password, then back in.
    await page.getByTestId('logout').click()
    await page.waitForURL(/\/login/)
    page.allow(/auth\/login → 401|status of 401/)
    await page.getByLabel('Username').fill('founder')
    await page.getByLabel('Password').fill('wrong-password')
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByText('Wrong username or password.').waitFor()
    await browser.check(page, 'login')
    await page.getByLabel('Password').fill('a-long-password')
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.waitForURL(/\/chat/)
    page.assertClean()
  } finally {
    await server.stop()
  }
})

test('a wrong setup token is refused and a hostile one changes nothing', async () => {
  const server = await startServer({ setup: false })
  try {
    const post = (body) =>
      fetch(server.base + '/api/v1/setup', { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    assert.equal((await post(JSON.stringify({ token: 'sys_nope', username: 'x', password: 'a-long-password' }))).status, 401)
    assert.equal((await post(JSON.stringify({ token: 'x'.repeat(5000), username: 'x', password: 'a-long-password' }))).status, 401)
    assert.equal((await post('{not json')).status, 400)
    assert.equal((await post(JSON.stringify({ token: 'sys_nope', username: 'x', password: 'a-long-password', role: 'admin' }))).status, 400)
    const token = server.setupUrl.split('#token=')[1]
    assert.equal((await post(JSON.stringify({ token, username: 'x', password: 'short' }))).status, 400)
    assert.equal((await post(JSON.stringify({ token, username: '<b>', password: 'a-long-password' }))).status, 400)
    assert.deepEqual(await (await fetch(server.base + '/api/v1/setup')).json(), { required: true }, 'failed attempts keep the link usable')
    assert.equal((await post(JSON.stringify({ token, username: 'root', password: 'a-long-password' }))).status, 201)
  } finally {
    await server.stop()
  }
})

test('an expired session returns to sign-in and back to the same page, draft kept', async () => {
  const server = await startServer()
  try {
    const page = await browser.page(server)
    await page.goto(server.base + '/chat')
    await page.getByTestId('composer-input').fill('a draft I must not lose')
    // End the page's session behind its back.
    const stored = await page.evaluate(() => JSON.parse(localStorage.getItem('switchyard.auth')))
    await server.api('POST', '/auth/logout', { refresh_token: stored.refresh }, stored.access)
    page.allow(/→ 401|status of 401/)
    // The live connection may notice first (its reconnect is refused) and leave
    // the chat before the click lands: either way the page to come back to is
    // the one the user was on.
    const left = await page.waitForURL(/\/login\?/, { timeout: 3_000 }).then(() => true, () => false)
    if (!left) await page.getByRole('link', { name: 'Tasks' }).click()
    await page.waitForURL(/\/login\?.*expired=1/)
    const next = new URL(page.url()).searchParams.get('next')
    assert.ok(next === '/tasks' || next === '/chat', `comes back to ${next}`)
    await page.getByText('Your session ended').waitFor()
    await page.getByLabel('Username').fill('admin')
    await page.getByLabel('Password').fill(server.admin.password)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.waitForURL((url) => url.pathname === next)
    await page.getByRole('link', { name: 'Chat' }).click()
    assert.equal(await page.getByTestId('composer-input').inputValue(), 'a draft I must not lose')
    page.assertClean()
  } finally {
    await server.stop()
  }
})

test('the access token is refreshed before it expires', async () => {
  const server = await startServer()
  try {
    const page = await browser.page(server)
    await page.goto(server.base + '/chat')
    const before = await page.evaluate(() => {
      const t = JSON.parse(localStorage.getItem('switchyard.auth'))
      // As if the token had a minute and two seconds left.
      t.expiresAt = Date.now() + 62_000
      localStorage.setItem('switchyard.auth', JSON.stringify(t))
      return t
    })
    await page.reload()
    await page.waitForFunction((old) => JSON.parse(localStorage.getItem('switchyard.auth')).access !== old, before.access, { timeout: 15_000 })
    const after = await page.evaluate(() => JSON.parse(localStorage.getItem('switchyard.auth')))
    assert.notEqual(after.refresh, before.refresh, 'the refresh token rotated')
    assert.ok(after.expiresAt > Date.now() + 60 * 60_000, 'the new token has its full lifetime')
    await page.getByRole('link', { name: 'Tasks' }).click()
    await page.getByRole('heading', { name: 'Tasks' }).waitFor()
    page.assertClean()
  } finally {
    await server.stop()
  }
})

test('the console is served with a strict policy, cached and compressed', async () => {
  const server = await startServer()
  try {
    const html = await fetch(server.base + '/chat/some-session')
    assert.equal(html.status, 200)
    assert.match(html.headers.get('content-type'), /^text\/html/)
    const csp = html.headers.get('content-security-policy')
    assert.match(csp, /script-src 'self'/)
    assert.match(csp, /connect-src 'self'/)
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/)
    assert.equal(html.headers.get('cache-control'), 'no-cache')
    assert.equal(html.headers.get('x-frame-options'), 'DENY')
    const body = await html.text()
    assert.doesNotMatch(body.replace(/<script type="module"[^>]*src="[^"]+"[^>]*><\/script>/g, ''), /<script/i, 'no inline script')
    const asset = body.match(/src="(\/assets\/[^"]+\.js)"/)[1]
    const js = await fetch(server.base + asset, { headers: { 'accept-encoding': 'br' } })
    assert.equal(js.status, 200)
    assert.match(js.headers.get('content-type'), /javascript/)
    assert.equal(js.headers.get('cache-control'), 'public, max-age=31536000, immutable')
    const etag = js.headers.get('etag')
    assert.ok(etag)
    const again = await fetch(server.base + asset, { headers: { 'if-none-match': etag } })
    assert.equal(again.status, 304)
    assert.equal((await fetch(server.base + '/assets/gone-0000.js')).status, 404)
    const api404 = await fetch(server.base + '/api/v1/no-such-route')
    assert.equal(api404.status, 404)
    assert.match(api404.headers.get('content-type'), /json/)
    assert.equal((await fetch(server.base + '/chat', { method: 'POST' })).status, 405)
    assert.equal((await fetch(server.base + '/metrics')).status, 200)
  } finally {
    await server.stop()
  }
})
