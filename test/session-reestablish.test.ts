import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js'
import { startDemoUpstream, type DemoUpstream } from '../examples/demo/mcp-server.js'
import type { McpSseResilienceOptions } from '../lib/index.js'
import { openMcpSession, openMcpSessionWithStream } from './helpers/numbered-events.js'
import { startProxy } from './helpers/proxy.js'
import { RecordingMcpUpstream } from './helpers/recording-mcp-upstream.js'

async function restartable (test: Test, extra: Omit<McpSseResilienceOptions, 'routes'>) {
  let upstream: DemoUpstream = await startDemoUpstream()
  const port = Number(new URL(upstream.origin).port)
  test.teardown(async () => await upstream.close())
  const proxy = await startProxy(test, { routes: [{ kind: 'streamable-http', path: '/mcp', upstream: `${upstream.origin}/mcp` }], reconnect: { baseDelayMs: 20 }, ...extra })
  const client = new Client({ name: 'restart-test', version: '1.0.0' })
  const transport = new StreamableHTTPClientTransport(new URL(proxy.url('/mcp')))
  transport.onerror = () => {}
  await client.connect(transport)
  test.teardown(async () => await client.close().catch(() => {}))
  return {
    proxy,
    client,
    transport,
    upstream: () => upstream,
    // A new process on the same port: every session the old one held is gone.
    async restart () {
      await upstream.close()
      upstream = await startDemoUpstream(port)
    }
  }
}

async function waitForMetric (url: string, pattern: RegExp): Promise<void> {
  for (let attempt = 0; attempt < 1000; attempt++) {
    if (pattern.test(await (await fetch(url)).text())) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error(`metric ${String(pattern)} never appeared`)
}

t.test('the upstream restarts and loses its sessions: the client\'s next tools/call succeeds without initializing again', async (t) => {
  const setup = await restartable(t, {})
  const before = await setup.client.callTool({ name: 'echo', arguments: { text: 'before' } })
  t.same(before.content, [{ type: 'text', text: 'before' }])
  const proxySessionId = setup.transport.sessionId
  await setup.restart()
  const after = await setup.client.callTool({ name: 'echo', arguments: { text: 'after' } })
  t.same(after.content, [{ type: 'text', text: 'after' }])
  t.equal(setup.transport.sessionId, proxySessionId, 'the client kept its session')
  t.equal(setup.upstream().sessionIds.length, 1, 'the new upstream opened one session: the proxy\'s')
  const metrics = await (await fetch(setup.proxy.url('/metrics'))).text()
  t.match(metrics, /sse_sessions_reestablished_total\{route_kind="streamable-http",route="\/mcp"\} 1/)
})

t.test('the standalone GET stream finds the session lost first: it opens the session again itself, and carries notifications in the new one', async (t) => {
  const setup = await restartable(t, {})
  const listChanged = new Promise<void>((resolve) => setup.client.setNotificationHandler(ToolListChangedNotificationSchema, () => resolve()))
  await setup.client.callTool({ name: 'echo', arguments: { text: 'before' } })
  await waitForMetric(setup.proxy.url('/metrics'), /sse_streams_active\{route_kind="streamable-http",route="\/mcp"\} 1/)
  await setup.restart()
  // No request from the client yet: only the reconnecting GET can have found the session lost.
  await waitForMetric(setup.proxy.url('/metrics'), /sse_sessions_reestablished_total\{route_kind="streamable-http",route="\/mcp"\} 1/)
  await waitForMetric(setup.proxy.url('/metrics'), /sse_reconnection_success_total\{route_kind="streamable-http",route="\/mcp"\} 1/)
  const announced = await setup.client.callTool({ name: 'announce', arguments: {} })
  t.same(announced.content, [{ type: 'text', text: 'announced' }])
  await listChanged
  t.equal(setup.upstream().sessionIds.length, 1, 'one new upstream session, shared by the stream and the calls')
})

t.test('with sessions.reestablish false, the 404 passes through and the client must initialize again', async (t) => {
  const setup = await restartable(t, { sessions: { reestablish: false } })
  await setup.restart()
  await t.rejects(setup.client.callTool({ name: 'echo', arguments: { text: 'after' } }), /404|Session not found/)
})

t.test('re-establishing replays initialize, notifications/initialized and the live subscriptions (up to sessions.maxSubscriptionsPerSession), with the client\'s credentials', async (t) => {
  const received: Array<{ session?: string, method?: string, uri?: string, authorization?: string }> = []
  let generation = 1
  let refuseInitialize = false
  const upstream = createServer((request, response) => {
    let text = ''
    request.setEncoding('utf8')
    request.on('data', (chunk: string) => { text += chunk })
    request.on('end', () => {
      const message = JSON.parse(text) as { id?: number | string, method: string, params?: { uri?: string } }
      const session = request.headers['mcp-session-id'] as string | undefined
      received.push({ session, method: message.method, uri: message.params?.uri, authorization: request.headers.authorization })
      if (message.method === 'initialize') {
        if (refuseInitialize) {
          response.writeHead(500).end()
          return
        }
        response.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': `up-${generation}` })
        response.end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result: {} }))
      } else if (session !== `up-${generation}`) {
        response.writeHead(404, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","error":{"code":-32001,"message":"Session not found"},"id":null}')
      } else if (message.id === undefined) {
        response.writeHead(202).end()
      } else {
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result: { generation } }))
      }
    })
  })
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  t.teardown(() => upstream.close())
  const proxy = await startProxy(t, {
    routes: [{ kind: 'streamable-http', path: '/mcp', upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp` }],
    sessions: { maxSubscriptionsPerSession: 2 }
  })
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: 'Bearer token-1' }
  const send = async (body: unknown, sessionId?: string) => await fetch(proxy.url('/mcp'), {
    method: 'POST',
    headers: sessionId === undefined ? headers : { ...headers, 'mcp-session-id': sessionId },
    body: JSON.stringify(body)
  })
  const init = await send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} })
  const sessionId = init.headers.get('mcp-session-id') ?? ''
  await send({ jsonrpc: '2.0', method: 'notifications/initialized' }, sessionId)
  await send({ jsonrpc: '2.0', id: 2, method: 'resources/subscribe', params: { uri: 'file:///a' } }, sessionId)
  await send({ jsonrpc: '2.0', id: 3, method: 'resources/subscribe', params: { uri: 'file:///b' } }, sessionId)
  // A third subscription is past the limit of 2: not recorded, so not sent again.
  await send({ jsonrpc: '2.0', id: 8, method: 'resources/subscribe', params: { uri: 'file:///c' } }, sessionId)
  await send({ jsonrpc: '2.0', id: 4, method: 'resources/unsubscribe', params: { uri: 'file:///a' } }, sessionId)

  generation = 2
  received.length = 0
  const call = await send({ jsonrpc: '2.0', id: 5, method: 'tools/list' }, sessionId)
  t.same(await call.json(), { jsonrpc: '2.0', id: 5, result: { generation: 2 } })
  t.same(received.map(({ session, method, uri }) => [session, method, uri]), [
    ['up-1', 'tools/list', undefined],
    [undefined, 'initialize', undefined],
    ['up-2', 'notifications/initialized', undefined],
    ['up-2', 'resources/subscribe', 'file:///b'],
    ['up-2', 'tools/list', undefined]
  ])
  t.ok(received.every((request) => request.authorization === 'Bearer token-1'), 'with the client\'s credentials')

  generation = 3
  refuseInitialize = true
  const refused = await send({ jsonrpc: '2.0', id: 6, method: 'tools/list' }, sessionId)
  t.equal(refused.status, 404, 'an upstream that will not open a session: the client is told to initialize again')
  t.match(await refused.json(), { error: { code: -32001 } })
  const gone = await send({ jsonrpc: '2.0', id: 7, method: 'tools/list' }, sessionId)
  t.equal(gone.status, 404, 'and its proxy session is gone')
})

t.test('a late 404 for an upstream session already replaced opens no second one: the request goes to the new session', async (t) => {
  const live = new Set<string>()
  let initializes = 0
  const upstream = createServer((request, response) => {
    let text = ''
    request.setEncoding('utf8')
    request.on('data', (chunk: string) => { text += chunk })
    request.on('end', () => {
      const message = JSON.parse(text) as { id?: string | number, method: string }
      const session = request.headers['mcp-session-id'] as string | undefined
      if (message.method === 'initialize') {
        const id = `up-${++initializes}`
        live.add(id)
        response.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': id }).end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result: {} }))
      } else if (session === undefined || !live.has(session)) {
        // The slow request's 404 comes back only after the fast one has re-established the session.
        setTimeout(() => response.writeHead(404).end(), message.id === 'slow' ? 300 : 0)
      } else if (message.id === undefined) {
        response.writeHead(202).end()
      } else {
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result: { session } }))
      }
    })
  })
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  t.teardown(() => upstream.close())
  const proxy = await startProxy(t, { routes: [{ kind: 'streamable-http', path: '/mcp', upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp` }] })
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }
  const send = async (body: unknown, sessionId?: string) => await fetch(proxy.url('/mcp'), {
    method: 'POST',
    headers: sessionId === undefined ? headers : { ...headers, 'mcp-session-id': sessionId },
    body: JSON.stringify(body)
  })
  const sessionId = (await send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} })).headers.get('mcp-session-id') ?? ''
  await send({ jsonrpc: '2.0', method: 'notifications/initialized' }, sessionId)
  live.clear()
  const slow = send({ jsonrpc: '2.0', id: 'slow', method: 'tools/list' }, sessionId)
  await new Promise((resolve) => setTimeout(resolve, 50))
  const fast = await send({ jsonrpc: '2.0', id: 'fast', method: 'tools/list' }, sessionId)
  t.same(await fast.json(), { jsonrpc: '2.0', id: 'fast', result: { session: 'up-2' } })
  t.same(await (await slow).json(), { jsonrpc: '2.0', id: 'slow', result: { session: 'up-2' } }, 'sent again to the session the fast request opened')
  t.equal(initializes, 2, 'one initialize at the start, one after the restart: no orphaned upstream session')
})

t.test('a DELETE ends the session for good: the standalone stream, which the upstream ends before it answers, does not open it again', async (t) => {
  const upstream = await RecordingMcpUpstream.start()
  t.teardown(async () => await upstream.close())
  upstream.deleteAnswerDelayMs = 300
  const proxy = await startProxy(t, { routes: [{ kind: 'streamable-http', path: '/mcp', upstream: `${upstream.origin}/mcp` }] })
  const { headers, standalone } = await openMcpSessionWithStream(t, proxy.url('/mcp'))

  const deleted = await fetch(proxy.url('/mcp'), { method: 'DELETE', headers })
  t.equal(deleted.status, 200)
  await standalone.ended
  t.equal(upstream.sessionIds.length, 1, 'no second upstream session')
  t.equal(upstream.requests.filter((request) => request.body.includes('"initialize"')).length, 1, 'no initialize after the DELETE')
  t.equal(upstream.requests.filter((request) => request.method === 'GET').length, 1, 'the stream the upstream ended is not reconnected')
  const after = await fetch(proxy.url('/mcp'), { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }) })
  t.equal(after.status, 404, 'the session is gone')
})

t.test('a DELETE that arrives while the proxy opens a lost session again wins: the new upstream session is not used, and the session is gone', async (t) => {
  const upstream = await RecordingMcpUpstream.start()
  t.teardown(async () => await upstream.close())
  const proxy = await startProxy(t, { routes: [{ kind: 'streamable-http', path: '/mcp', upstream: `${upstream.origin}/mcp` }] })
  const { headers } = await openMcpSession(proxy.url('/mcp'))
  await fetch(proxy.url('/mcp'), { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })
  upstream.forgetSessions()
  upstream.initializeAnswerDelayMs = 300

  const lost = fetch(proxy.url('/mcp'), { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }) })
  await new Promise((resolve) => setTimeout(resolve, 100))
  const deleted = await fetch(proxy.url('/mcp'), { method: 'DELETE', headers })
  t.equal(deleted.status, 404, 'the upstream had lost the session already')
  t.equal((await lost).status, 404, 'the request that found the session lost is not sent into a new one')
  t.equal(upstream.sessionIds.length, 2, 'the handshake under way did open one upstream')
  const intoNew = upstream.requests.filter((request) => request.headers['mcp-session-id'] === upstream.sessionIds[1])
  t.same(intoNew.map((request) => request.method), ['POST', 'DELETE'], 'only the notifications/initialized of the handshake went into it, then the proxy ended it')
  const after = await fetch(proxy.url('/mcp'), { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/list' }) })
  t.equal(after.status, 404, 'the session is gone')
})
