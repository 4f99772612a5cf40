// Schedules: create a cron schedule in a chosen time zone and see its next
// runs (in the live preview and in the list), pause and resume it, watch an
// interval schedule fire and follow its run to the task, delete with a
// confirmation, and show a hostile name as text.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startServer, openBrowser } from './harness.mjs'

let server, browser
before(async () => {
  // A short interval floor and a fast scheduler, so an interval run happens within the test.
  server = await startServer({ config: '[schedules]\nmin_interval_secs = 2\npoll_secs = 1\n' })
  browser = await openBrowser()
})
after(async () => {
  await browser?.close()
  await server?.stop()
})

const HOSTILE = '<img src=x onerror=alert(1)>'

test('create a cron schedule in another time zone, preview it, pause, resume and delete it', async () => {
  const page = await browser.page(server)
  await page.goto(server.base + '/schedules')
  await page.getByTestId('schedules-empty').waitFor()
  await browser.check(page, 'schedules-empty')

  await page.getByTestId('new-schedule').click()
  const form = page.getByTestId('schedule-form')
  await form.waitFor()
  await page.getByLabel('Name', { exact: true }).fill('tokyo morning')
  await page.getByLabel('Cron expression').fill('30 8 * * *')

  // The time-zone picker: search, then pick with the mouse.
  const zone = page.getByRole('combobox', { name: 'Time zone' })
  await zone.fill('toky')
  await page.getByRole('option', { name: /Asia\/Tokyo/ }).click()
  assert.equal(await zone.inputValue(), 'Asia/Tokyo')

  await page.getByLabel('Message', { exact: true }).fill('Summarize the night')

  // The preview follows the fields: five runs at 08:30 Tokyo time (UTC+9).
  const preview = page.getByTestId('schedule-preview')
  await preview.getByTestId('preview-run').nth(4).waitFor()
  await page.waitForFunction(() => {
    const runs = [...document.querySelectorAll('[data-testid="preview-run"]')].map((e) => e.textContent ?? '')
    return runs.length === 5 && runs.every((t) => /08:30/.test(t) && /UTC\+9/.test(t))
  })
  // A bad expression says so (the preview's 422 is expected), then a good one previews again.
  page.allow(/schedules\/preview → 422/)
  page.allow(/status of 422/)
  await page.getByLabel('Cron expression').fill('61 * * * *')
  await preview.getByTestId('preview-problem').waitFor()
  await page.getByLabel('Cron expression').fill('30 8 * * *')
  await preview.getByTestId('preview-run').first().waitFor()
  await browser.check(page, 'schedules-create')

  await page.getByTestId('schedule-save').click()
  await page.getByTestId('schedule-created').waitFor()
  const row = page.getByTestId('schedule-row').filter({ hasText: 'tokyo morning' })
  await row.waitFor()
  const next = await row.getByTestId('schedule-next').innerText()
  assert.match(next, /08:30/)
  assert.match(next, /UTC\+9/)

  const [saved] = (await server.api('GET', '/schedules')).items
  assert.deepEqual(saved.trigger, { type: 'cron', expression: '30 8 * * *', timezone: 'Asia/Tokyo' })
  assert.deepEqual(saved.task, { kind: 'agent', input: { content: 'Summarize the night' } })
  assert.match(saved.next_runs[0], /T08:30:00\+09:00$/)
  await browser.check(page, 'schedules-list')

  // Pause and resume from the list.
  await row.getByTestId('schedule-pause').click()
  await row.getByTestId('schedule-state').getByText('paused').waitFor()
  assert.equal((await server.api('GET', `/schedules/${saved.id}`)).state, 'paused')
  await row.getByTestId('schedule-resume').click()
  await row.getByTestId('schedule-state').getByText('active').waitFor()
  assert.equal((await server.api('GET', `/schedules/${saved.id}`)).state, 'active')

  // The detail page shows the facts and the next runs.
  await row.getByTestId('schedule-link').click()
  await page.waitForURL(`**/schedules/${saved.id}`)
  await page.getByTestId('schedule-title').getByText('tokyo morning').waitFor()
  await page.getByTestId('schedule-facts').getByText('Asia/Tokyo (UTC+9)').waitFor()
  assert.equal(await page.getByTestId('schedule-next-runs').locator('li').count(), saved.next_runs.length)
  await page.getByTestId('runs-empty').waitFor()
  await browser.check(page, 'schedule-detail')

  // Edit: a new expression, previewed and saved.
  await page.getByTestId('schedule-edit').click()
  const edit = page.getByTestId('schedule-edit-form')
  await edit.getByLabel('Cron expression').fill('0 18 * * FRI')
  await page.waitForFunction(() => {
    const runs = [...document.querySelectorAll('[data-testid="preview-run"]')].map((e) => e.textContent ?? '')
    return runs.length === 5 && runs.every((t) => /18:00|06:00\s?PM/.test(t) && /Fri/.test(t))
  })
  await edit.getByTestId('schedule-save').click()
  await page.getByTestId('schedule-facts').getByText('0 18 * * FRI').waitFor()
  assert.equal((await server.api('GET', `/schedules/${saved.id}`)).trigger.expression, '0 18 * * FRI')

  // Delete asks first.
  await page.getByTestId('schedule-delete').click()
  await page.getByTestId('schedule-delete-yes').click()
  await page.waitForURL('**/schedules')
  await page.getByTestId('schedules-empty').waitFor()
  assert.equal((await server.api('GET', '/schedules')).items.length, 0)
  page.assertClean()
})

test('an interval schedule fires, its run shows in the history and links to its task', async () => {
  const page = await browser.page(server)
  await page.goto(server.base + '/schedules')
  await page.getByTestId('new-schedule').click()
  await page.getByLabel('Name', { exact: true }).fill('every few seconds')
  await page.getByRole('radio', { name: 'Every so often' }).check()
  await page.getByLabel('Every', { exact: true }).fill('3')
  await page.getByLabel('Unit', { exact: true }).selectOption({ label: 'seconds' })
  await page.getByLabel('Message', { exact: true }).fill('Say hello')
  await page.getByTestId('preview-run').first().waitFor()
  await page.getByTestId('schedule-save').click()
  const row = page.getByTestId('schedule-row').filter({ hasText: 'every few seconds' })
  await row.getByTestId('schedule-link').click()
  await page.getByTestId('schedule-title').waitFor()
  const id = decodeURIComponent(new URL(page.url()).pathname.split('/').pop())

  // The history updates on its own; the first run has a task.
  const run = page.getByTestId('run-row').first()
  await run.getByTestId('run-task').waitFor({ timeout: 30_000 })
  // No more runs needed.
  await page.getByTestId('schedule-pause').click()
  await page.getByTestId('schedule-state').getByText('paused').waitFor()
  assert.equal(await run.getByTestId('run-state').innerText(), 'started')
  await browser.check(page, 'schedule-history')

  const runs = (await server.api('GET', `/schedules/${id}/runs`)).items
  const started = runs.filter((r) => r.state === 'started')
  assert.ok(started.length >= 1, JSON.stringify(runs))
  const href = await run.getByTestId('run-task').getAttribute('href')
  assert.equal(href, `/tasks/${runs[0].task_id}`)
  const task = await server.api('GET', `/tasks/${runs[0].task_id}`)
  assert.equal(task.origin, 'schedule')
  page.assertClean()
  await run.getByTestId('run-task').click()
  await page.waitForURL(`**/tasks/${runs[0].task_id}`)
  await server.api('DELETE', `/schedules/${id}`)
})

test('a hostile schedule name is shown as text', async () => {
  const created = await server.api('POST', '/schedules', {
    name: HOSTILE,
    trigger: { type: 'cron', expression: '0 9 * * *', timezone: 'Europe/Berlin' },
    task: { kind: 'exec', input: { command: `echo '${HOSTILE}'` } },
    paused: true,
  })
  const page = await browser.page(server)
  await page.goto(server.base + '/schedules')
  const row = page.getByTestId('schedule-row').filter({ hasText: HOSTILE })
  await row.waitFor()
  assert.equal(await row.getByTestId('schedule-link').innerText(), HOSTILE)
  assert.equal(await page.locator('img[src="x"]').count(), 0)

  await page.goto(server.base + `/schedules/${created.id}`)
  await page.getByTestId('schedule-title').waitFor()
  assert.equal(await page.getByTestId('schedule-title').innerText(), HOSTILE)
  assert.equal(await page.locator('img[src="x"]').count(), 0)

  // Deleting from the list asks first; Cancel keeps it.
  await page.goto(server.base + '/schedules')
  await row.getByTestId('schedule-delete').click()
  await page.getByRole('button', { name: 'Cancel' }).click()
  await row.waitFor()
  await row.getByTestId('schedule-delete').click()
  await row.getByTestId('schedule-delete-yes').click()
  await row.waitFor({ state: 'detached' })
  assert.equal((await server.api('GET', '/schedules')).items.filter((s) => s.id === created.id).length, 0)
  page.assertClean()
})
