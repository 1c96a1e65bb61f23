import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { Writable } from 'node:stream'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { startDemoUpstream, type DemoUpstream } from '../examples/demo/mcp-server.js'
import { loadConfigFile, mcpSseResilience, type McpSseResilienceOptions } from '../lib/index.js'
import { clientsReceiving } from './helpers/relayed-events.js'
import { SseClient } from './helpers/sse-client.js'
import { SseUpstream } from './helpers/sse-upstream.js'
import { startHost } from './helpers/proxy.js'

async function upstreams (test: Test): Promise<{ mcp: DemoUpstream, sse: SseUpstream }> {
  const mcp = await startDemoUpstream()
  const sse = await SseUpstream.start()
  test.teardown(async () => await Promise.all([mcp.close(), sse.close()]))
  return { mcp, sse }
}

function everyRouteKind ({ mcp, sse }: { mcp: DemoUpstream, sse: SseUpstream }): McpSseResilienceOptions['routes'] {
  return [
    { kind: 'streamable-http', path: '/mcp', upstream: `${mcp.origin}/mcp` },
    { kind: 'legacy-sse', path: '/sse', messagesPath: '/messages', upstream: `${mcp.origin}/sse` },
    { kind: 'sse', path: '/events', upstream: sse.url() }
  ]
}

async function toolNames (test: Test, transport: StreamableHTTPClientTransport | SSEClientTransport): Promise<string[]> {
  const client = new Client({ name: 'prefix-test', version: '1.0.0' })
  await client.connect(transport)
  test.teardown(async () => await client.close())
  return (await client.listTools()).tools.map((tool) => tool.name).sort()
}

const TOOLS = ['announce', 'countdown', 'echo']

t.test('prefix: every route, the legacy endpoint event and the metrics path move under it', async (t) => {
  const up = await upstreams(t)
  const host = await startHost(t, async (app) => await app.register(mcpSseResilience, { prefix: '/proxy', routes: everyRouteKind(up) }))

  t.same(await toolNames(t, new StreamableHTTPClientTransport(new URL(host.url('/proxy/mcp')))), TOOLS, 'streamable-http under the prefix')
  t.same(await toolNames(t, new SSEClientTransport(new URL(host.url('/proxy/sse')))), TOOLS, 'legacy-sse: the SDK client posts where the endpoint event says')
  const legacy = await SseClient.open(host.url('/proxy/sse'))
  t.teardown(() => legacy.close())
  t.match((await legacy.waitForEvents(1))[0]?.data, /^\/proxy\/messages\?sessionId=[A-Za-z0-9_-]+$/)

  const events = await SseClient.open(host.url('/proxy/events'))
  t.teardown(() => events.close())
  await up.sse.waitForStreams(1)
  up.sse.broadcast('data: hello\n\n')
  t.equal((await events.waitForEvents(1))[0]?.data, 'hello')

  const metrics = await (await fetch(host.url('/proxy/metrics'))).text()
  t.match(metrics, /^sse_events_forwarded_total\{route_kind="sse",route="\/proxy\/events"\} 1$/m, 'labels name the paths clients use')
  for (const path of ['/mcp', '/sse', '/events', '/metrics']) t.equal((await fetch(host.url(path))).status, 404, `nothing at ${path}`)
})

t.test('prefix inside a host context that has a prefix of its own: the endpoint event names the whole path', async (t) => {
  const up = await upstreams(t)
  const host = await startHost(t, async (app) => {
    await app.register(async (api) => {
      await api.register(mcpSseResilience, { prefix: '/proxy/', routes: everyRouteKind(up) })
    }, { prefix: '/api' })
  })
  const legacy = await SseClient.open(host.url('/api/proxy/sse'))
  t.teardown(() => legacy.close())
  const endpoint = (await legacy.waitForEvents(1))[0]?.data ?? ''
  t.match(endpoint, /^\/api\/proxy\/messages\?sessionId=/)
  const posted = await fetch(host.url(endpoint), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }) })
  t.equal(posted.status, 202, 'the announced URL takes the POST')
  t.equal((await fetch(host.url('/api/proxy/metrics'))).status, 200)
})

t.test('a prefix of "/" or "" leaves the paths as they are; a route at "/" is served at the prefix itself', async (t) => {
  const up = await upstreams(t)
  for (const prefix of ['/', '']) {
    const host = await startHost(t, async (app) => await app.register(mcpSseResilience, { prefix, routes: everyRouteKind(up) }))
    const legacy = await SseClient.open(host.url('/sse'))
    t.teardown(() => legacy.close())
    t.match((await legacy.waitForEvents(1))[0]?.data, /^\/messages\?sessionId=/, `prefix ${JSON.stringify(prefix)}`)
  }
  const host = await startHost(t, async (app) => await app.register(mcpSseResilience, { prefix: '/feed/', routes: [{ kind: 'sse', path: '/', upstream: up.sse.url() }] }))
  const [feed] = await clientsReceiving(t, host, up.sse, ['/feed'], 'data: at the prefix\n\n', 1)
  t.equal(feed?.events[0]?.data, 'at the prefix')
})

interface LogLine { msg: string, reqId?: string, req?: unknown, level: number }

/** A host whose logger writes every line at INFO and up into `lines`. */
function recordingLogger (lines: LogLine[]): { level: string, stream: Writable } {
  return {
    level: 'info',
    stream: new Writable({
      write (chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line) as LogLine)
        done()
      }
    })
  }
}

t.test('logLevel and logSerializers apply to the plugin\'s routes, and only to them', async (t) => {
  const { sse } = await upstreams(t)
  const lines: LogLine[] = []
  const route = { kind: 'sse' as const, path: '/events', upstream: sse.url() }
  const host = await startHost(t, async (app) => {
    await app.register(mcpSseResilience, { prefix: '/quiet', logLevel: 'warn', routes: [route] })
    await app.register(mcpSseResilience, {
      prefix: '/described',
      logSerializers: { req: (request: { method: string, url: string }) => `${request.method} ${request.url} through the proxy` },
      routes: [route]
    })
    app.get('/hello', async () => 'hi')
  }, { logger: recordingLogger(lines) })

  for (const path of ['/quiet/events', '/described/events']) {
    const client = await SseClient.open(host.url(path))
    client.close()
    await client.ended
  }
  await fetch(host.url('/hello'))
  await new Promise((resolve) => setTimeout(resolve, 50))

  const incoming = lines.filter((line) => line.msg === 'incoming request').map((line) => line.req)
  t.same(incoming.filter((req) => JSON.stringify(req).includes('/quiet')), [], 'logLevel warn: no INFO request lines for its routes')
  t.ok(incoming.includes('GET /described/events through the proxy'), 'the serializer wrote the request line')
  t.ok(incoming.some((req) => (req as { url?: string }).url === '/hello'), 'the host\'s own routes keep its level and serializers')
})

t.test('register() options are checked with the plugin\'s, every problem at once; a config file still refuses them', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  const options = {
    routes: [{ kind: 'sse', path: '/events', upstream: 'http://127.0.0.1:1/events' }],
    prefix: 'proxy',
    logLevel: 5,
    logSerializers: { req: 'not a function' },
    metricsRegistry: { registerMetric: () => undefined },
    colour: 'red'
  }
  await t.rejects(async () => await app.register(mcpSseResilience, options as unknown as McpSseResilienceOptions), {
    code: 'FST_MCP_SSE_INVALID_CONFIG',
    message: [
      'Invalid fastify-mcp-sse-resilience options:',
      '  - prefix: must be a path starting with "/" (no query, fragment or spaces)',
      '  - logLevel: expected string',
      '  - logSerializers.req: expected function',
      '  - metricsRegistry: must be a prom-client Registry (an object with registerMetric and getSingleMetric methods)',
      '  - colour: unknown key'
    ].join('\n')
  })

  const logged = Fastify({ logger: { level: 'silent' } })
  t.teardown(async () => await logged.close())
  await t.rejects(async () => await logged.register(mcpSseResilience, { routes: options.routes as McpSseResilienceOptions['routes'], logLevel: 'loud' as 'info' }), {
    code: 'FST_MCP_SSE_INVALID_CONFIG',
    message: 'Invalid fastify-mcp-sse-resilience options:\n  - logLevel: must be a level of the logger (trace, debug, info, warn, error, fatal)'
  }, 'a level the logger does not know: one problem like the others, before anything is registered')

  const file = join(t.testdir(), 'proxy.yaml')
  await writeFile(file, 'prefix: /proxy\nroutes:\n  - kind: sse\n    path: /events\n    upstream: http://127.0.0.1:1/events\n')
  await t.rejects(loadConfigFile(file), { code: 'FST_MCP_SSE_INVALID_CONFIG', message: /- prefix: unknown key/ }, 'YAML has no register() options')
})
