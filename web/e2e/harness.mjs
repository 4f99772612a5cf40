// The browser-test harness: a real `switchyard serve` (the newest debug
// binary, which embeds the built console) on a free port with its own data
// dir and the scripted fake LLM, and headless Debian Chromium driven by
// playwright-core. Every page records console errors, failed requests, CSP
// violations and dialogs; `assertClean()` fails the test on any of them.
// `check()` keeps a screenshot (web/e2e/out/screenshots, and the CI log names
// them) and runs an axe-core scan that fails on serious or critical findings.
import { spawn } from 'node:child_process'
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { chromium } from 'playwright-core'
import { startFakeLlm } from './fake-llm.mjs'

const require = createRequire(import.meta.url)
const here = new URL('.', import.meta.url).pathname
const target = process.env.CARGO_TARGET_DIR ?? join(here, '../../target')
/** The switchyard binary under test. */
export const BIN = process.env.SWITCHYARD_BIN ?? join(target, 'debug', 'switchyard')
/** Built plugin packages. */
export const PACKAGES = process.env.SWITCHYARD_PACKAGES ?? join(target, 'packages')
/** Where screenshots go. */
export const SHOTS = process.env.SWITCHYARD_SCREENSHOTS ?? join(here, 'out', 'screenshots')
const AUTH_KEY = 'switchyard.auth'
const PASSWORD = 'correct-horse-battery'

/**
 * Start a server; `{ setup: false }` leaves it without users (first-run
 * tests); `config` is extra top-level TOML (before the `[llm]` table).
 */
export async function startServer({ setup = true, config = '' } = {}) {
  const llm = await startFakeLlm()
  const dir = mkdtempSync(join(tmpdir(), 'sy-e2e-'))
  const configPath = join(dir, 'switchyard.toml')
  writeFileSync(
    configPath,
    `logins_per_minute = 10000\n${config}\n[llm]\nprovider = "openai"\nbase_url = "${llm.baseUrl}"\nmodel = "fake-model"\nmax_retries = 0\n`,
  )
  const env = { ...process.env, SWITCHYARD_DATA_DIR: join(dir, 'data'), SWITCHYARD_CONFIG: configPath, NO_COLOR: '1' }
  env.RUST_LOG ??= 'warn'
  delete env.SWITCHYARD_ADMIN_PASSWORD
  delete env.SWITCHYARD_DATABASE_URL
  delete env.SWITCHYARD_LISTEN
  let child
  let out = ''
  let log = ''
  const launch = (listen) =>
    new Promise((resolve, reject) => {
      out = ''
      child = spawn(BIN, ['serve', '--listen', listen, '--shutdown-grace', '2'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
      child.stderr.on('data', (d) => (log = (log + d).slice(-20000)))
      const timer = setTimeout(() => reject(new Error(`switchyard did not start in 30 s:\n${out}\n${log}`)), 30_000)
      child.stdout.on('data', (d) => {
        out += d
        const base = out.match(/listening on (http:\/\/\S+)/)?.[1]
        const setupUrl = out.match(/(http:\/\/\S+\/setup#token=\S+)/)?.[1]
        if (base && (setupUrl || /Log in:/.test(out)) && /sandboxes: /.test(out)) {
          clearTimeout(timer)
          resolve({ base, setupUrl })
        }
      })
      child.on('exit', (code) => reject(new Error(`switchyard exited with ${code}:\n${out}\n${log}`)))
    })
  const started = await launch('127.0.0.1:0')
  const server = {
    base: started.base,
    setupUrl: started.setupUrl,
    llm,
    dir,
    stdout: () => out,
    log: () => log,
    admin: null,
    /** Call the REST API (as the admin unless another token is given). */
    async api(method, path, body, token = server.admin?.token) {
      const headers = {}
      if (token) headers.authorization = `Bearer ${token}`
      let payload
      if (body instanceof Uint8Array || body instanceof Buffer) {
        payload = body
        headers['content-type'] = 'application/gzip'
      } else if (body !== undefined) {
        payload = JSON.stringify(body)
        headers['content-type'] = 'application/json'
      }
      const res = await fetch(`${server.base}/api/v1${path}`, { method, headers, body: payload })
      const text = await res.text()
      const json = text ? JSON.parse(text) : undefined
      if (!res.ok) throw Object.assign(new Error(`${method} ${path} → ${res.status} ${text}`), { status: res.status, body: json })
      return json
    },
    /** Sign in with a password: the login answer (tokens and user). */
    login: (username, password) => server.api('POST', '/auth/login', { username, password }, null),
    /** A new non-admin user, signed in. */
    async user(username, role = 'user') {
      const created = await server.api('POST', '/users', { username, password: PASSWORD, role })
      const t = await server.login(username, PASSWORD)
      return { username, password: PASSWORD, id: created.id, token: t.access_token, tokens: t }
    },
    /** Install a built first-party plugin package with its grants. */
    async installPlugin(name) {
      const file = readdirSync(PACKAGES).find((f) => f.startsWith(`${name}-`) && f.endsWith('.tar.gz'))
      if (!file) throw new Error(`no package for ${name} in ${PACKAGES}: run scripts/build-plugins`)
      return server.api('POST', '/plugins?grant=true', readFileSync(join(PACKAGES, file)))
    },
    /** `kill -9` the server (nothing flushed, nothing drained). */
    async crash() {
      child.kill('SIGKILL')
      await new Promise((r) => (child.exitCode !== null || child.signalCode ? r() : child.on('exit', r)))
    },
    /** Start it again on the same address and data. */
    async restart() {
      await launch(new URL(server.base).host)
    },
    async stop() {
      try {
        const all = await server.api('GET', '/sandboxes?all=true')
        for (const sb of all?.items ?? []) await server.api('DELETE', `/sandboxes/${sb.id}`).catch(() => {})
      } catch {
        /* no sandboxes, or the server is gone */
      }
      child.kill('SIGTERM')
      await new Promise((r) => (child.exitCode !== null || child.signalCode ? r() : child.on('exit', r)))
      await llm.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
  if (setup) {
    const t = await server.api('POST', '/setup', { token: started.setupUrl.split('#token=')[1], username: 'admin', password: PASSWORD }, null)
    server.admin = { username: 'admin', password: PASSWORD, token: t.access_token, tokens: t, id: t.user.id }
  }
  return server
}

/** Launch Chromium; pages come from `browser.page(server, who?)`. */
export async function openBrowser() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  })
  const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8')
  mkdirSync(SHOTS, { recursive: true })
  return {
    browser,
    /**
     * A new context (1280×720 unless `viewport`) signed in as `who` (the
     * admin by default; `null` for signed out), with the guards attached.
     */
    async page(server, who = server.admin, { viewport = { width: 1280, height: 720 } } = {}) {
      const context = await browser.newContext({ viewport, acceptDownloads: true })
      if (who) {
        const t = await server.login(who.username, who.password)
        const stored = { access: t.access_token, refresh: t.refresh_token, expiresAt: Date.now() + t.expires_in * 1000, user: t.user }
        await context.addInitScript(
          ([key, value]) => {
            if (!localStorage.getItem(key) && !sessionStorage.getItem('e2e-signed-out')) localStorage.setItem(key, value)
          },
          [AUTH_KEY, JSON.stringify(stored)],
        )
      }
      const page = await context.newPage()
      guard(page)
      return page
    },
    /** Screenshot `name` and fail on serious or critical accessibility findings. */
    async check(page, name) {
      await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false })
      if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource)
      const result = await page.evaluate(async () => {
        const r = await window.axe.run(document, { resultTypes: ['violations'] })
        return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }))
      })
      const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical')
      if (bad.length) throw new Error(`accessibility (${name}): ${JSON.stringify(bad, null, 2)}`)
      return result
    },
    close: () => browser.close(),
  }
}

/** Record what must never happen on a page; `page.allow(re)` excuses expected messages. */
export function guard(page) {
  const problems = []
  const allowed = []
  const excused = (text) => allowed.some((re) => re.test(text))
  page.on('console', (m) => {
    if (m.type() === 'error' && !excused(m.text())) problems.push(`console error: ${m.text()}`)
  })
  page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`))
  page.on('dialog', (d) => {
    problems.push(`a dialog opened: ${d.type()} ${d.message()}`)
    void d.dismiss()
  })
  page.on('requestfailed', (r) => {
    const failure = r.failure()?.errorText ?? ''
    if (failure.includes('ERR_ABORTED')) return
    const text = `${r.method()} ${r.url()} ${failure}`
    if (!excused(text)) problems.push(`request failed: ${text}`)
  })
  page.on('response', (r) => {
    const text = `${r.request().method()} ${r.url()} → ${r.status()}`
    if (r.status() >= 400 && !excused(text)) problems.push(`response: ${text}`)
  })
  void page.exposeFunction('__e2eCsp', (v) => problems.push(`CSP violation: ${v}`))
  void page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => window.__e2eCsp(`${e.violatedDirective} ${e.blockedURI}`))
  })
  page.problems = problems
  page.allow = (re) => allowed.push(re)
  page.assertClean = () => {
    if (problems.length) throw new Error(`the page was not clean:\n  ${problems.join('\n  ')}`)
  }
  return page
}

/** Whether a package was built (tests that need one skip nothing: they fail). */
export const hasPackage = (name) => existsSync(PACKAGES) && readdirSync(PACKAGES).some((f) => f.startsWith(`${name}-`))
