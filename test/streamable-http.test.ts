import t, { type Test } from 'tap'
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js'
import { startDemoUpstream } from '../examples/demo/mcp-server.js'
import { startProxy } from './helpers/proxy.js'

const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'test', version: '1' } }
})
const MCP_ACCEPT = 'application/json, text/event-stream'

async function setup (test: Test, extra: Record<string, unknown> = {}) {
  const upstream = await startDemoUpstream()
  test.teardown(async () => await upstream.close())
  const proxy = await startProxy(test, { routes: [{ kind: 'streamable-http', path: '/mcp', upstream: `${upstream.origin}/mcp` }], ...extra })
  return { upstream, proxy }
}

async function connectClient (test: Test, url: string) {
  const client = new Client({ name: 'proxy-test', version: '1.0.0' })
  const transport = new StreamableHTTPClientTransport(new URL(url))
  await client.connect(transport)
  test.teardown(async () => await client.close())
  return { client, transport }
}

t.test('an SDK client works through the proxy: initialize, tools/list, tools/call with progress, GET stream, DELETE', async (t) => {
  const { upstream, proxy } = await setup(t)
  const { client, transport } = await connectClient(t, proxy.url('/mcp'))

  const proxySessionId = transport.sessionId
  t.type(proxySessionId, 'string')
  t.equal(upstream.sessionIds.length, 1)
  t.not(proxySessionId, upstream.sessionIds[0], 'the client sees the proxy session id, not the upstream one')
  t.ok(Buffer.from(proxySessionId ?? '', 'base64url').length * 8 >= 128, 'the session id carries at least 128 bits')

  const tools = await client.listTools()
  t.same(tools.tools.map((tool) => tool.name).sort(), ['announce', 'countdown', 'echo'])

  // The SDK client handles a notification a microtask after a response in the same chunk,
  // so it drops progress that lands with the result: the tool leaves a gap before answering.
  const progress: number[] = []
  const result = await client.callTool(
    { name: 'countdown', arguments: { steps: 25, intervalMs: 20 } },
    undefined,
    { onprogress: (update) => progress.push(update.progress) }
  )
  t.same(progress, Array.from({ length: 25 }, (_, i) => i + 1), 'progress notifications arrive in order, each once')
  t.same(result.content, [{ type: 'text', text: 'liftoff' }])

  const listChanged = new Promise<void>((resolve) => client.setNotificationHandler(ToolListChangedNotificationSchema, () => resolve()))
  await waitForGetStream(proxy.app)
  await client.callTool({ name: 'announce', arguments: {} })
  await listChanged
  t.pass('a server notification arrived on the standalone GET stream')

  await transport.terminateSession()
  const afterDelete = await fetch(proxy.url('/mcp'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: MCP_ACCEPT, 'mcp-session-id': proxySessionId ?? '' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' })
  })
  t.equal(afterDelete.status, 404, 'DELETE ended the session at the proxy')
})

t.test('the upstream session id never reaches the client, in headers or in bodies', async (t) => {
  const { upstream, proxy } = await setup(t)
  const response = await fetch(proxy.url('/mcp'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: MCP_ACCEPT },
    body: INITIALIZE
  })
  const body = await response.text()
  const upstreamId = upstream.sessionIds[0] ?? 'missing'
  t.equal(response.status, 200)
  t.notMatch(JSON.stringify([...response.headers]), upstreamId)
  t.notMatch(body, upstreamId)
  t.match(response.headers.get('mcp-session-id'), /^[A-Za-z0-9_-]{32}$/)
})

t.test('an unknown or foreign session id gets 404 with a JSON-RPC error, without reaching the upstream', async (t) => {
  const { upstream, proxy } = await setup(t)
  for (const sessionId of ['not-a-session', upstream.sessionIds[0] ?? 'x'.repeat(36)]) {
    const response = await fetch(proxy.url('/mcp'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: MCP_ACCEPT, 'mcp-session-id': sessionId },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' })
    })
    t.equal(response.status, 404)
    t.match(await response.json(), { jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null })
  }
})

t.test('upstream status codes and JSON-RPC error bodies pass unchanged', async (t) => {
  const { proxy } = await setup(t)
  const withoutSession = await fetch(proxy.url('/mcp'), { headers: { accept: 'text/event-stream' } })
  t.equal(withoutSession.status, 400, 'the upstream answers a GET without a session with 400')
  t.match(await withoutSession.json(), { jsonrpc: '2.0', error: { code: -32000 } })

  const notJson = await fetch(proxy.url('/mcp'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: MCP_ACCEPT },
    body: '{"jsonrpc": "2.0", broken'
  })
  t.equal(notJson.status, 400, 'the upstream, not the proxy, judges the body')
  t.match(await notJson.json(), { jsonrpc: '2.0', error: { code: -32700 } })
})

t.test('MCP headers pass both ways, and requests without a session are proxied without minting one', async (t) => {
  const seen: IncomingHttpHeaders[] = []
  const bodies: Buffer[] = []
  const upstream = createServer((request, response) => {
    seen.push(request.headers)
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.once('end', () => bodies.push(Buffer.concat(chunks)))
    response.writeHead(200, { 'content-type': 'application/json', 'mcp-protocol-version': '2026-07-28', 'x-request-id': 'r1' })
    response.end(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { tools: [] } }))
  })
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  t.teardown(() => upstream.close())
  const proxy = await startProxy(t, {
    routes: [{ kind: 'streamable-http', path: '/mcp', upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp` }]
  })
  const response = await fetch(proxy.url('/mcp'), {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: MCP_ACCEPT,
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'tools/list',
      'mcp-name': 'tools/list',
      'mcp-param-cursor': 'abc',
      authorization: 'Bearer secret',
      'last-event-id': 'e-1'
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' })
  })
  t.equal(response.status, 200)
  t.equal(response.headers.get('mcp-protocol-version'), '2026-07-28')
  t.equal(response.headers.get('mcp-session-id'), null)
  t.same(await response.json(), { jsonrpc: '2.0', id: 1, result: { tools: [] } })
  t.match(seen[0], {
    'mcp-protocol-version': '2026-07-28',
    'mcp-method': 'tools/list',
    'mcp-name': 'tools/list',
    'mcp-param-cursor': 'abc',
    authorization: 'Bearer secret',
    'last-event-id': 'e-1'
  })
  t.equal(seen[0]?.['mcp-session-id'], undefined)
  t.equal(proxy.app.hasRequestDecorator('mcpSseSession'), true)

  const bytes = Buffer.from([0x7b, 0x20, 0xff, 0x00, 0x7d])
  await new Promise<void>((resolve, reject) => {
    const post = httpRequest(proxy.url('/mcp'), { method: 'POST', headers: { 'content-length': bytes.length } }, (response) => {
      response.resume()
      response.once('end', resolve)
    })
    post.once('error', reject)
    post.end(bytes)
  })
  t.equal(seen[1]?.['content-type'], 'application/octet-stream', 'a body without a content type is sent as octet-stream (RFC 9110 section 8.3)')
  t.same(bodies[1], bytes, 'the body reaches the upstream byte for byte')
})

t.test('a stateless SDK server works through the proxy', async (t) => {
  const upstream = createServer((request, response) => {
    const server = new McpServer({ name: 'stateless', version: '1.0.0' })
    server.registerTool('ping', { description: 'pong', inputSchema: {} }, async () => ({ content: [{ type: 'text', text: 'pong' }] }))
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined })
    response.once('close', () => { transport.close().catch(() => {}) })
    server.connect(transport).then(async () => await transport.handleRequest(request, response), () => response.writeHead(500).end())
  })
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  t.teardown(() => { upstream.closeAllConnections(); upstream.close() })
  const proxy = await startProxy(t, {
    routes: [{ kind: 'streamable-http', path: '/mcp', upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp` }]
  })
  const { client, transport } = await connectClient(t, proxy.url('/mcp'))
  t.equal(transport.sessionId, undefined)
  const result = await client.callTool({ name: 'ping', arguments: {} })
  t.same(result.content, [{ type: 'text', text: 'pong' }])

  // Without an MCP session, a POST stream is its own session: its id alone resumes it.
  const response = await fetch(proxy.url('/mcp'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: MCP_ACCEPT },
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'ping', arguments: {} } })
  })
  const text = await response.text()
  const [, eventId] = /^id: (.+)$/m.exec(text) ?? []
  const replay = await fetch(proxy.url('/mcp'), { headers: { accept: 'text/event-stream', 'last-event-id': eventId?.replace(/\.\d+$/, '.1') ?? '' } })
  t.equal(replay.headers.get('x-resume-status'), 'recovered')
  t.equal(await replay.text(), '', 'nothing after the last event: the finished stream ends at once')
})

t.test('sessions.maxSessions: one initialize too many gets 503 with Retry-After', async (t) => {
  const { proxy } = await setup(t, { sessions: { maxSessions: 1 } })
  const initialize = async () => await fetch(proxy.url('/mcp'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: MCP_ACCEPT },
    body: INITIALIZE
  })
  const first = await initialize()
  await first.text()
  t.equal(first.status, 200)
  const second = await initialize()
  t.equal(second.status, 503)
  const sessionless = await fetch(proxy.url('/mcp'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: MCP_ACCEPT, 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'ping' })
  })
  t.equal(sessionless.status, 400, 'a request without a session still reaches the upstream when none is left')
  t.equal(second.headers.get('retry-after'), '5')
  t.match(await second.json(), { error: { data: { code: 'FST_MCP_SSE_TOO_MANY_SESSIONS' } } })
  const batch = await fetch(proxy.url('/mcp'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: MCP_ACCEPT },
    body: `[${INITIALIZE}]`
  })
  t.equal(batch.status, 503, 'an initialize inside a batch counts too')
  for (const body of ['not json', 'null', '{"jsonrpc":"2.0","id":3,"method":"ping"}']) {
    const other = await fetch(proxy.url('/mcp'), { method: 'POST', headers: { 'content-type': 'application/json', accept: MCP_ACCEPT }, body })
    t.equal(other.status, 400, `${body}: a request that cannot open a session still reaches the upstream, which judges it`)
  }
  const empty = await fetch(proxy.url('/mcp'), { method: 'POST', headers: { accept: MCP_ACCEPT } })
  t.equal(empty.status, 415, 'an empty POST reaches the upstream too')
})

t.test('a session idle past sessions.idleTimeoutSeconds is forgotten', async (t) => {
  const { proxy } = await setup(t, { sessions: { idleTimeoutSeconds: 1 } })
  const response = await fetch(proxy.url('/mcp'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: MCP_ACCEPT },
    body: INITIALIZE
  })
  await response.text()
  const sessionId = response.headers.get('mcp-session-id') ?? ''
  await new Promise((resolve) => setTimeout(resolve, 2500))
  const later = await fetch(proxy.url('/mcp'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: MCP_ACCEPT, 'mcp-session-id': sessionId },
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' })
  })
  t.equal(later.status, 404)
})

/** The SDK client opens its GET stream in the background after initialize; wait until the proxy relays it. */
async function waitForGetStream (app: { metrics?: unknown, inject: (options: { url: string }) => Promise<{ body: string }> }): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const { body } = await app.inject({ url: '/metrics' })
    if (/sse_streams_active\{route_kind="streamable-http",route="\/mcp"\} 1/.test(body)) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error('the GET stream never opened')
}

t.test('limits.maxBodyBytes: a larger POST body gets 413 and never reaches the upstream', async (t) => {
  const { upstream, proxy } = await setup(t, { limits: { maxBodyBytes: 1024 } })
  const response = await fetch(proxy.url('/mcp'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: MCP_ACCEPT },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { padding: 'x'.repeat(2048) } })
  })
  t.equal(response.status, 413)
  t.equal(upstream.sessionIds.length, 0)
})

t.test('a POST stream ends once its response is sent, even when the upstream keeps it open (MCP: the server SHOULD close it)', async (t) => {
  let upstreamClosed = false
  const isUpstreamClosed = (): boolean => upstreamClosed
  const upstream = createServer((request, response) => {
    request.resume()
    request.once('end', () => {
      if (request.headers['mcp-session-id'] === undefined) {
        response.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'up-1' }).end('{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"u","version":"1"}}}')
        return
      }
      response.writeHead(200, { 'content-type': 'text/event-stream' })
      response.write('id: 1\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}\n\n')
      response.write('id: 2\ndata: {"jsonrpc":"2.0","id":2,"result":{"content":[]}}\n\n')
      response.once('close', () => { upstreamClosed = true })
    })
  })
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  t.teardown(async () => {
    upstream.closeAllConnections()
    await new Promise((resolve) => upstream.close(resolve))
  })
  const proxy = await startProxy(t, { routes: [{ kind: 'streamable-http', path: '/mcp', upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp` }] })
  const init = await fetch(proxy.url('/mcp'), { method: 'POST', headers: { 'content-type': 'application/json', accept: MCP_ACCEPT }, body: INITIALIZE })
  await init.text()
  const started = Date.now()
  const call = await fetch(proxy.url('/mcp'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: MCP_ACCEPT, 'mcp-session-id': init.headers.get('mcp-session-id') ?? '' },
    body: '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x"}}',
    signal: AbortSignal.timeout(5000)
  })
  const text = await call.text()
  t.match(text, /"id":2,"result"/)
  t.ok(Date.now() - started < 2000, `the client's response ended with the result (${Date.now() - started} ms)`)
  const deadline = Date.now() + 2000
  while (!isUpstreamClosed() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  t.ok(isUpstreamClosed(), 'and the upstream stream was closed')
})
