// Every page of the console, as a signed-in administrator with some data:
// it renders its heading, loads without a console error, a failed request or
// a CSP violation, is screenshotted, and passes the axe-core scan.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startServer, openBrowser } from './harness.mjs'

let server
let browser
let taskId
before(async () => {
  server = await startServer()
  browser = await openBrowser()
  await server.installPlugin('data')
  server.llm.push({ text: 'Hello from the **model**.' })
  const session = await server.api('POST', '/sessions', { title: 'A first conversation' })
  const posted = await server.api('POST', `/sessions/${session.id}/messages`, { content: 'Hello' })
  taskId = posted.task_id
  await server.api('POST', '/schedules', {
    name: 'nightly report',
    trigger: { type: 'cron', expression: '0 3 * * *', timezone: 'Europe/Berlin' },
    task: { kind: 'exec', input: { command: 'date' } },
  })
})
after(async () => {
  await browser?.close()
  await server?.stop()
})

const PAGES = [
  ['chat', '/chat'],
  ['agents', '/agents'],
  ['tasks', '/tasks'],
  ['task', () => `/tasks/${taskId}`],
  ['sandboxes', '/sandboxes'],
  ['plugins', '/plugins'],
  ['plugin', '/plugins/data'],
  ['playground', '/playground/data/json_query'],
  ['skills', '/skills'],
  ['schedules', '/schedules'],
  ['channels', '/channels'],
  ['tokens', '/tokens'],
  ['users', '/admin/users'],
  ['audit', '/admin/audit'],
  ['system', '/admin/system'],
  ['connect', '/connect'],
  ['not-found', '/no/such/page'],
]

for (const [name, path] of PAGES) {
  test(`the ${name} page renders cleanly and accessibly`, async () => {
    const page = await browser.page(server)
    await page.goto(server.base + (typeof path === 'function' ? path() : path))
    await page.locator('h1').first().waitFor()
    await page.waitForLoadState('networkidle')
    await page.waitForFunction(() => !document.querySelector('main .spinner'), null, { timeout: 15_000 }).catch(() => {})
    assert.ok((await page.locator('h1').first().innerText()).trim().length > 0)
    await browser.check(page, `page-${name}`)
    page.assertClean()
    await page.context().close()
  })
}

test('the chat and task pages work on a phone', async () => {
  for (const [name, path] of [['chat', '/chat'], ['tasks', '/tasks']]) {
    const page = await browser.page(server, server.admin, { viewport: { width: 390, height: 844 } })
    await page.goto(server.base + path)
    await page.locator('h1').first().waitFor()
    await page.waitForLoadState('networkidle')
    await browser.check(page, `phone-${name}`)
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
    assert.ok(overflow <= 1, `${name}: the page is ${overflow}px wider than the phone`)
    page.assertClean()
    await page.context().close()
  }
})
