// Chat in a real browser against a real server and the scripted model:
// streamed text, tool-call cards, a question answered in place, cancel,
// commands with live output, a reload and a server crash mid-stream, and
// hostile text that must stay text.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startServer, openBrowser } from './harness.mjs'

let server
let browser
before(async () => {
  server = await startServer()
  browser = await openBrowser()
  await server.installPlugin('data')
})
after(async () => {
  await browser?.close()
  await server?.stop()
})

async function say(page, text) {
  await page.getByTestId('composer-input').fill(text)
  await page.getByTestId('send').click()
}

test('a chat streams text and shows a tool call as a card', async () => {
  server.llm.push(
    { toolCalls: [{ name: 'data__json_query', arguments: { input: { a: [1, 2, 3] }, filter: '.a | add' } }] },
    { text: 'The **sum** is 6, computed with the `json_query` tool.', chunks: 6, delayMs: 60 },
  )
  const page = await browser.page(server)
  await page.goto(server.base + '/chat')
  await browser.check(page, 'chat-empty')
  await say(page, 'What is the sum of 1, 2 and 3?')
  await page.waitForURL(/\/chat\/[^/]+$/)
  const card = page.getByTestId('tool-card')
  await card.getByText('data__json_query').waitFor()
  const answer = page.getByTestId('assistant-text').last()
  await answer.getByText('computed with the').waitFor()
  assert.equal(await answer.locator('strong').innerText(), 'sum')
  await card.locator('summary').click()
  assert.match(await card.getByTestId('tool-arguments').innerText(), /"filter": "\.a \| add"/)
  await card.getByTestId('content-blocks').getByText('6').first().waitFor()
  await page.getByTestId('turn').getByTestId('status').getByText('completed').waitFor()
  await browser.check(page, 'chat-conversation')
  page.assertClean()
})

test('a question from the agent is answered in place', async () => {
  server.llm.push({ toolCalls: [{ name: 'ask_user', arguments: { question: 'Which colour should it be?' } }] }, { text: 'Blue it is.' })
  const page = await browser.page(server)
  await page.goto(server.base + '/chat')
  await say(page, 'Paint the shed')
  const q = page.getByTestId('question')
  await q.getByText('Which colour should it be?').waitFor()
  await browser.check(page, 'chat-question')
  await q.getByTestId('answer-input').fill('blue')
  await q.getByTestId('answer-send').click()
  await page.getByTestId('assistant-text').getByText('Blue it is.').waitFor()
  assert.equal(await page.getByTestId('question').count(), 0)
  const request = server.llm.requests.at(-1)
  assert.ok(JSON.stringify(request.messages).includes('blue'), 'the answer reached the model')
  page.assertClean()
})

test('a tool call that needs approval is allowed or denied in place', async () => {
  const agent = await server.api('POST', '/agents', { name: 'careful', approval: 'always' })
  const session = await server.api('POST', '/sessions', { agent_id: agent.id })
  server.llm.push(
    { toolCalls: [{ name: 'data__json_query', arguments: { input: { n: 41 }, filter: '.n + 1' } }] },
    { text: 'It is 42.' },
    { toolCalls: [{ name: 'data__json_query', arguments: { input: {}, filter: '.' } }] },
    { text: 'Understood, I will not.' },
  )
  const page = await browser.page(server)
  await page.goto(`${server.base}/chat/${session.id}`)
  await say(page, 'Add one to 41')
  const approval = page.getByTestId('approval')
  await approval.getByText('data__json_query').waitFor()
  await browser.check(page, 'chat-approval')
  await approval.getByTestId('approve').click()
  await page.getByTestId('assistant-text').getByText('It is 42.').waitFor()
  await say(page, 'Now look at everything')
  await page.getByTestId('approval').getByTestId('deny').click()
  await page.getByTestId('assistant-text').getByText('Understood, I will not.').waitFor()
  const denied = page.getByTestId('tool-card').last()
  await denied.locator('.badge.bad').getByText('error', { exact: true }).waitFor()
  page.assertClean()
})

test('a running task is canceled from the chat', async () => {
  server.llm.push({ hang: true })
  const page = await browser.page(server)
  await page.goto(server.base + '/chat')
  await say(page, 'Think forever')
  const turn = page.getByTestId('turn').last()
  await turn.getByTestId('status').getByText('running').waitFor()
  await turn.getByTestId('cancel').click()
  await turn.getByTestId('status').getByText('canceled').waitFor()
  assert.equal(await turn.getByTestId('cancel').count(), 0)
  page.assertClean()
})

test('a command from the chat box runs in the sandbox with live output', async () => {
  const page = await browser.page(server)
  await page.goto(server.base + '/chat')
  await say(page, '!echo hello-from-the-sandbox; echo oops >&2')
  const turn = page.getByTestId('turn').last()
  await turn.getByTestId('exec-output').getByText('hello-from-the-sandbox').waitFor({ timeout: 60_000 })
  await turn.getByTestId('status').getByText('completed').waitFor()
  await turn.getByText('exit 0').waitFor()
  page.assertClean()
})

test('a reload mid-stream resumes the conversation with no gap and no repeat', async () => {
  const words = Array.from({ length: 16 }, (_, i) => `word${i}`).join(' ')
  server.llm.push({ text: words, chunks: 16, delayMs: 150 })
  const page = await browser.page(server)
  await page.goto(server.base + '/chat')
  await say(page, 'Count slowly')
  await page.getByTestId('assistant-text').getByText('word2', { exact: false }).waitFor()
  await page.reload()
  const answer = page.getByTestId('assistant-text').last()
  await page.getByTestId('turn').last().getByTestId('status').getByText('completed').waitFor()
  assert.equal((await answer.innerText()).trim(), words)
  page.assertClean()
})

test('a crashed server shows reconnecting, then the stream resumes', async () => {
  const words = Array.from({ length: 12 }, (_, i) => `part${i}`).join(' ')
  const page = await browser.page(server)
  await page.goto(server.base + '/chat')
  server.llm.push({ text: 'ready', chunks: 1 })
  await say(page, 'Warm up')
  await page.getByTestId('assistant-text').getByText('ready').waitFor()
  // Crash only once the turn is committed as done: a task still running at the
  // crash is (rightly) run again after the restart and would take the next script.
  await page.getByTestId('turn').last().getByTestId('status').getByText('completed').waitFor()
  await server.crash()
  page.allow(/ERR_CONNECTION_REFUSED|ws-tickets|WebSocket/)
  await page.getByTestId('reconnecting').waitFor()
  assert.equal(await page.getByText('the agent stopped').count(), 0)
  await browser.check(page, 'chat-reconnecting')
  await server.restart()
  await page.getByTestId('reconnecting').waitFor({ state: 'detached', timeout: 30_000 })
  server.llm.push({ text: words, chunks: 12, delayMs: 50 })
  await say(page, 'Go on')
  await page.getByTestId('assistant-text').last().getByText('part11').waitFor()
  assert.equal((await page.getByTestId('assistant-text').last().innerText()).trim(), words)
  page.problems.length = 0
  page.assertClean()
})

test('hostile text in messages, titles and model output stays text', async () => {
  const hostile = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
  server.llm.push({
    text: `Here: ${hostile} and [a link](javascript:window.__pwned=3) and <iframe src="https://example.invalid"></iframe>`,
  })
  const page = await browser.page(server)
  await page.goto(server.base + '/chat')
  await say(page, hostile)
  await page.getByTestId('assistant-text').getByText('Here:').waitFor()
  await page.getByTestId('user-message').getByText('<img src=x', { exact: false }).waitFor()
  await page.reload()
  await page.getByTestId('session-item').first().waitFor()
  assert.equal(await page.locator('img[src="x"], iframe, .markdown script').count(), 0)
  assert.equal(await page.locator('a[href^="javascript:"]').count(), 0)
  assert.equal(await page.evaluate(() => window.__pwned), undefined)
  page.assertClean()
})

test('chat is usable on a phone', async () => {
  const page = await browser.page(server, server.admin, { viewport: { width: 390, height: 844 } })
  await page.goto(server.base + '/chat')
  await page.getByTestId('composer-input').waitFor()
  await browser.check(page, 'chat-phone')
  page.assertClean()
})
