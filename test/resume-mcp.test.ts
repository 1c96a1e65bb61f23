import t, { type Test } from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo, Socket } from 'node:net'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { EventSource } from 'eventsource'
import { startDemoUpstream } from '../examples/demo/mcp-server.js'
import type { McpSseResilienceOptions } from '../lib/index.js'
import { SseClient } from './helpers/sse-client.js'
import { startProxy, type RunningProxy } from './helpers/proxy.js'

const MCP_ACCEPT = 'application/json, text/event-stream'

/** Every client connection the proxy holds, so that a test can cut them all at once. */
function trackClientSockets (proxy: RunningProxy): Set<Socket> {
  const sockets = new Set<Socket>()
  proxy.app.server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  return sockets
}

async function setupStreamable (test: Test, extra: Omit<McpSseResilienceOptions, 'routes'> = {}) {
  const upstream = await startDemoUpstream()
  test.teardown(async () => await upstream.close())
  const proxy = await startProxy(test, { routes: [{ kind: 'streamable-http', path: '/mcp', upstream: `${upstream.origin}/mcp` }], ...extra })
  return { upstream, proxy }
}

async function initialize (proxy: RunningProxy): Promise<string> {
  const response = await fetch(proxy.url('/mcp'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: MCP_ACCEPT },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } })
  })
  await response.text()
  const sessionId = response.headers.get('mcp-session-id') ?? ''
  await fetch(proxy.url('/mcp'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: MCP_ACCEPT, 'mcp-session-id': sessionId },
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })
  })
  return sessionId
}

t.test('an SDK client whose POST stream is cut mid tool call resumes it, through a GET with Last-Event-ID; every notification arrives once', async (t) => {
  const { proxy } = await setupStreamable(t)
  const sockets = trackClientSockets(proxy)
  const client = new Client({ name: 'resume-test', version: '1.0.0' })
  const transport = new StreamableHTTPClientTransport(new URL(proxy.url('/mcp')), {
    reconnectionOptions: { initialReconnectionDelay: 50, maxReconnectionDelay: 500, reconnectionDelayGrowFactor: 1.5, maxRetries: 5 }
  })
  await client.connect(transport)
  t.teardown(async () => await client.close())

  const progress: number[] = []
  let cut = false
  const result = await client.callTool(
    { name: 'countdown', arguments: { steps: 30, intervalMs: 40 } },
    undefined,
    {
      onprogress: (update) => {
        progress.push(update.progress)
        if (update.progress === 5 && !cut) {
          cut = true
          for (const socket of sockets) socket.destroy()
        }
      },
      timeout: 20000
    }
  )
  t.ok(cut, 'the connections were cut mid-call')
  t.same(progress, Array.from({ length: 30 }, (_, i) => i + 1), 'every progress notification once, in order')
  t.same(result.content, [{ type: 'text', text: 'liftoff' }], 'then the result')
  const metrics = await (await fetch(proxy.url('/metrics'))).text()
  t.match(metrics, /sse_client_reconnections_total\{route_kind="streamable-http",route="\/mcp"\} [1-9]/)
})

t.test('a POST stream that finished while its client was away: a resume replays the rest, then closes', async (t) => {
  const { proxy } = await setupStreamable(t)
  const sessionId = await initialize(proxy)
  const response = await fetch(proxy.url('/mcp'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: MCP_ACCEPT, 'mcp-session-id': sessionId },
    body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'countdown', arguments: { steps: 6, intervalMs: 30 }, _meta: { progressToken: 'p' } } })
  })
  const reader = response.body!.getReader()
  let text = ''
  while (!text.includes('"progress":2')) text += new TextDecoder().decode((await reader.read()).value)
  await reader.cancel()
  const ids = [...text.matchAll(/^id: (.+)$/gm)].map((match) => match[1])
  const lastId = ids.at(-1) ?? ''
  await new Promise((resolve) => setTimeout(resolve, 400))

  const started = Date.now()
  const resumed = await SseClient.open(proxy.url('/mcp'), { 'mcp-session-id': sessionId, 'last-event-id': lastId })
  await resumed.ended
  t.ok(Date.now() - started < 5000, 'the finished stream closes as soon as it is replayed')
  t.equal(resumed.headers['x-resume-status'], 'recovered')
  const messages = resumed.events.map((event) => JSON.parse(event.data) as { params?: { progress: number }, result?: unknown, id?: number })
  const seenBefore = (text.match(/"progress":(\d+)/g) ?? []).length
  t.same(messages.filter((message) => message.params !== undefined).map((message) => message.params?.progress), Array.from({ length: 6 - seenBefore }, (_, i) => seenBefore + i + 1))
  t.match(messages.at(-1), { id: 7, result: { content: [{ text: 'liftoff' }] } }, 'the JSON-RPC response, last')
})

t.test('an id from session A, presented with session B, yields none of A\'s events', async (t) => {
  const { proxy } = await setupStreamable(t)
  const sessionA = await initialize(proxy)
  const sessionB = await initialize(proxy)
  const onA = await fetch(proxy.url('/mcp'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: MCP_ACCEPT, 'mcp-session-id': sessionA },
    body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'countdown', arguments: { steps: 3, intervalMs: 0 }, _meta: { progressToken: 'secret-of-a' } } })
  })
  const textA = await onA.text()
  const idOfA = /^id: (.+)$/m.exec(textA)?.[1] ?? ''
  t.match(idOfA, /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{8}\.1$/)

  for (const headers of [{ 'mcp-session-id': sessionB }, {}] as Array<Record<string, string>>) {
    const stolen = await SseClient.open(proxy.url('/mcp'), { ...headers, 'last-event-id': idOfA })
    t.teardown(() => stolen.close())
    await new Promise((resolve) => setTimeout(resolve, 100))
    t.notMatch(JSON.stringify(stolen.events), 'secret-of-a', 'none of A\'s events')
    t.notMatch(JSON.stringify(stolen.events), 'liftoff')
    if (stolen.status === 200) t.equal(stolen.headers['x-resume-status'], 'unrecoverable; reason=unknown', 'told exactly as for an id that does not exist')
  }
})

t.test('a GET with an id this session cannot serve gets its standalone stream, live, with the explicit answer', async (t) => {
  const { proxy } = await setupStreamable(t)
  const sessionId = await initialize(proxy)
  const stream = await SseClient.open(proxy.url('/mcp'), { 'mcp-session-id': sessionId, 'last-event-id': 'AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAA.9' })
  t.teardown(() => stream.close())
  t.equal(stream.status, 200)
  t.equal(stream.headers['x-resume-status'], 'unrecoverable; reason=store-reset')
  const [notice] = await stream.waitForEvents(1)
  t.same(JSON.parse(notice?.data ?? '{}'), { recovered: false, reason: 'store-reset' })
  await fetch(proxy.url('/mcp'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: MCP_ACCEPT, 'mcp-session-id': sessionId },
    body: JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'announce', arguments: {} } })
  }).then(async (response) => await response.text())
  const [, announced] = await stream.waitForEvents(2)
  t.match(JSON.parse(announced?.data ?? '{}'), { method: 'notifications/tools/list_changed' }, 'the standalone stream is live')
})

t.test('sessions.maxStreamsPerSession: one live stream too many gets 429', async (t) => {
  const { proxy } = await setupStreamable(t, { sessions: { maxStreamsPerSession: 1 } })
  const sessionId = await initialize(proxy)
  const standalone = await SseClient.open(proxy.url('/mcp'), { 'mcp-session-id': sessionId })
  t.teardown(() => standalone.close())
  t.equal(standalone.status, 200, 'the finished initialize stream made room for the standalone stream')
  const refused = await fetch(proxy.url('/mcp'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: MCP_ACCEPT, 'mcp-session-id': sessionId },
    body: JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hi' } } })
  })
  t.equal(refused.status, 429)
  t.match(await refused.json(), { error: { data: { code: 'FST_MCP_SSE_TOO_MANY_STREAMS' } } })
})

t.test('MCP 2026-07-28: closing the stream cancels the upstream request at once, keeps nothing, and Last-Event-ID is not the proxy\'s', async (t) => {
  const requests: IncomingMessage[] = []
  const responses: ServerResponse[] = []
  const upstream = createServer((request, response) => {
    requests.push(request)
    responses.push(response)
    request.on('error', () => {})
    if (request.method === 'GET') {
      response.writeHead(405).end()
      return
    }
    response.writeHead(200, { 'content-type': 'text/event-stream' })
    const timer = setInterval(() => response.write('data: {"jsonrpc":"2.0","method":"notifications/progress","params":{}}\n\n'), 20)
    response.once('close', () => clearInterval(timer))
  })
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  t.teardown(() => { upstream.closeAllConnections(); upstream.close() })
  const proxy = await startProxy(t, {
    routes: [{ kind: 'streamable-http', path: '/mcp', upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp` }]
  })
  const headers = { 'content-type': 'application/json', accept: MCP_ACCEPT, 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'slow' }
  const response = await fetch(proxy.url('/mcp'), {
    method: 'POST',
    headers,
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'slow' } })
  })
  const reader = response.body!.getReader()
  const first = new TextDecoder().decode((await reader.read()).value)
  t.notMatch(first, /^id:/m, 'no proxy ids: these streams cannot be resumed')
  const upstreamClosed = once(responses[0]!, 'close')
  await reader.cancel()
  await upstreamClosed
  t.pass('the upstream request was aborted when the client closed its stream')
  const metrics = await (await fetch(proxy.url('/metrics'))).text()
  t.match(metrics, /sse_sessions_active 0/)
  t.match(metrics, /sse_history_events 0/)

  const get = await fetch(proxy.url('/mcp'), { headers: { ...headers, 'last-event-id': 'AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAA.1' } })
  t.equal(get.status, 405, 'the GET went to the upstream, which answered for itself')
  t.equal(requests[1]?.headers['last-event-id'], 'AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAA.1')
})

// The SDK's SSEClientTransport (1.32) wraps EventSource's fetch and replaces its headers, so it
// reconnects without Last-Event-ID (see docs/troubleshooting.md). A standard EventSource does send it.
t.test('legacy-sse: an EventSource whose stream is cut mid tool call resumes with Last-Event-ID; nothing is lost or repeated', async (t) => {
  const upstream = await startDemoUpstream()
  t.teardown(async () => await upstream.close())
  const proxy = await startProxy(t, {
    routes: [{ kind: 'legacy-sse', path: '/sse', messagesPath: '/messages', upstream: `${upstream.origin}/sse` }]
  })
  const sockets = trackClientSockets(proxy)
  const source = new EventSource(proxy.url('/sse'))
  t.teardown(() => source.close())
  const messages: Array<{ id?: number, method?: string, params?: { progress?: number }, result?: unknown }> = []
  const endpoint = await new Promise<string>((resolve) => source.addEventListener('endpoint', (event) => resolve(event.data)))
  let cut = false
  const done = new Promise<void>((resolve) => {
    source.onmessage = (event) => {
      const message = JSON.parse(event.data) as (typeof messages)[number]
      messages.push(message)
      if (message.params?.progress === 3 && !cut) {
        cut = true
        for (const socket of sockets) socket.destroy()
      }
      if (message.id === 2) resolve()
    }
  })
  const post = async (body: unknown) => await fetch(proxy.url(endpoint), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  await post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'es', version: '1' } } })
  await post({ jsonrpc: '2.0', method: 'notifications/initialized' })
  await post({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'countdown', arguments: { steps: 25, intervalMs: 250 }, _meta: { progressToken: 'p' } } })
  await done
  t.ok(cut, 'the stream was cut mid-call')
  t.same(messages.filter((message) => message.method === 'notifications/progress').map((message) => message.params?.progress), Array.from({ length: 25 }, (_, i) => i + 1))
  t.match(messages.at(-1), { id: 2, result: { content: [{ text: 'liftoff' }] } })
  const metrics = await (await fetch(proxy.url('/metrics'))).text()
  t.match(metrics, /sse_last_event_id_hits_total\{route_kind="legacy-sse",route="\/sse"\} 1/)
})

t.test('a second GET without Last-Event-ID while the standalone stream has its client gets 409; the first keeps the stream', async (t) => {
  const { proxy } = await setupStreamable(t)
  const sessionId = await initialize(proxy)
  const first = await SseClient.open(proxy.url('/mcp'), { 'mcp-session-id': sessionId })
  t.teardown(() => first.close())
  t.equal(first.status, 200)
  const second = await fetch(proxy.url('/mcp'), { headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId } })
  t.equal(second.status, 409, 'as the MCP SDK\'s own server answers')
  t.match(await second.json(), { error: { data: { code: 'FST_MCP_SSE_STANDALONE_STREAM_TAKEN' } } })
  await fetch(proxy.url('/mcp'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: MCP_ACCEPT, 'mcp-session-id': sessionId },
    body: JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'announce', arguments: {} } })
  }).then(async (response) => await response.text())
  const [announced] = await first.waitForEvents(1)
  t.match(JSON.parse(announced?.data ?? '{}'), { method: 'notifications/tools/list_changed' }, 'the first reader was not cut')
  t.notOk(first.completed)
})
