// Agent profiles: create one (tools allow-list, skills, approval), see it
// listed, edit it and make it the default, start a chat from it, show a
// hostile description as text, see another user's shared profile without
// edit controls, and delete with a confirmation.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
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

const HOSTILE = '<img src=x onerror=alert(1)>'

test('create, list, edit, make default and delete an agent profile', async () => {
  const page = await browser.page(server)
  await page.goto(server.base + '/agents')
  await page.getByTestId('agents-empty').waitFor()
  await browser.check(page, 'agents-empty')

  await page.getByTestId('new-agent').click()
  const form = page.getByTestId('agent-form')
  await form.waitFor()
  await form.getByLabel('Name', { exact: true }).fill('reviewer')
  await form.getByLabel('Description').fill(`Reviews code ${HOSTILE}`)
  await form.getByLabel('Instructions').fill('You review pull requests for correctness.')
  await form.getByLabel('Model').fill('fake-model')
  await form.getByRole('radio', { name: /Only these/ }).check()
  await form.getByLabel('Allowed tools').fill('sandbox_read_file')
  await form.getByLabel('Allowed tools').press('Enter')
  await form.getByLabel('Allowed tools').fill('sandbox_list_files')
  await form.getByRole('button', { name: 'Add' }).first().click()
  assert.equal(await form.getByTestId('agent-tool-chip').count(), 2)
  await form.getByRole('button', { name: 'Remove sandbox_list_files' }).click()
  assert.equal(await form.getByTestId('agent-tool-chip').count(), 1)
  await form.getByLabel('Skills').fill('starter-skills/code-review')
  await form.getByLabel('Skills').press('Enter')
  await form.getByRole('radio', { name: /Ask before changes/ }).check()
  await browser.check(page, 'agents-create')
  await form.getByTestId('agent-save').click()

  const card = page.locator('[data-testid="agent-card"][data-name="reviewer"]')
  await card.waitFor()
  await page.getByTestId('agents-notice').getByText('Created reviewer.').waitFor()
  assert.equal(await page.locator('img[src="x"]').count(), 0)
  await card.getByText(`Reviews code ${HOSTILE}`).waitFor()
  const [made] = (await server.api('GET', '/agents')).items
  assert.equal(made.name, 'reviewer')
  assert.deepEqual(made.tools, ['sandbox_read_file'])
  assert.deepEqual(made.skills, ['starter-skills/code-review'])
  assert.equal(made.approval, 'destructive')
  assert.equal(made.model, 'fake-model')
  assert.equal(made.is_default, false)
  assert.equal(await card.getByTestId('agent-chat').getAttribute('href'), `/chat?agent=${made.id}`)
  await browser.check(page, 'agents-list')

  // Edit: new instructions, every tool, shared and the default.
  await card.getByTestId('agent-edit').click()
  const edit = page.getByTestId('agent-edit-form')
  await edit.waitFor()
  assert.equal(await edit.getByLabel('Instructions').inputValue(), 'You review pull requests for correctness.')
  await edit.getByLabel('Description').fill('Reviews code')
  await edit.getByLabel('Instructions').fill('Review for security first.')
  await edit.getByTestId('agent-tools-all').check()
  await edit.getByTestId('agent-shared').check()
  await edit.getByTestId('agent-default').check()
  await browser.check(page, 'agents-edit')
  await edit.getByTestId('agent-save').click()
  await card.getByTestId('agent-is-default').waitFor()
  await card.getByText('Reviews code').waitFor()
  const changed = await server.api('GET', `/agents/${made.id}`)
  assert.equal(changed.instructions, 'Review for security first.')
  assert.deepEqual(changed.tools, ['*'])
  assert.equal(changed.shared, true)
  assert.equal(changed.is_default, true)

  // A second profile, made the default from its card: the first one loses the badge.
  await server.api('POST', '/agents', { name: 'writer', description: 'Writes docs' })
  await page.reload()
  const writer = page.locator('[data-testid="agent-card"][data-name="writer"]')
  await writer.getByTestId('agent-make-default').click()
  await writer.getByTestId('agent-is-default').waitFor()
  await card.getByTestId('agent-is-default').waitFor({ state: 'detached' })

  // Delete asks first.
  await card.getByTestId('agent-delete').click()
  await card.getByTestId('agent-delete-yes').click()
  await card.waitFor({ state: 'detached' })
  assert.deepEqual((await server.api('GET', '/agents')).items.map((a) => a.name), ['writer'])
  page.assertClean()

  // Start a chat goes to the chat page with the profile (the chat page takes it from there).
  const writerId = (await server.api('GET', '/agents')).items[0].id
  await writer.getByTestId('agent-chat').click()
  await page.waitForURL(`**/chat?agent=${writerId}`)
})

test('another user sees a shared profile without edit controls', async () => {
  const bob = await server.user('bob')
  await server.api('POST', '/agents', { name: 'shared-helper', description: HOSTILE, shared: true })
  const page = await browser.page(server, bob)
  await page.goto(server.base + '/agents')
  await page.getByTestId('agents-shared').waitFor()
  const card = page.locator('[data-testid="agent-card"][data-name="shared-helper"]')
  await card.getByText(HOSTILE).waitFor()
  assert.equal(await page.locator('img[src="x"]').count(), 0)
  assert.equal(await card.getByTestId('agent-edit').count(), 0)
  assert.equal(await card.getByTestId('agent-delete').count(), 0)
  await card.getByTestId('agent-chat').waitFor()
  await page.getByTestId('agents-empty').waitFor()
  await browser.check(page, 'agents-shared')
  page.assertClean()
})
