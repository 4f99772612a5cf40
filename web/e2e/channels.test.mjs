// Channels: without a channel plugin the page says how to install one; with
// the generic `webhook` plugin an administrator adds an instance (its secret
// write-only), copies its webhook URL, and a signed POST to that URL becomes
// a task whose reply shows in the outbox; a failed reply is sent again with
// Retry. Hostile conversation keys are shown as text.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { startServer, openBrowser } from './harness.mjs'

let server, browser
before(async () => {
  server = await startServer()
  browser = await openBrowser()
})
after(async () => {
  await browser?.close()
  await server?.stop()
})

const SECRET = 'e2e-signing-secret-value'
const HOSTILE = '<img src=x onerror=alert(1)>'

/** POST a signed message to a webhook URL, as the provider would. */
async function deliver(url, message) {
  const body = JSON.stringify(message)
  const sig = createHmac('sha256', SECRET).update(body).digest('hex')
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-signature': `sha256=${sig}` }, body })
  assert.ok(res.status >= 200 && res.status < 300, `webhook answered ${res.status}: ${await res.text()}`)
}

test('install the webhook plugin, add an instance, receive a webhook, see its reply and task, retry a failed one', async () => {
  const page = await browser.page(server)
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.base })

  // No channel plugin yet: the page explains how to get one.
  await page.goto(server.base + '/channels')
  await page.getByTestId('channels-no-plugin').waitFor()
  await page.getByText('First, install a channel plugin').waitFor()
  await browser.check(page, 'channels-no-plugin')

  await server.installPlugin('webhook')
  await page.reload()
  await page.getByTestId('channels-empty').waitFor()

  // Add the default instance with its signing secret.
  await page.getByTestId('new-channel').click()
  const form = page.getByTestId('channel-form')
  await form.waitFor()
  await form.getByTestId('channel-secret-signing_secret').waitFor()
  await browser.check(page, 'channels-create')
  await form.getByTestId('channel-secret-signing_secret').fill(SECRET)
  await form.getByTestId('channel-save').click()
  await page.waitForURL(/\/channels\/[^/]+$/)
  const id = decodeURIComponent(new URL(page.url()).pathname.split('/').pop())

  // The absolute webhook URL, copied with one click; the secret is never shown.
  const url = `${server.base}/api/v1/channels/webhook/webhook`
  assert.equal(await page.getByTestId('channel-url').innerText(), url)
  await page.getByRole('button', { name: 'Copy URL' }).click()
  await page.getByTestId('copy-url').getByText('Copied').waitFor()
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), url)
  await page.getByTestId('channel-facts').getByText('signing_secret').waitFor()
  assert.ok(!(await page.content()).includes(SECRET), 'the secret value is not on the page')
  await page.getByTestId('deliveries-empty').waitFor()
  await browser.check(page, 'channel-detail-empty')

  // The list shows it too, with the same URL.
  await page.goto(server.base + '/channels')
  const row = page.getByTestId('channel-row').filter({ hasText: 'default' })
  assert.equal(await row.getByTestId('channel-url').innerText(), url)
  await browser.check(page, 'channels-list')

  // A signed webhook becomes a task; its reply (no callback URL: kept on the task) is delivered.
  await deliver(url, { conversation: HOSTILE, text: 'Hello from the test', id: 'e2e-1' })
  await row.getByTestId('channel-link').click()
  const delivered = page.getByTestId('delivery-row').filter({ hasText: HOSTILE })
  await delivered.waitFor({ timeout: 30_000 })
  await page.locator('[data-testid="delivery-row"][data-state="delivered"]').waitFor({ timeout: 30_000 })
  assert.equal(await page.locator('img[src="x"]').count(), 0)
  const [first] = (await server.api('GET', `/channels/${id}/deliveries`)).items
  assert.equal(first.state, 'delivered')
  assert.equal(await delivered.getByTestId('delivery-task').getAttribute('href'), `/tasks/${first.task_id}`)
  await browser.check(page, 'channel-deliveries')

  // A callback URL the plugin may not reach makes the next reply fail; Retry sends it again.
  await page.getByTestId('channel-edit').click()
  const edit = page.getByTestId('channel-edit-form')
  await edit.getByTestId('channel-config-callback_url').fill('http://127.0.0.1:9/hook')
  await edit.getByTestId('channel-save').click()
  await page.getByTestId('channel-facts').getByText('http://127.0.0.1:9/hook').waitFor()
  assert.deepEqual((await server.api('GET', `/channels/${id}`)).secrets, ['signing_secret'], 'editing keeps the secret')

  await deliver(url, { conversation: 'second', text: 'Hello again', id: 'e2e-2' })
  const failed = page.locator('[data-testid="delivery-row"][data-state="failed"]')
  await failed.waitFor({ timeout: 30_000 })
  await page.getByTestId('deliveries-failed').click()
  assert.equal(await page.getByTestId('delivery-row').count(), 1)
  assert.match(await failed.getByTestId('delivery-error').innerText(), /denied/)
  await browser.check(page, 'channel-failed')
  await failed.getByTestId('delivery-retry').click()
  // It fails again (same address), after a second attempt.
  await failed.getByTestId('delivery-attempts').getByText('2').waitFor({ timeout: 30_000 })
  const again = (await server.api('GET', `/channels/${id}/deliveries`)).items.find((d) => d.conversation_key === 'second')
  assert.equal(again.attempts, 2)

  // The task link leads to the task.
  await page.getByTestId('deliveries-all').click()
  page.assertClean()
  await delivered.getByTestId('delivery-task').click()
  await page.waitForURL(`**/tasks/${first.task_id}`)
})

test('deleting a channel asks first', async () => {
  const [ch] = (await server.api('GET', '/channels')).items
  const page = await browser.page(server)
  await page.goto(server.base + `/channels/${ch.id}`)
  await page.getByTestId('channel-delete').click()
  await page.getByTestId('channel-delete-yes').click()
  await page.waitForURL('**/channels')
  await page.getByTestId('channels-empty').waitFor()
  assert.equal((await server.api('GET', '/channels')).items.length, 0)
  page.assertClean()
})
