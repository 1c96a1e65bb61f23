import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from '@modelcontextprotocol/client'
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { McpServer as V1McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { z } from 'zod'
import { BoundedEventStore } from './conformance/bounded-event-store.js'
import { startProxy, type RunningProxy } from './helpers/proxy.js'
import { startTcpRelay } from './helpers/tcp-relay.js'
import { COUNTER_URI, V2Upstream } from './helpers/v2-upstream.js'

const MODERN = '2026-07-28'
const PROXY_EVENT_ID = /^id: [A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{8}\.\d+$/m
// Short, so that a resume happens within the test, yet enough tries for a loaded machine.
const RECONNECTION = { initialReconnectionDelay: 20, maxReconnectionDelay: 200, reconnectionDelayGrowFactor: 1.5, maxRetries: 10 }

type Era = typeof MODERN | '2025-11-25'

/** What a client's fetch saw of one exchange: enough to tell sessions, resumes and proxy ids apart. */
interface Exchange {
  httpMethod: string
  /** The JSON-RPC method of a POST body; '' for GET and DELETE. */
  method: string
  lastEventId: string | null
  status: number
  sessionId: string | null
  /** What arrived of a tools/call answer, up to its end or its cut. */
  body?: Promise<string>
}

async function collect (response: Response): Promise<string> {
  const reader = response.body?.getReader()
  const decoder = new TextDecoder()
  let text = ''
  try {
    for (let chunk = await reader?.read(); chunk !== undefined && !chunk.done; chunk = await reader?.read()) text += decoder.decode(chunk.value, { stream: true })
  } catch {
    // A cut stream: what arrived before it is the answer.
  }
  return text
}

function recordingFetch (exchanges: Exchange[]): (url: string | URL, init?: RequestInit) => Promise<Response> {
  return async (url, init) => {
    const response = await fetch(url, init)
    const method = typeof init?.body === 'string' ? (JSON.parse(init.body) as { method?: string }).method ?? '' : ''
    exchanges.push({
      httpMethod: init?.method ?? 'GET',
      method,
      lastEventId: new Headers(init?.headers).get('last-event-id'),
      status: response.status,
      sessionId: response.headers.get('mcp-session-id'),
      body: method === 'tools/call' ? collect(response.clone()) : undefined
    })
    return response
  }
}

async function startV2Upstream (test: Test): Promise<V2Upstream> {
  const upstream = await V2Upstream.start()
  test.teardown(async () => await upstream.close())
  return upstream
}

async function proxyTo (test: Test, upstreamUrl: string): Promise<RunningProxy> {
  return await startProxy(test, { routes: [{ kind: 'streamable-http', path: '/mcp', upstream: upstreamUrl }], health: { heartbeatSeconds: 0 } })
}

async function connectV2 (test: Test, url: string, era: Era, exchanges: Exchange[] = []): Promise<{ client: V2Client, transport: V2Transport }> {
  const client = new V2Client({ name: 'sdk-v2-test', version: '1.0.0' }, era === MODERN ? { versionNegotiation: { mode: { pin: MODERN } } } : {})
  const transport = new V2Transport(new URL(url), { fetch: recordingFetch(exchanges), reconnectionOptions: RECONNECTION })
  await client.connect(transport)
  test.teardown(async () => await client.close())
  return { client, transport }
}

async function connectV1 (test: Test, url: string, exchanges: Exchange[] = []): Promise<{ client: V1Client, transport: V1Transport }> {
  const client = new V1Client({ name: 'sdk-v1-test', version: '1.0.0' })
  const transport = new V1Transport(new URL(url), { fetch: recordingFetch(exchanges), reconnectionOptions: RECONNECTION })
  await client.connect(transport)
  test.teardown(async () => await client.close())
  return { client, transport }
}

/** Polls: for what a client does on its own, in the background (its standalone GET). */
async function until (condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await sleep(10)
  }
}

const steps = (count: number): number[] => Array.from({ length: count }, (_, i) => i + 1)
const toolCalls = (upstream: V2Upstream): number => upstream.received.filter((message) => message.method === 'tools/call').length

/**
 * An SDK v1 server with sessions, as most MCP servers of the 2025 era run: a session per
 * initialize, each with its own bounded event store, and the same `echo` and `progress`
 * tools as the v2 upstream.
 */
async function startV1Upstream (test: Test): Promise<{ url: string, sessionIds: string[] }> {
  const sessions = new Map<string, StreamableHTTPServerTransport>()
  const sessionIds: string[] = []
  const newServer = (): V1McpServer => {
    const server = new V1McpServer({ name: 'v1-upstream', version: '1.0.0' })
    server.registerTool('echo', { inputSchema: { text: z.string() } }, async ({ text }) => ({ content: [{ type: 'text', text }] }))
    server.registerTool('progress', { inputSchema: { steps: z.number(), delayMs: z.number() } }, async ({ steps, delayMs }, extra) => {
      const token = extra._meta?.progressToken
      for (let step = 1; step <= steps; step++) {
        await sleep(delayMs)
        if (token !== undefined) await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: step, total: steps } })
      }
      return { content: [{ type: 'text', text: `done ${steps}` }] }
    })
    return server
  }
  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const sessionId = request.headers['mcp-session-id']
    const existing = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined
    if (existing !== undefined) {
      await existing.handleRequest(request, response)
      return
    }
    if (typeof sessionId === 'string' || request.method !== 'POST') {
      response.writeHead(typeof sessionId === 'string' ? 404 : 400, { 'content-type': 'application/json' })
      response.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: 'No such session' }, id: null }))
      return
    }
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: randomUUID,
      eventStore: new BoundedEventStore(1000),
      onsessioninitialized: (id) => {
        sessions.set(id, transport)
        sessionIds.push(id)
      }
    })
    await newServer().connect(transport)
    await transport.handleRequest(request, response)
  }
  const server = createServer((request, response) => {
    handle(request, response).catch(() => response.destroy())
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  test.teardown(async () => {
    await Promise.all([...sessions.values()].map(async (transport) => await transport.close()))
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, sessionIds }
}

for (const era of [MODERN, '2025-11-25'] as const) {
  t.test(`an SDK v2 client speaking ${era}, through the proxy, to an SDK v2 upstream: tools, a call with progress, its result`, async (t) => {
    const upstream = await startV2Upstream(t)
    const proxy = await proxyTo(t, upstream.url)
    const exchanges: Exchange[] = []
    const { client, transport } = await connectV2(t, proxy.url('/mcp'), era, exchanges)
    t.equal(client.getNegotiatedProtocolVersion(), era)

    const { tools } = await client.listTools()
    t.same(tools.map((tool) => tool.name).sort(), ['echo', 'progress', 'slow'])
    const progress: number[] = []
    const result = await client.callTool({ name: 'progress', arguments: { steps: 8, delayMs: 10 } }, { onprogress: (update) => progress.push(update.progress) })
    t.same(progress, steps(8), 'every progress notification once, in order')
    t.same(result.content, [{ type: 'text', text: 'done 8' }])
    t.same(upstream.received.filter((message) => message.method === 'tools/call'), [{ method: 'tools/call', name: 'progress' }], 'one upstream call')

    const call = exchanges.find((exchange) => exchange.method === 'tools/call')
    const body = await call?.body ?? ''
    if (era === MODERN) {
      t.equal(transport.sessionId, undefined, 'no session')
      t.same(exchanges.filter((exchange) => exchange.sessionId !== null), [], 'no Mcp-Session-Id on any answer')
      t.notMatch(body, PROXY_EVENT_ID, 'no proxy ids: a 2026-07-28 stream is not resumable')
      t.same(exchanges.filter((exchange) => exchange.httpMethod === 'GET'), [], 'the client opens no GET stream')
    } else {
      t.match(body, PROXY_EVENT_ID, 'proxy ids on the call\'s stream: the client can resume it')
      await until(() => exchanges.some((exchange) => exchange.httpMethod === 'GET'))
      t.same(exchanges.filter((exchange) => exchange.httpMethod === 'GET').map((exchange) => exchange.status), [405], 'its standalone GET gets the upstream\'s 405, which the client accepts')
      await t.rejects(client.listen({ resourceSubscriptions: [COUNTER_URI] }), /requires a 2026-07-28-era connection/, 'no listen on a 2025-era connection')
      t.notOk(upstream.received.some((message) => message.method === 'subscriptions/listen'))
    }
  })
}

t.test('MCP 2026-07-28 through the proxy: a GET is answered 405, as the SDK v2 upstream does', async (t) => {
  const upstream = await startV2Upstream(t)
  const proxy = await proxyTo(t, upstream.url)
  for (const target of [upstream.url, proxy.url('/mcp')]) {
    const response = await fetch(target, { headers: { accept: 'text/event-stream', 'mcp-protocol-version': MODERN } })
    t.equal(response.status, 405, target === upstream.url ? 'directly' : 'through the proxy')
    t.equal(response.headers.get('allow'), 'POST')
    t.match(await response.json(), { jsonrpc: '2.0', error: { code: -32000 } })
  }
})

t.test('MCP 2026-07-28 through the proxy: a subscriptions/listen stream with a resource filter receives notifications/resources/updated', async (t) => {
  const upstream = await startV2Upstream(t)
  const proxy = await proxyTo(t, upstream.url)
  const { client } = await connectV2(t, proxy.url('/mcp'), MODERN)
  const updates: string[] = []
  let updated: () => void = () => {}
  const twoUpdates = new Promise<void>((resolve) => { updated = resolve })
  client.setNotificationHandler('notifications/resources/updated', (notification) => {
    updates.push(notification.params.uri)
    if (updates.length === 2) updated()
  })
  const subscription = await client.listen({ resourceSubscriptions: [COUNTER_URI] })
  t.same(subscription.honoredFilter, { resourceSubscriptions: [COUNTER_URI] }, 'acknowledged through the proxy')
  upstream.notify.resourceUpdated('demo://not-subscribed')
  upstream.notify.resourceUpdated(COUNTER_URI)
  upstream.notify.resourceUpdated(COUNTER_URI)
  await twoUpdates
  t.same(updates, [COUNTER_URI, COUNTER_URI], 'each update once, and none for a resource it did not ask for')
  await subscription.close()
  t.equal(await subscription.closed, 'local')
})

t.test('an SDK v1 client, through the proxy, to an SDK v2 upstream: tools, a call with progress, its result', async (t) => {
  const upstream = await startV2Upstream(t)
  const proxy = await proxyTo(t, upstream.url)
  const { client } = await connectV1(t, proxy.url('/mcp'))
  const { tools } = await client.listTools()
  t.same(tools.map((tool) => tool.name).sort(), ['echo', 'progress', 'slow'])
  t.same((await client.callTool({ name: 'echo', arguments: { text: 'hi' } })).content, [{ type: 'text', text: 'hi' }])
  const progress: number[] = []
  const result = await client.callTool({ name: 'progress', arguments: { steps: 8, delayMs: 10 } }, undefined, { onprogress: (update) => progress.push(update.progress) })
  t.same(progress, steps(8))
  t.same(result.content, [{ type: 'text', text: 'done 8' }])
  t.same(upstream.received.filter((message) => message.method === 'initialize').length, 1, 'the upstream saw the 2025 handshake')
})

t.test('an SDK v2 client speaking 2025-11-25, through the proxy, to an SDK v1 upstream with sessions: the proxy\'s session, tools, progress, result', async (t) => {
  const upstream = await startV1Upstream(t)
  const proxy = await proxyTo(t, upstream.url)
  const { client, transport } = await connectV2(t, proxy.url('/mcp'), '2025-11-25')
  t.equal(upstream.sessionIds.length, 1, 'one upstream session')
  t.type(transport.sessionId, 'string')
  t.not(transport.sessionId, upstream.sessionIds[0], 'the client holds the proxy\'s session id, never the upstream\'s')
  const { tools } = await client.listTools()
  t.same(tools.map((tool) => tool.name).sort(), ['echo', 'progress'])
  const progress: number[] = []
  const result = await client.callTool({ name: 'progress', arguments: { steps: 8, delayMs: 10 } }, { onprogress: (update) => progress.push(update.progress) })
  t.same(progress, steps(8))
  t.same(result.content, [{ type: 'text', text: 'done 8' }])
})

t.test('an SDK v2 client pinned to 2026-07-28, through the proxy, to an SDK v1 upstream: connect fails loudly; in auto mode it falls back to 2025-11-25', async (t) => {
  const upstream = await startV1Upstream(t)
  const proxy = await proxyTo(t, upstream.url)
  await t.rejects(connectV2(t, proxy.url('/mcp'), MODERN), { code: 'ERA_NEGOTIATION_FAILED' }, 'no silent downgrade of a pinned client')
  t.equal(upstream.sessionIds.length, 0)

  const client = new V2Client({ name: 'sdk-v2-auto', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } })
  await client.connect(new V2Transport(new URL(proxy.url('/mcp'))))
  t.teardown(async () => await client.close())
  t.equal(client.getNegotiatedProtocolVersion(), '2025-11-25')
  t.same((await client.callTool({ name: 'echo', arguments: { text: 'hi' } })).content, [{ type: 'text', text: 'hi' }])
})

// The SDK v2 server answers 2025-era clients statelessly: no session, no event store, so its
// streams carry no ids and a client has nothing to resume from. The proxy's ids and history
// are what make the call survive.
for (const sdk of ['v1', 'v2'] as const) {
  t.test(`old clients, new servers: an SDK ${sdk} client speaking 2025-11-25 whose POST stream is cut twice mid-call completes through the proxy, with nothing lost, repeated or re-run`, async (t) => {
    const upstream = await startV2Upstream(t)
    const proxy = await proxyTo(t, upstream.url)
    const relay = await startTcpRelay(t, (proxy.app.server.address() as AddressInfo).port)
    const url = `http://127.0.0.1:${relay.port}/mcp`
    const exchanges: Exchange[] = []
    const { client } = sdk === 'v1' ? await connectV1(t, url, exchanges) : await connectV2(t, url, '2025-11-25', exchanges)

    const progress: number[] = []
    const cutAt = new Set([6, 13])
    const onprogress = (update: { progress: number }): void => {
      progress.push(update.progress)
      if (cutAt.delete(update.progress)) relay.cutAll()
    }
    const call = { name: 'progress', arguments: { steps: 20, delayMs: 30 } }
    const result = sdk === 'v1'
      ? await (client as V1Client).callTool(call, undefined, { onprogress, timeout: 30_000 })
      : await (client as V2Client).callTool(call, { onprogress, timeout: 30_000 })

    t.equal(cutAt.size, 0, 'both cuts happened mid-call')
    t.same(progress, steps(20), 'every progress notification exactly once, in order')
    t.same(result.content, [{ type: 'text', text: 'done 20' }])
    t.equal(toolCalls(upstream), 1, 'the upstream ran the call once')
    const resumes = exchanges.filter((exchange) => exchange.httpMethod === 'GET' && exchange.lastEventId !== null)
    t.ok(resumes.length >= 2, 'the client resumed with GET and Last-Event-ID, once per cut at least')
    t.same(resumes.filter((exchange) => exchange.status !== 200), [], 'every resume was served')
    const metrics = await (await fetch(proxy.url('/metrics'))).text()
    const hits = /sse_last_event_id_hits_total\{route_kind="streamable-http",route="\/mcp"\} (\d+)/.exec(metrics)?.[1]
    t.ok(Number(hits) >= 2, 'the proxy served each resume from its history')
  })
}

for (const sdk of ['v1', 'v2'] as const) {
  t.test(`old clients, new servers, without the proxy: an SDK ${sdk} client speaking 2025-11-25, straight to the SDK v2 upstream, loses a call whose stream is cut once`, async (t) => {
    const upstream = await startV2Upstream(t)
    const relay = await startTcpRelay(t, upstream.port)
    const url = `http://127.0.0.1:${relay.port}/mcp`
    const exchanges: Exchange[] = []
    const { client } = sdk === 'v1' ? await connectV1(t, url, exchanges) : await connectV2(t, url, '2025-11-25', exchanges)

    const progress: number[] = []
    let cut = false
    const onprogress = (update: { progress: number }): void => {
      progress.push(update.progress)
      if (update.progress === 6 && !cut) {
        cut = true
        relay.cutAll()
      }
    }
    const call = { name: 'progress', arguments: { steps: 20, delayMs: 30 } }
    const called: Promise<unknown> = sdk === 'v1'
      ? (client as V1Client).callTool(call, undefined, { onprogress, timeout: 2000 })
      : (client as V2Client).callTool(call, { onprogress, timeout: 2000 })
    // Each SDK's request timeout: McpError RequestTimeout (v1), SdkError REQUEST_TIMEOUT (v2).
    await t.rejects(called, { code: sdk === 'v1' ? -32001 : 'REQUEST_TIMEOUT' }, 'the call never gets its result: it times out')
    t.ok(cut)
    t.same(progress, steps(progress.length), 'what arrived before the cut, in order')
    t.ok(progress.length < 20, 'the rest of the progress is lost')
    const received = await exchanges.find((exchange) => exchange.method === 'tools/call')?.body ?? ''
    t.match(received, /notifications\/progress/)
    t.notMatch(received, /^id:/m, 'the upstream\'s stream carries no event ids')
    t.same(exchanges.filter((exchange) => exchange.lastEventId !== null), [], 'so the client has nothing to resume from, and does not try')
  })
}
