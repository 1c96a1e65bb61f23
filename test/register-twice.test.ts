import t, { type Test } from 'tap'
import Fastify from 'fastify'
import fastifyMetrics from 'fastify-metrics'
import promClient from 'prom-client'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { startDemoUpstream } from '../examples/demo/mcp-server.js'
import { mcpSseResilience, type McpSseResilienceOptions } from '../lib/index.js'
import { openMcpSession } from './helpers/numbered-events.js'
import { clientsReceiving } from './helpers/relayed-events.js'
import { SseUpstream } from './helpers/sse-upstream.js'
import { startHost, type RunningProxy } from './helpers/proxy.js'
import { TEST_REDIS_URL, testRedis } from './helpers/test-redis.js'

async function sseUpstream (test: Test): Promise<SseUpstream> {
  const upstream = await SseUpstream.start()
  test.teardown(async () => await upstream.close())
  return upstream
}

async function metricsOf (host: RunningProxy, path = '/metrics'): Promise<string> {
  return await (await fetch(host.url(path))).text()
}

t.test('two registrations under two prefixes: two route sets, each with its own sessions and metrics', async (t) => {
  const upstream = await startDemoUpstream()
  t.teardown(async () => await upstream.close())
  const routes: McpSseResilienceOptions['routes'] = [{ kind: 'streamable-http', path: '/mcp', upstream: `${upstream.origin}/mcp` }]
  const sessionRoutes: string[] = []
  const host = await startHost(t, async (app) => {
    // What a host reads from the request decorator, on the routes of both registrations.
    app.addHook('onResponse', async (request) => { if (request.mcpSseSession !== null) sessionRoutes.push(request.mcpSseSession.routePath) })
    await app.register(mcpSseResilience, { prefix: '/a', routes })
    await app.register(mcpSseResilience, { prefix: '/b', routes })
  })

  for (const prefix of ['/a', '/b']) {
    const client = new Client({ name: 'twice', version: '1.0.0' })
    await client.connect(new StreamableHTTPClientTransport(new URL(host.url(`${prefix}/mcp`))))
    t.teardown(async () => await client.close())
    t.same((await client.listTools()).tools.map((tool) => tool.name).sort(), ['announce', 'countdown', 'echo'], `an MCP client works through ${prefix}/mcp`)
  }
  t.ok(sessionRoutes.includes('/a/mcp') && sessionRoutes.includes('/b/mcp'), 'request.mcpSseSession is set on both')

  const { headers } = await openMcpSession(host.url('/a/mcp'))
  const elsewhere = await fetch(host.url('/b/mcp'), { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }) })
  t.equal(elsewhere.status, 404, 'a session of /a is unknown to /b')
  const there = await fetch(host.url('/a/mcp'), { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }) })
  t.equal(there.status, 200)

  const [a, b] = [await metricsOf(host, '/a/metrics'), await metricsOf(host, '/b/metrics')]
  t.match(a, /^sse_sessions_active 2$/m, 'each serves its own metrics under its prefix')
  t.match(b, /^sse_sessions_active 1$/m)
  t.notMatch(a, /route="\/b\/mcp"/)
  for (const path of ['/a/healthz', '/a/readyz', '/b/healthz', '/b/readyz']) t.equal((await fetch(host.url(path))).status, 200, `probes under each prefix: ${path}`)
})

t.test('two registrations without a prefix share one metrics endpoint, where their gauges add up', async (t) => {
  const upstream = await sseUpstream(t)
  const host = await startHost(t, async (app) => {
    await app.register(mcpSseResilience, { routes: [{ kind: 'sse', path: '/one', upstream: upstream.url() }] })
    await app.register(mcpSseResilience, { routes: [{ kind: 'sse', path: '/two', upstream: upstream.url() }] })
  })
  await clientsReceiving(t, host, upstream, ['/one', '/two'], 'data: 1\n\ndata: 2\n\n', 2)

  const text = await metricsOf(host)
  t.match(text, /^sse_events_forwarded_total\{route_kind="sse",route="\/one"\} 2$/m)
  t.match(text, /^sse_events_forwarded_total\{route_kind="sse",route="\/two"\} 2$/m)
  t.match(text, /^sse_sessions_active 2$/m)
  t.match(text, /^sse_history_events 4$/m)
  t.same(await (await fetch(host.url('/readyz'))).json(), { status: 'ready' }, 'one readiness probe answers for both')
  t.equal((await fetch(host.url('/healthz'))).status, 200)
})

t.test('two registrations with the Redis store need a key space each, and their store metrics reach the host', async (t) => {
  const upstream = await sseUpstream(t)
  const [first, second] = [testRedis(t).keyPrefix, testRedis(t).keyPrefix]
  const options = (path: string, keyPrefix: string): McpSseResilienceOptions => ({
    routes: [{ kind: 'sse', path, upstream: upstream.url() }],
    store: { kind: 'redis', url: TEST_REDIS_URL, keyPrefix }
  })

  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(mcpSseResilience, options('/one', first))
  await t.rejects(async () => await app.register(mcpSseResilience, options('/two', first)), {
    code: 'FST_MCP_SSE_INVALID_CONFIG',
    message: /store\.keyPrefix: ".*" is already used, on the same store\.url or store\.cluster, by another registration of the plugin on this server; give each registration its own store\.keyPrefix/
  })

  // The host serves the metrics: the store's join its registry with the rest.
  promClient.register.clear()
  t.teardown(() => promClient.register.clear())
  const host = await startHost(t, async (app) => {
    await app.register(fastifyMetrics.default, { endpoint: '/metrics' })
    await app.register(mcpSseResilience, options('/one', first))
    await app.register(mcpSseResilience, options('/two', second))
  })
  const clients = await clientsReceiving(t, host, upstream, ['/one', '/two'], 'data: 1\n\n', 1)
  t.same(clients.map((client) => client.events[0]?.data), ['1', '1'], 'both relay')
  const text = await metricsOf(host)
  t.match(text, /^sse_upstream_leases_held 2$/m, 'each registration\'s leases count in one gauge')
  t.equal(text.match(/^# TYPE sse_store_operations_total /gm)?.length, 1)
})
