import t, { type Test } from 'tap'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { PromptListChangedNotificationSchema, ResourceListChangedNotificationSchema, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js'
import { startDemoUpstream, type DemoUpstream } from '../examples/demo/mcp-server.js'
import type { McpSseResilienceOptions } from '../lib/index.js'
import type { SseEvent } from '../lib/wire/sse-event.js'
import { CountingUpstream } from './helpers/counting-upstream.js'
import { openMcpSession, openMcpSessionWithStream, waitForNumber } from './helpers/numbered-events.js'
import { startProxy } from './helpers/proxy.js'
import { RecordingMcpUpstream } from './helpers/recording-mcp-upstream.js'
import { SseClient } from './helpers/sse-client.js'
import { SseUpstream } from './helpers/sse-upstream.js'

// An upstream that the proxy reconnects may not send again what it sent meanwhile. Unless the
// route says it does (routes[].upstreamReplays), the client is told in the stream, where the gap is.

type Extra = Omit<McpSseResilienceOptions, 'routes'>
const FAST_RECONNECT = { reconnect: { baseDelayMs: 20, jitter: 0 } }

const isGapNotice = (event: SseEvent | undefined): boolean => event?.event === 'resume-status'
const dataOf = (client: SseClient): string[] => client.events.map((event) => isGapNotice(event) ? 'gap' : event.data)

async function metricsOf (url: string): Promise<string> {
  return await (await fetch(url)).text()
}

async function waitFor (what: string, done: () => boolean | Promise<boolean>, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

async function sseProxy (test: Test, upstream: SseUpstream | CountingUpstream, route: { upstreamReplays?: boolean } = {}, extra: Extra = {}) {
  return await startProxy(test, { routes: [{ kind: 'sse', path: '/events', upstream: upstream.url(), ...route }], ...FAST_RECONNECT, ...extra })
}

t.test('an sse upstream that cannot replay drops: a notice goes into the stream where the gap is, with a proxy id, and is counted', async (t) => {
  const upstream = await SseUpstream.start()
  t.teardown(async () => await upstream.close())
  const proxy = await sseProxy(t, upstream)
  const client = await SseClient.open(proxy.url('/events'))
  t.teardown(() => client.close())
  await upstream.waitForStreams(1)
  upstream.broadcast('id: 1\ndata: 1\n\nid: 2\ndata: 2\n\n')
  await client.waitForEvents(2)
  for (const stream of upstream.streams) stream.destroy()
  await upstream.waitForRequests(2)
  upstream.broadcast('id: 5\ndata: 5\n\n')
  const events = await client.waitForEvents(4)
  t.same(dataOf(client), ['1', '2', 'gap', '5'])
  t.same(JSON.parse(events[2]?.data ?? ''), { recovered: false, reason: 'upstream-gap', cause: 'failed' })
  t.match(events[2]?.id, /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{8}\.3$/, 'the notice has its place in the stream')
  t.equal(upstream.requests[1]?.headers['last-event-id'], '2', 'the upstream was asked to resume all the same')
  t.match(await metricsOf(proxy.url('/metrics')), /sse_upstream_gaps_total\{route_kind="sse",route="\/events",cause="failed"\} 1/)
})

t.test('a resume from before the gap replays the notice in its place, and the header counts it', async (t) => {
  const upstream = await SseUpstream.start()
  t.teardown(async () => await upstream.close())
  const proxy = await sseProxy(t, upstream)
  const first = await SseClient.open(proxy.url('/events'))
  await upstream.waitForStreams(1)
  upstream.broadcast('data: 1\n\n')
  const [one] = await first.waitForEvents(1)
  first.close()
  await first.ended
  upstream.broadcast('data: 2\n\n')
  // A clean close, as a load balancer's idle cut or a restart looks upstream.
  for (const stream of upstream.streams) stream.end()
  await upstream.waitForRequests(2)
  upstream.broadcast('data: 9\n\n')
  await waitFor('the event after the gap to be recorded', async () => /sse_history_events 4/.test(await metricsOf(proxy.url('/metrics'))))
  const resumed = await SseClient.open(proxy.url('/events'), { 'last-event-id': one?.id ?? '' })
  t.teardown(() => resumed.close())
  t.equal(resumed.headers['x-resume-status'], 'recovered; upstream-gaps=1')
  await resumed.waitForEvents(3)
  t.same(dataOf(resumed), ['2', 'gap', '9'])
  t.equal(JSON.parse(resumed.events[1]?.data ?? '').cause, 'ended')
})

t.test('upstreamReplays: true, an upstream that does replay: no notice, no gap, every event once', async (t) => {
  const upstream = await CountingUpstream.start({ replays: true, intervalMs: 5 })
  t.teardown(async () => await upstream.close())
  const proxy = await sseProxy(t, upstream, { upstreamReplays: true })
  const client = await SseClient.open(proxy.url('/events'))
  t.teardown(() => client.close())
  await waitForNumber(client, 10)
  upstream.server.closeAllConnections()
  await upstream.waitForConnections(2)
  await waitForNumber(client, 30)
  t.notOk(client.events.some(isGapNotice), 'no notice')
  t.ok(client.events.every((event, index) => Number(event.data) === index + 1), 'every number once, in order')
  t.notMatch(await metricsOf(proxy.url('/metrics')), /sse_upstream_gaps_total\{/)
})

t.test('a stalled upstream that is replaced: the notice says so', async (t) => {
  const upstream = await SseUpstream.start()
  t.teardown(async () => await upstream.close())
  const proxy = await sseProxy(t, upstream, {}, { health: { idleTimeoutSeconds: 1, heartbeatSeconds: 0 } })
  const client = await SseClient.open(proxy.url('/events'))
  t.teardown(() => client.close())
  await upstream.waitForStreams(1)
  upstream.broadcast('data: 1\n\n')
  const events = await client.waitForEvents(2, 5000)
  t.same(JSON.parse(events[1]?.data ?? ''), { recovered: false, reason: 'upstream-gap', cause: 'stalled' })
})

async function mcpProxy (test: Test, upstream: RecordingMcpUpstream, route: { upstreamReplays?: boolean } = {}) {
  return await startProxy(test, { routes: [{ kind: 'streamable-http', path: '/mcp', upstream: `${upstream.origin}/mcp`, ...route }], ...FAST_RECONNECT, health: { heartbeatSeconds: 0 } })
}

const methodsOf = (events: readonly SseEvent[]): string[] => events.map((event) => isGapNotice(event) ? 'gap' : (JSON.parse(event.data || '{}') as { method?: string }).method ?? 'priming')

t.test('an MCP standalone stream: the notice, then the list_changed notifications the server announced, and resources/updated for each subscription', async (t) => {
  const upstream = await RecordingMcpUpstream.start()
  t.teardown(async () => await upstream.close())
  upstream.capabilities = { tools: { listChanged: true }, prompts: {}, resources: { subscribe: true, listChanged: true } }
  const proxy = await mcpProxy(t, upstream)
  const { headers, standalone } = await openMcpSessionWithStream(t, proxy.url('/mcp'))
  const subscribed = await fetch(proxy.url('/mcp'), { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'resources/subscribe', params: { uri: 'file:///a.txt' } }) })
  await subscribed.text()
  const standaloneStreams = (): number => upstream.requests.filter((request) => request.method === 'GET').length
  for (const stream of upstream.streams) stream.destroy()
  await waitFor('the standalone stream to reconnect', () => standaloneStreams() === 2)
  const events = await standalone.waitForEvents(5)
  await new Promise((resolve) => setTimeout(resolve, 100))
  // The reconnected stream's priming event has the upstream id of the first one's: it is the same event.
  t.same(methodsOf(standalone.events.slice(1)), ['gap', 'notifications/tools/list_changed', 'notifications/resources/list_changed', 'notifications/resources/updated'],
    'prompts announced no listChanged: no prompts/list_changed')
  t.same(JSON.parse(events[4]?.data ?? '').params, { uri: 'file:///a.txt' })
  t.ok(events.every((event) => /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{8}\.\d+$/.test(event.id ?? '')), 'each with its proxy id')
})

t.test('a session the upstream lost and the proxy opened again: a gap even where the upstream replays, and its new capabilities apply', async (t) => {
  const upstream = await RecordingMcpUpstream.start()
  t.teardown(async () => await upstream.close())
  const proxy = await mcpProxy(t, upstream, { upstreamReplays: true })
  const { standalone } = await openMcpSessionWithStream(t, proxy.url('/mcp'))
  // A restart: the sessions are gone, with their streams, and the new process announces more.
  upstream.capabilities = { prompts: { listChanged: true } }
  upstream.forgetSessions()
  for (const stream of upstream.streams) stream.destroy()
  const events = await standalone.waitForEvents(3)
  t.same(methodsOf(events.slice(1)), ['gap', 'notifications/prompts/list_changed'])
  t.equal(JSON.parse(events[1]?.data ?? '').cause, 'session-reestablished')
  t.match(await metricsOf(proxy.url('/metrics')), /sse_upstream_gaps_total\{route_kind="streamable-http",route="\/mcp",cause="session-reestablished"\} 1/)
})

t.test('an MCP POST stream that reconnects gets the notice only: its lost messages have no protocol equivalent', async (t) => {
  let calls = 0
  const upstream = await SseUpstream.start((request, response) => {
    calls++
    upstream.openStream(request, response, calls === 1 ? { 'mcp-session-id': 'up-1' } : {})
    if (calls === 1) {
      response.end('id: a\ndata: {"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{"listChanged":true}},"serverInfo":{"name":"u","version":"1"}}}\n\n')
    } else if (calls === 2) {
      response.write('id: b\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}\n\n')
      setTimeout(() => response.destroy(), 50)
    } else {
      response.end('id: c\ndata: {"jsonrpc":"2.0","id":2,"result":{}}\n\n')
    }
  })
  t.teardown(async () => await upstream.close())
  const proxy = await startProxy(t, { routes: [{ kind: 'streamable-http', path: '/mcp', upstream: upstream.url('/mcp') }], ...FAST_RECONNECT })
  const { headers } = await openMcpSession(proxy.url('/mcp'))
  const call = await fetch(proxy.url('/mcp'), { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'x' } }) })
  const text = await call.text()
  const kinds = [...text.matchAll(/^(event: (.+)\n)?id: .+\ndata: (.+)$/gm)].map((match) => match[2] === 'resume-status' ? 'gap' : JSON.parse(match[3] ?? '{}').method ?? 'result')
  t.same(kinds, ['notifications/progress', 'gap', 'result'], 'no list_changed on a request\'s stream')
})

async function restartableSdkUpstream (test: Test) {
  let upstream: DemoUpstream = await startDemoUpstream()
  test.teardown(async () => await upstream.close())
  const port = Number(new URL(upstream.origin).port)
  const proxy = await startProxy(test, { routes: [{ kind: 'streamable-http', path: '/mcp', upstream: `${upstream.origin}/mcp` }], ...FAST_RECONNECT })
  return {
    proxy,
    async restart () {
      await upstream.close()
      upstream = await startDemoUpstream(port)
    }
  }
}

t.test('the MCP SDK client learns, in MCP terms, that its tool list may have changed while the upstream restarted', async (t) => {
  const { proxy, restart } = await restartableSdkUpstream(t)
  const client = new Client({ name: 'gap-test', version: '1.0.0' })
  const transport = new StreamableHTTPClientTransport(new URL(proxy.url('/mcp')))
  transport.onerror = () => {}
  await client.connect(transport)
  t.teardown(async () => await client.close().catch(() => {}))
  let toolListChanges = 0
  let otherListChanges = 0
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => { toolListChanges++ })
  client.setNotificationHandler(PromptListChangedNotificationSchema, () => { otherListChanges++ })
  client.setNotificationHandler(ResourceListChangedNotificationSchema, () => { otherListChanges++ })
  await waitFor('the standalone stream', async () => /sse_streams_active\{route_kind="streamable-http",route="\/mcp"\} 1/.test(await metricsOf(proxy.url('/metrics'))))
  await restart()
  // No call of the client's, and no notification from the new upstream: the proxy's own.
  await waitFor('a tools/list_changed', () => toolListChanges === 1)
  const listed = await client.listTools()
  t.ok(listed.tools.some((tool) => tool.name === 'echo'), 'the client can refetch at once')
  t.equal(otherListChanges, 0, 'the server announces no prompt or resource list changes')
})

t.test('legacy-sse: a reconnect into a new upstream session tells the client what it lost, in MCP terms', async (t) => {
  const upstream = await RecordingMcpUpstream.start()
  t.teardown(async () => await upstream.close())
  upstream.capabilities = { tools: { listChanged: true } }
  const proxy = await startProxy(t, {
    routes: [{ kind: 'legacy-sse', path: '/sse', messagesPath: '/messages', upstream: `${upstream.origin}/sse`, upstreamReplays: true }],
    ...FAST_RECONNECT,
    health: { heartbeatSeconds: 0 }
  })
  const client = await SseClient.open(proxy.url('/sse'))
  t.teardown(() => client.close())
  const [endpoint] = await client.waitForEvents(1)
  const initialize = await fetch(proxy.url(endpoint?.data ?? ''), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } })
  })
  t.equal(initialize.status, 202)
  await client.waitForEvents(2)
  for (const stream of upstream.streams) stream.destroy()
  const events = await client.waitForEvents(4)
  t.same(methodsOf(events.slice(2)), ['gap', 'notifications/tools/list_changed'])
  t.equal(JSON.parse(events[2]?.data ?? '').cause, 'session-reestablished', 'the upstream named a new endpoint: a new session')
  const after = await fetch(proxy.url(endpoint?.data ?? ''), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":2,"method":"tools/list"}' })
  t.equal(after.status, 202, 'the client refetches through its endpoint, in the new session')
})

t.test('an initialize answer larger than limits.maxEventBytes is not read: the session still reopens, and the notice alone is sent', async (t) => {
  const upstream = await RecordingMcpUpstream.start()
  t.teardown(async () => await upstream.close())
  upstream.capabilities = { tools: { listChanged: true }, experimental: { blob: 'x'.repeat(4096) } }
  const proxy = await startProxy(t, { routes: [{ kind: 'streamable-http', path: '/mcp', upstream: `${upstream.origin}/mcp` }], ...FAST_RECONNECT, limits: { maxEventBytes: 1024 }, health: { heartbeatSeconds: 0 } })
  const { standalone } = await openMcpSessionWithStream(t, proxy.url('/mcp'))
  upstream.forgetSessions()
  for (const stream of upstream.streams) stream.destroy()
  await standalone.waitForEvents(2)
  await waitFor('the session to be opened again', async () => /sse_sessions_reestablished_total\{[^}]*\} 1/.test(await metricsOf(proxy.url('/metrics'))))
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.same(methodsOf(standalone.events.slice(1)), ['gap'], 'nothing said of lists the proxy could not read')
  t.equal(upstream.sessionIds.length, 2)
})
