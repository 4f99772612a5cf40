// Skills: upload a skill whose SKILL.md is hostile (a script, an image with
// an onerror handler, a javascript: link): it renders as safe Markdown, no
// script runs and no dialog opens; read its files as text; share it and make
// it private again; a second upload of the same name offers to replace it; a
// lone SKILL.md is packed in the browser; remove after a confirmation.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startServer, openBrowser } from './harness.mjs'

let server, browser, dir
before(async () => {
  server = await startServer()
  browser = await openBrowser()
  dir = mkdtempSync(join(tmpdir(), 'sy-skill-'))
})
after(async () => {
  await browser?.close()
  await server?.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const HOSTILE = '<img src=x onerror=alert(1)>'
const SKILL_MD = `---
name: evil-skill
description: Renders hostile Markdown ${HOSTILE} safely
---
# Evil skill

<script>alert(1)</script>

${HOSTILE}

[click me](javascript:alert(1))

Some **bold** text, a [safe link](https://example.com/docs) and \`code\`.

\`\`\`bash
echo hello
\`\`\`
`

/** A .tar.gz of the folder evil-skill/ (SKILL.md and a script). */
function archive() {
  const top = join(dir, 'evil-skill')
  mkdirSync(join(top, 'scripts'), { recursive: true })
  writeFileSync(join(top, 'SKILL.md'), SKILL_MD)
  writeFileSync(join(top, 'scripts', 'run.py'), `print("${HOSTILE}")\n`)
  mkdirSync(join(top, 'references'), { recursive: true })
  writeFileSync(join(top, 'references', 'notes.md'), '# Notes\n\n<script>alert(1)</script>\n')
  const file = join(dir, 'evil-skill.tar.gz')
  execFileSync('tar', ['czf', file, '-C', dir, 'evil-skill'])
  return file
}

/** Nothing hostile became markup or ran. */
async function assertInert(page) {
  assert.equal(await page.locator('img[src="x"]').count(), 0, 'an <img> was injected')
  assert.equal(await page.locator('main script').count(), 0, 'a <script> was injected')
  assert.equal(await page.locator('a[href^="javascript:" i]').count(), 0, 'a javascript: link was kept')
}

test('upload a hostile skill: safe Markdown, files as text, share, replace, remove', async () => {
  const page = await browser.page(server)
  page.allow(/POST \S+\/api\/v1\/skills\?visibility=private → 409/)
  page.allow(/status of 409/)
  await page.goto(server.base + '/skills')
  await page.getByTestId('skills-empty').waitFor()
  await browser.check(page, 'skills-empty')

  await page.getByTestId('skill-add-toggle').click()
  await page.getByTestId('skill-file').setInputFiles(archive())
  await page.getByTestId('skill-picked').waitFor()
  await browser.check(page, 'skills-upload')
  await page.getByTestId('skill-upload-submit').click()
  await page.getByTestId('skill-upload-done').filter({ hasText: 'Installed @admin/evil-skill' }).waitFor()
  const row = page.getByTestId('skill-row-@admin-evil-skill')
  await row.waitFor()
  assert.match(await row.getByTestId('skill-description').innerText(), /<img src=x onerror=alert\(1\)>/)
  assert.match(await row.getByTestId('skill-availability').innerText(), /Private/)
  await assertInert(page)
  await browser.check(page, 'skills-list')

  // The same name again: 409, and the page offers to replace it.
  await page.getByTestId('skill-file').setInputFiles(archive())
  await page.getByTestId('skill-picked').waitFor()
  await page.getByTestId('skill-upload-submit').click()
  await page.getByTestId('skill-replace').click()
  await page.getByTestId('skill-upload-done').filter({ hasText: 'Replaced @admin/evil-skill' }).waitFor()

  // Read it: Markdown rendered, nothing hostile survives.
  await row.getByTestId('skill-link').click()
  await page.getByTestId('skill-name').filter({ hasText: 'evil-skill' }).waitFor()
  const md = page.getByTestId('skill-instructions')
  await md.locator('h1', { hasText: 'Evil skill' }).waitFor()
  assert.equal(await md.locator('strong', { hasText: 'bold' }).count(), 1)
  assert.equal(await md.locator('a[href="https://example.com/docs"]').count(), 1)
  const click = md.getByText('click me')
  assert.equal(await click.count(), 1)
  const href = await click.evaluate((el) => el.closest('a')?.getAttribute('href') ?? null)
  assert.ok(href === null || !/^\s*javascript:/i.test(href), `the javascript: link kept its href: ${href}`)
  assert.match(await page.getByTestId('skill-description').innerText(), /<img src=x onerror=alert\(1\)>/)
  await assertInert(page)

  // Its files, as text (Markdown files too: only SKILL.md is rendered).
  await page.getByTestId('skill-file-references/notes.md').click()
  assert.match(await page.getByTestId('skill-file-content').innerText(), /<script>alert\(1\)<\/script>/)
  await page.getByTestId('skill-file-scripts/run.py').click()
  assert.equal(await page.getByTestId('skill-file-content').innerText(), `print("${HOSTILE}")\n`)
  await assertInert(page)
  await browser.check(page, 'skill-page')

  // Share, then private again.
  await page.getByTestId('skill-share').click()
  await page.getByTestId('skill-visibility-badge').filter({ hasText: 'shared' }).waitFor()
  let listed = (await server.api('GET', '/skills')).items.find((s) => s.name === 'evil-skill')
  assert.equal(listed.visibility, 'shared')
  await page.getByTestId('skill-share').click()
  await page.getByTestId('skill-visibility-badge').filter({ hasText: 'private' }).waitFor()
  listed = (await server.api('GET', '/skills')).items.find((s) => s.name === 'evil-skill')
  assert.equal(listed.visibility, 'private')

  // Remove: cancel first (nothing happens), then confirm.
  await page.getByTestId('skill-remove').click()
  const dialog = page.getByRole('dialog')
  await dialog.waitFor()
  await browser.check(page, 'skill-remove-confirm')
  await dialog.getByTestId('confirm-cancel').click()
  assert.ok((await server.api('GET', '/skills')).items.some((s) => s.name === 'evil-skill'))
  await page.getByTestId('skill-remove').click()
  await page.getByRole('dialog').getByTestId('confirm-ok').click()
  await page.getByTestId('skills-note').filter({ hasText: 'Removed @admin/evil-skill' }).waitFor()
  assert.ok(!(await server.api('GET', '/skills')).items.some((s) => s.name === 'evil-skill'))
  await assertInert(page)
  page.assertClean()
})

test('a lone SKILL.md is packed in the browser and installed; a non-skill is refused', async () => {
  const page = await browser.page(server)
  await page.goto(server.base + '/skills?add=1')
  const md = '---\nname: tiny-skill\ndescription: The smallest skill there is\n---\n# Tiny\n\nDo one small thing well.\n'
  await page.getByTestId('skill-file').setInputFiles({ name: 'SKILL.md', mimeType: 'text/markdown', buffer: Buffer.from(md) })
  await page.getByTestId('skill-picked').waitFor()
  await page.getByTestId('skill-upload-submit').click()
  await page.getByTestId('skill-upload-done').filter({ hasText: 'tiny-skill' }).waitFor()
  const body = await server.api('GET', '/skills/@admin/tiny-skill')
  assert.match(body.instructions, /Do one small thing well/)

  // A file that is neither an archive nor a SKILL.md is refused before upload.
  await page.getByTestId('skill-file').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello') })
  await page.getByTestId('skill-problem').filter({ hasText: 'SKILL.md' }).waitFor()
  assert.equal(await page.getByTestId('skill-upload-submit').isDisabled(), true)
  await browser.check(page, 'skills-refused')

  // Shared with another user, it shows for them without the owner's actions.
  await server.api('PATCH', '/skills/@admin/tiny-skill', { visibility: 'shared' })
  const bob = await server.user('bob')
  const other = await browser.page(server, bob)
  await other.goto(server.base + '/skills')
  const row = other.getByTestId('skill-row-@admin-tiny-skill')
  await row.waitFor()
  assert.equal(await row.getByTestId('skill-remove').count(), 0)
  await browser.check(other, 'skills-other-user')
  other.assertClean()
  page.assertClean()
})
