import t from 'tap'
import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { mcpSseResilience } from '../lib/index.js'
import { startDemoUpstream } from '../examples/demo/mcp-server.js'
import { startTcpRelay } from './helpers/tcp-relay.js'
import { bundleForBrowser, launchChromium, servePage } from './helpers/browser.js'
import type { PageApi } from './browser/page-client.js'

// The call outlasts the cut by over a second: the SDK's client drops progress that
// reaches it in the same chunk as the result, so the resume must come before the end.
const STEPS = 30
const INTERVAL_MS = 80
/** The progress notification after which the page's connections are cut, for OUTAGE_MS. */
const CUT_AT = 8
const OUTAGE_MS = 400

interface SeenRequest { method: string, origin: string | undefined, host: string | undefined, status: number, code?: string }

t.test('the MCP SDK client in a page in headless Chromium, on an origin of its own, works through the proxy: initialize, a call with progress, a resume after a cut; a page on an origin not listed cannot connect', async (t) => {
  const upstream = await startDemoUpstream()
  t.teardown(async () => await upstream.close())
  const [script, browser] = await Promise.all([
    bundleForBrowser(t, fileURLToPath(new URL('./browser/page-client.ts', import.meta.url))),
    launchChromium(t, ['app.example', 'evil.example'])
  ])
  const pagePort = await servePage(t, script)
  // Not a localhost origin: only security.allowedOrigins lets it in.
  const pageOrigin = `http://app.example:${pagePort}`

  const app = Fastify({ forceCloseConnections: true })
  const seen: SeenRequest[] = []
  const codes = new WeakMap<object, string>()
  app.addHook('onSend', async (request, reply, payload) => {
    if (reply.statusCode === 403) codes.set(request, (JSON.parse(String(payload)) as { error: { data: { code: string } } }).error.data.code)
  })
  app.addHook('onResponse', async (request, reply) => {
    seen.push({ method: request.method, origin: request.headers.origin, host: request.headers.host, status: reply.statusCode, code: codes.get(request) })
  })
  await app.register(mcpSseResilience, {
    routes: [{ kind: 'streamable-http', path: '/mcp', upstream: `${upstream.origin}/mcp` }],
    security: { allowedOrigins: [pageOrigin] }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => await app.close())
  // The browser reaches the proxy through a relay whose connections the test cuts.
  const relay = await startTcpRelay(t, (app.server.address() as AddressInfo).port)
  const proxyUrl = `http://127.0.0.1:${relay.port}/mcp`

  const page = await browser.newPage()
  await page.exposeFunction('mcpProgress', (progress: number) => {
    if (progress !== CUT_AT) return
    relay.pause()
    setTimeout(() => relay.resume(), OUTAGE_MS)
  })
  await page.goto(`${pageOrigin}/`)
  await page.waitForFunction(() => 'mcpScenario' in globalThis)
  const result = await page.evaluate(async ([url, steps, interval]) => await (globalThis as unknown as PageApi).mcpScenario(url, steps, interval), [proxyUrl, STEPS, INTERVAL_MS] as const)

  const [initialize] = result.requests
  t.type(result.sessionId, 'string', 'the page read Mcp-Session-Id from the initialize response')
  t.equal(initialize?.sessionId, result.sessionId)
  t.same(result.progress, Array.from({ length: STEPS }, (_, i) => i + 1), 'every progress notification arrived in the page once, in order, across the cut')
  t.same(result.text, ['liftoff'], 'the result arrived in the page')
  t.ok(result.requests.some((request) => request.error !== undefined), 'the cut failed requests')
  const resume = result.requests.find((request) => request.lastEventId !== null && request.status !== undefined)
  t.match(resume, { method: 'GET', status: 200, resumeStatus: 'recovered' }, 'the SDK client resumed with Last-Event-ID, and the page read X-Resume-Status')
  t.match(result.requests.at(-1), { method: 'DELETE', status: 200 }, 'the session ended with a DELETE')
  t.ok(seen.some((request) => request.method === 'OPTIONS' && request.status === 204), 'the browser sent a preflight, answered 204')
  t.same(seen.filter((request) => request.origin !== pageOrigin), [], 'every request came from the page, with its origin')

  // An origin not listed: its preflight is refused, whichever name it calls the proxy by.
  const stranger = await browser.newPage()
  await stranger.goto(`http://evil.example:${pagePort}/`)
  await stranger.waitForFunction(() => 'mcpTryConnect' in globalThis)
  const before = seen.length
  for (const url of [proxyUrl, `http://evil.example:${relay.port}/mcp`]) {
    const outcome = await stranger.evaluate(async (url) => await (globalThis as unknown as PageApi).mcpTryConnect(url), url)
    t.match(outcome, /Failed to fetch/, `${url}: the page cannot connect`)
  }
  t.same(seen.slice(before).map(({ method, status, code }) => `${method} ${status} ${String(code)}`), ['OPTIONS 403 FST_MCP_SSE_ORIGIN_NOT_ALLOWED', 'OPTIONS 403 FST_MCP_SSE_HOST_NOT_ALLOWED'],
    'the proxy refused both preflights, by their Origin and by their Host (a rebound name), and nothing else reached it')
})
