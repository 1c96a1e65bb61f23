import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyMetrics from 'fastify-metrics'
import promClient from 'prom-client'
import { mcpSseResilience, type McpSseResiliencePluginOptions } from '../lib/index.js'
import { clientsReceiving } from './helpers/relayed-events.js'
import { SseUpstream } from './helpers/sse-upstream.js'
import { startHost, type RunningProxy } from './helpers/proxy.js'

// fastify-metrics serves prom-client's global registry, which lives as long as the
// process: each test starts with it empty, as a fresh host application would.
function freshGlobalRegistry (test: Test): void {
  promClient.register.clear()
  test.teardown(() => promClient.register.clear())
}

async function sseUpstream (test: Test): Promise<SseUpstream> {
  const upstream = await SseUpstream.start()
  test.teardown(async () => await upstream.close())
  return upstream
}

function pluginOptions (upstream: SseUpstream, extra: Partial<McpSseResiliencePluginOptions> = {}): McpSseResiliencePluginOptions {
  return { routes: [{ kind: 'sse', path: '/events', upstream: upstream.url() }], ...extra }
}

/** A route of the host's own, beside the proxy's. */
function hostRoute (app: FastifyInstance): void {
  app.get('/hello', async () => ({ hello: 'world' }))
}

/** Three events relayed on /events, and one request on the host's /hello. */
async function traffic (test: Test, host: RunningProxy, upstream: SseUpstream): Promise<void> {
  await clientsReceiving(test, host, upstream, ['/events'], 'data: 1\n\ndata: 2\n\ndata: 3\n\n', 3)
  t.equal((await fetch(host.url('/hello'))).status, 200)
}

async function scrape (host: RunningProxy, path = '/metrics'): Promise<string> {
  const response = await fetch(host.url(path))
  t.equal(response.status, 200, `GET ${path}`)
  return await response.text()
}

function typeLines (text: string): string[] {
  return text.split('\n').filter((line) => line.startsWith('# TYPE ')).map((line) => line.split(' ')[2] ?? '')
}

/** What the host's endpoint must show: its own metrics and the proxy's, each name once. */
function assertHostEndpoint (test: Test, text: string): void {
  test.match(text, /^sse_events_forwarded_total\{route_kind="sse",route="\/events"\} 3$/m, 'the proxy\'s metrics are on the host\'s endpoint')
  test.match(text, /^sse_streams_active\{route_kind="sse",route="\/events"\} 1$/m)
  test.match(text, /^http_request_duration_seconds_count\{method="GET",route="\/hello",status_code="200"\} 1$/m, 'with the host\'s own request metrics')
  test.match(text, /^process_cpu_user_seconds_total /m, 'and its process metrics')
  const names = typeLines(text)
  test.same(names.filter((name, index) => names.indexOf(name) !== index), [], 'no metric name twice')
  test.equal(names.filter((name) => name === 'process_cpu_user_seconds_total').length, 1)
}

t.test('a host that registered fastify-metrics first serves the proxy\'s metrics on its own endpoint', async (t) => {
  freshGlobalRegistry(t)
  const upstream = await sseUpstream(t)
  const host = await startHost(t, async (app) => {
    await app.register(fastifyMetrics.default, { endpoint: '/metrics' })
    await app.register(mcpSseResilience, pluginOptions(upstream))
    hostRoute(app)
  })
  await traffic(t, host, upstream)
  assertHostEndpoint(t, await scrape(host))
  t.same(host.app.printRoutes({ commonPrefix: false }).match(/metrics/g), ['metrics'], 'one /metrics route: the host\'s')
})

t.test('a host that registers fastify-metrics after the plugin hands it the registry that fastify-metrics serves', async (t) => {
  freshGlobalRegistry(t)
  const upstream = await sseUpstream(t)
  const host = await startHost(t, async (app) => {
    await app.register(mcpSseResilience, pluginOptions(upstream, { metricsRegistry: promClient.register }))
    await app.register(fastifyMetrics.default, { endpoint: '/metrics' })
    hostRoute(app)
  })
  await traffic(t, host, upstream)
  assertHostEndpoint(t, await scrape(host))
})

t.test('several plugin instances add their metrics to one host registry, once', async (t) => {
  freshGlobalRegistry(t)
  const upstream = await sseUpstream(t)
  const host = await startHost(t, async (app) => {
    await app.register(fastifyMetrics.default, { endpoint: '/metrics' })
    await app.register(mcpSseResilience, { prefix: '/a', ...pluginOptions(upstream) })
    await app.register(mcpSseResilience, { prefix: '/b', ...pluginOptions(upstream) })
  })
  await clientsReceiving(t, host, upstream, ['/a/events', '/b/events'], 'data: 1\n\n', 1)
  const text = await scrape(host)
  t.match(text, /^sse_events_forwarded_total\{route_kind="sse",route="\/a\/events"\} 1$/m)
  t.match(text, /^sse_events_forwarded_total\{route_kind="sse",route="\/b\/events"\} 1$/m)
  t.match(text, /^sse_sessions_active 2$/m, 'each instance\'s sessions count in one gauge')
})

t.test('without metricsRegistry, a fastify-metrics registered after the plugin on its path is refused with a message that says what to do', async (t) => {
  freshGlobalRegistry(t)
  const upstream = await sseUpstream(t)
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(mcpSseResilience, pluginOptions(upstream))
  await t.rejects(async () => await app.register(fastifyMetrics.default, { endpoint: '/metrics' }), {
    code: 'FST_MCP_SSE_METRICS_PATH_TAKEN',
    message: /GET \/metrics.*register fastify-metrics before the plugin, or pass the registry it serves as `metricsRegistry`/
  })
})

t.test('the plugin\'s own endpoint leaves the host free to register fastify-metrics elsewhere', async (t) => {
  freshGlobalRegistry(t)
  const upstream = await sseUpstream(t)
  const host = await startHost(t, async (app) => {
    await app.register(mcpSseResilience, pluginOptions(upstream))
    await app.register(fastifyMetrics.default, { endpoint: '/host-metrics' })
    hostRoute(app)
  })
  await traffic(t, host, upstream)
  const own = await scrape(host, '/metrics')
  t.match(own, /^sse_events_forwarded_total\{route_kind="sse",route="\/events"\} 3$/m, 'the plugin serves its metrics')
  t.match(own, /^process_cpu_user_seconds_total /m, 'with the process metrics')
  t.notMatch(own, /route="\/hello"/, 'and the request metrics of its own routes only')
  const hosts = await scrape(host, '/host-metrics')
  t.match(hosts, /^http_request_duration_seconds_count\{method="GET",route="\/hello",status_code="200"\} 1$/m)
  t.notMatch(hosts, /^sse_/m, 'the host\'s registry was not handed over')
})

t.test('a registry that already holds metrics of the proxy\'s names is refused, by name', async (t) => {
  freshGlobalRegistry(t)
  const upstream = await sseUpstream(t)
  const registry = new promClient.Registry()
  // eslint-disable-next-line no-new -- registered in `registry` by its constructor
  new promClient.Counter({ name: 'sse_events_forwarded_total', help: 'someone else\'s', registers: [registry] })
  const app = Fastify()
  t.teardown(async () => await app.close())
  await t.rejects(async () => await app.register(mcpSseResilience, pluginOptions(upstream, { metricsRegistry: registry })), {
    code: 'FST_MCP_SSE_METRICS_CONFLICT',
    message: /metricsRegistry: it already holds other metrics named sse_events_forwarded_total\./
  })
  t.equal(registry.getSingleMetric('sse_streams_active'), undefined, 'nothing was added to it')

  const host = Fastify()
  t.teardown(async () => await host.close())
  await host.register(fastifyMetrics.default, { endpoint: '/metrics' })
  // eslint-disable-next-line no-new -- registered in the global registry by its constructor
  new promClient.Gauge({ name: 'sse_sessions_active', help: 'the host\'s own' })
  await t.rejects(async () => await host.register(mcpSseResilience, pluginOptions(upstream)), {
    code: 'FST_MCP_SSE_METRICS_CONFLICT',
    message: /the registry of the host's fastify-metrics: it already holds other metrics named sse_sessions_active\./
  })
})

t.test('a `metrics` decorator that is not fastify-metrics is left alone: the plugin serves its own endpoint', async (t) => {
  const upstream = await sseUpstream(t)
  for (const decoration of [{ requests: 0 }, null]) {
    const host = await startHost(t, async (app) => {
      // fastify-metrics' types claim the name; another plugin's value is what this test is about.
      app.decorate('metrics', decoration as unknown as FastifyInstance['metrics'])
      await app.register(mcpSseResilience, pluginOptions(upstream))
    })
    t.match(await scrape(host), /^# TYPE sse_events_forwarded_total counter$/m)
  }
})
