// The console's benchmarks, in headless Chromium against a real server
// (debug or release binary: SWITCHYARD_BIN) and the scripted model:
//   1. first load of the chat page: bytes transferred (Resource Timing) and
//      time to interactive (navigation start → the message box accepts input);
//   2. stream latency: an event's commit time on the server (`time`) → the
//      moment its text is in the page (MutationObserver), p50/p95 of 200;
//   3. a conversation of 2,000+ events: load time, DOM size, and frames
//      longer than 50 ms while scrolling through it.
// Usage: node bench/console.mjs   (from web/, after scripts/web and a build)
import { startServer, openBrowser } from '../e2e/harness.mjs'

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}
const server = await startServer()
const browser = await openBrowser()
await server.installPlugin('data')
const results = {}
try {
  // 1. First load (a fresh context: nothing cached).
  const loads = []
  for (let i = 0; i < 5; i++) {
    const page = await browser.page(server)
    await page.goto(server.base + '/chat')
    await page.getByTestId('composer-input').waitFor()
    loads.push(
      await page.evaluate(() => {
        const nav = performance.getEntriesByType('navigation')[0]
        const res = performance.getEntriesByType('resource').filter((r) => new URL(r.name).pathname.startsWith('/assets/'))
        const api = (p) => new URL(p.name).pathname.startsWith('/api/')
        const bytes = nav.transferSize + res.filter((r) => !api(r)).reduce((n, r) => n + r.transferSize, 0)
        return { bytes, domInteractive: nav.domInteractive, ready: performance.now(), files: res.length + 1 }
      }),
    )
    await page.context().close()
  }
  results.firstLoad = {
    transferredKB: +(loads[0].bytes / 1024).toFixed(1),
    files: loads[0].files,
    ttiMs: { p50: +pct(loads.map((l) => l.ready), 50).toFixed(1), max: +Math.max(...loads.map((l) => l.ready)).toFixed(1) },
    domInteractiveMs: +pct(loads.map((l) => l.domInteractive), 50).toFixed(1),
  }

  // 2. Stream latency: 200 chunks, 10 ms apart, each a unique word.
  const page = await browser.page(server)
  await page.goto(server.base + '/chat')
  const words = Array.from({ length: 200 }, (_, i) => `w${i}x`)
  server.llm.push({ parts: words.map((w) => `${w} `), delayMs: 10 })
  await page.evaluate(() => {
    window.__seen = {}
    new MutationObserver(() => {
      const now = performance.timeOrigin + performance.now()
      const text = document.querySelector('[data-testid=turns]')?.textContent ?? ''
      for (const m of text.matchAll(/w(\d+)x/g)) window.__seen[m[1]] ??= now
    }).observe(document.body, { subtree: true, childList: true, characterData: true })
  })
  await page.getByTestId('composer-input').fill('stream please')
  await page.getByTestId('send').click()
  await page.getByTestId('assistant-text').getByText('w199x').waitFor()
  const seen = await page.evaluate(() => window.__seen)
  const sessionId = page.url().split('/chat/')[1]
  const tasks = await server.api('GET', `/tasks?session_id=${sessionId}`)
  const events = await server.api('GET', `/tasks/${tasks.items[0].id}/events?limit=1000`)
  const lat = events.items
    .filter((e) => e.type === 'text')
    .map((e) => [String(e.data.delta).match(/w(\d+)x/)?.[1], e.time])
    .filter(([w]) => w !== undefined && seen[w])
    .map(([w, t]) => seen[w] - t)
  results.streamLatencyMs = { n: lat.length, p50: +pct(lat, 50).toFixed(1), p95: +pct(lat, 95).toFixed(1), max: +Math.max(...lat).toFixed(1) }

  // 3. A long conversation: 28 turns of 10 tool calls and 75 text chunks.
  const TURNS = 28
  for (let t = 0; t < TURNS; t++) {
    server.llm.push(
      { toolCalls: Array.from({ length: 10 }, (_, i) => ({ name: 'data__json_query', arguments: { input: { a: [t, i] }, filter: '.a | add' } })) },
      { text: Array.from({ length: 75 }, (_, i) => `Line ${i} of turn ${t}.\n\n`).join(''), chunks: 75 },
    )
    await page.getByTestId('composer-input').fill(`turn ${t}`)
    await page.getByTestId('send').click()
    await page.getByTestId('turn').nth(t + 1).getByText('completed').waitFor({ timeout: 60_000 })
  }
  const all = await server.api('GET', `/tasks?session_id=${sessionId}&limit=100`)
  let total = 0
  for (const task of all.items) total += task.last_seq
  const started = Date.now()
  await page.reload()
  await page.getByTestId('turn').nth(TURNS).getByText('completed').waitFor()
  const loadMs = Date.now() - started
  const scroll = await page.evaluate(async () => {
    const box = document.querySelector('[data-testid=turns]')
    box.scrollTop = 0
    const frames = []
    let last = performance.now()
    const steps = 120
    for (let i = 0; i <= steps; i++) {
      box.scrollTop = (box.scrollHeight * i) / steps
      await new Promise((r) => requestAnimationFrame(r))
      const now = performance.now()
      frames.push(now - last)
      last = now
    }
    return { frames, nodes: document.getElementsByTagName('*').length }
  })
  results.longConversation = {
    events: total,
    loadMs,
    domNodes: scroll.nodes,
    frameMs: { p50: +pct(scroll.frames, 50).toFixed(1), p95: +pct(scroll.frames, 95).toFixed(1), max: +Math.max(...scroll.frames).toFixed(1) },
    framesOver50ms: scroll.frames.filter((f) => f > 50).length,
  }
  console.log(JSON.stringify(results, null, 2))
} finally {
  await browser.close()
  await server.stop()
}
