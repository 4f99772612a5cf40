// The tasks pages: the list follows statuses live and filters, the detail
// page follows the event log as it is written and cancels.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startServer, openBrowser } from './harness.mjs'

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

test('a running task is followed live, filtered, and canceled from its page', async () => {
  const task = await server.api('POST', '/tasks', {
    kind: 'exec',
    input: { command: 'for i in $(seq 1 300); do echo tick-$i; sleep 0.2; done' },
  })
  server.llm.push({ text: 'done' })
  await server.api('POST', '/tasks', { kind: 'agent', input: { content: 'hello' } })
  const page = await browser.page(server)
  await page.goto(server.base + '/tasks')
  const row = page.getByTestId('task-row').filter({ hasText: 'tick-' })
  await row.getByTestId('status').getByText('running').waitFor({ timeout: 60_000 })
  await page.getByTestId('filter-kind').selectOption('agent')
  await page.getByTestId('task-row').filter({ hasText: 'hello' }).waitFor()
  assert.equal(await page.getByTestId('task-row').filter({ hasText: 'tick-' }).count(), 0)
  await page.getByTestId('filter-kind').selectOption('')
  await page.getByTestId('filter-status').selectOption('running')
  await page.waitForURL(/status=running/)
  await row.getByRole('link').click()
  await page.waitForURL(new RegExp(`/tasks/${task.id}$`))
  await page.getByTestId('event-log').getByText('tick-3', { exact: false }).first().waitFor()
  const before = await page.getByTestId('event-row').count()
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid=event-row]').length > n, before, { timeout: 20_000 })
  await browser.check(page, 'task-running')
  await page.getByTestId('task-cancel').click()
  await page.getByTestId('status').first().getByText('canceled').waitFor()
  assert.equal((await server.api('GET', `/tasks/${task.id}`)).status, 'canceled')
  page.assertClean()
})

test('an unknown task says so', async () => {
  const page = await browser.page(server)
  page.allow(/→ 404|status of 404/)
  await page.goto(server.base + '/tasks/no-such-task')
  await page.getByRole('alert').waitFor()
  page.assertClean()
})
