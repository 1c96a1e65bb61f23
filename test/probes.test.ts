import t, { type Test } from 'tap'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import { mcpSseResilience, resolveOptions, type McpSseResilienceOptions } from '../lib/index.js'
import { startProxy, type RunningProxy } from './helpers/proxy.js'
import { startRedisServer } from './helpers/redis-process.js'
import { SseUpstream } from './helpers/sse-upstream.js'
import { openStuckClient } from './helpers/stuck-client.js'

const SSE_ROUTE = { kind: 'sse', path: '/events', upstream: 'http://127.0.0.1:9/events' } as const

interface ProbeAnswer {
  status: number
  body: unknown
  cacheControl: string | null
}

async function probe (url: string): Promise<ProbeAnswer> {
  const response = await fetch(url)
  return { status: response.status, body: await response.json(), cacheControl: response.headers.get('cache-control') }
}

async function until (what: string, timeoutMs: number, condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

async function readyStatus (proxy: RunningProxy): Promise<number> {
  return (await fetch(proxy.url('/readyz'))).status
}

t.test('memory store: /healthz and /readyz answer 200, are not cached, and stay out of the request metrics', async (t) => {
  const proxy = await startProxy(t, { routes: [{ kind: 'streamable-http', path: '/mcp', upstream: 'http://127.0.0.1:9/mcp' }] })
  t.same(await probe(proxy.url('/healthz')), { status: 200, body: { status: 'ok' }, cacheControl: 'no-store' })
  t.same(await probe(proxy.url('/readyz')), { status: 200, body: { status: 'ready' }, cacheControl: 'no-store' })
  t.equal((await fetch(proxy.url('/readyz'), { method: 'HEAD' })).status, 200, 'HEAD too, for load balancers that send it')
  // A measured request beside them: the histogram is there, with other routes in it.
  await fetch(proxy.url('/mcp'), { method: 'DELETE' })
  const metrics = await (await fetch(proxy.url('/metrics'))).text()
  t.match(metrics, /http_request_duration_seconds_count\{[^}]*route="\/mcp"/, 'other routes are measured')
  t.notMatch(metrics, /route="\/healthz"|route="\/readyz"/, 'the probes are not')
})

t.test('probes: custom paths, or none at all', async (t) => {
  const custom = await startProxy(t, { routes: [SSE_ROUTE], probes: { livenessPath: '/live', readinessPath: '/ready' } })
  t.equal((await fetch(custom.url('/live'))).status, 200)
  t.equal((await fetch(custom.url('/ready'))).status, 200)
  t.equal((await fetch(custom.url('/healthz'))).status, 404)
  const none = await startProxy(t, { routes: [SSE_ROUTE], probes: { enabled: false } })
  t.equal((await fetch(none.url('/healthz'))).status, 404)
  t.equal((await fetch(none.url('/readyz'))).status, 404)
})

t.test('probe paths may not collide with routes, the metrics path or each other', async (t) => {
  t.throws(() => resolveOptions({ routes: [{ ...SSE_ROUTE, path: '/healthz' }], probes: { readinessPath: '/metrics' } }), {
    message: 'Invalid fastify-mcp-sse-resilience options:\n' +
      '  - probes.livenessPath: path /healthz is already used by routes[0].path\n' +
      '  - probes.readinessPath: path /metrics is already used by metrics.path'
  })
  t.throws(() => resolveOptions({ routes: [SSE_ROUTE], probes: { livenessPath: '/probe', readinessPath: '/probe' } }), {
    message: /probes\.readinessPath: path \/probe is already used by probes\.livenessPath/
  })
  t.throws(() => resolveOptions({ routes: [SSE_ROUTE], probes: { livenessPath: 'healthz', ready: true } } as never), {
    message: /probes\.ready: unknown key\n {2}- probes\.livenessPath: must be a path starting with "\/"/
  })
  t.doesNotThrow(() => resolveOptions({ routes: [{ ...SSE_ROUTE, path: '/healthz' }], probes: { enabled: false } }), 'disabled probes claim no path')
})

t.test('Redis store: /readyz answers 503 while Redis is down and 200 once it is back; /healthz stays 200', async (t) => {
  const redis = await startRedisServer(t)
  const proxy = await startProxy(t, { routes: [SSE_ROUTE], store: { kind: 'redis', url: redis.url, keyPrefix: 'probes:' } })
  t.same(await probe(proxy.url('/readyz')), { status: 200, body: { status: 'ready' }, cacheControl: 'no-store' })
  await redis.kill()
  await until('/readyz to fail', 5000, async () => await readyStatus(proxy) === 503)
  t.same(await probe(proxy.url('/readyz')), { status: 503, body: { status: 'not-ready', reason: 'store-unavailable' }, cacheControl: 'no-store' })
  t.equal((await fetch(proxy.url('/healthz'))).status, 200, 'alive: restarting the proxy would not bring Redis back')
  await redis.start()
  await until('/readyz to pass again', 10000, async () => await readyStatus(proxy) === 200)
  t.pass('ready again once Redis is back')
})

t.test('Redis store: an instance that starts before Redis is reachable is not ready until it has reached it', async (t) => {
  const redis = await startRedisServer(t)
  await redis.kill()
  const proxy = await startProxy(t, { routes: [SSE_ROUTE], store: { kind: 'redis', url: redis.url, keyPrefix: 'probes-late:' } })
  t.same(await probe(proxy.url('/readyz')), { status: 503, body: { status: 'not-ready', reason: 'store-unavailable' }, cacheControl: 'no-store' })
  t.equal((await fetch(proxy.url('/healthz'))).status, 200)
  await redis.start()
  await until('/readyz to pass', 10000, async () => await readyStatus(proxy) === 200)
  t.pass('ready once the store is')
})

/**
 * A proxy closing with a client that reads nothing: closing waits up to
 * shutdown.drainTimeoutMs for it, and the test probes in that window. Fastify
 * answers 503 itself while closing unless told not to, as a host app may: here
 * it is, so that what answers is the probe.
 */
async function closingWithAStuckClient (t: Test): Promise<{ origin: string, closed: Promise<void>, isClosed: () => boolean }> {
  const upstream = await SseUpstream.start()
  t.teardown(async () => await upstream.close())
  const options: McpSseResilienceOptions = {
    routes: [{ kind: 'sse', path: '/events', upstream: upstream.url() }],
    history: { maxEvents: 30000, maxBytes: 64 * 1024 * 1024 },
    limits: { clientStallSeconds: 60 },
    shutdown: { drainTimeoutMs: 1500 }
  }
  const app = Fastify({ forceCloseConnections: true, return503OnClosing: false })
  await app.register(mcpSseResilience, options)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => await app.close())
  const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const stuck = await openStuckClient(upstream, origin)
  t.teardown(() => stuck.close())
  let closedFlag = false
  const closed = app.close().then(() => { closedFlag = true })
  return { origin, closed, isClosed: () => closedFlag }
}

t.test('/readyz answers 503 shutting-down while the proxy drains its streams, even where Fastify itself would still serve', async (t) => {
  const { origin, closed, isClosed } = await closingWithAStuckClient(t)
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.same(await probe(`${origin}/readyz`), { status: 503, body: { status: 'not-ready', reason: 'shutting-down' }, cacheControl: 'no-store' })
  t.equal((await fetch(`${origin}/healthz`)).status, 200, 'still alive while it drains')
  t.notOk(isClosed(), 'asked while the stream was still open')
  await closed
})
