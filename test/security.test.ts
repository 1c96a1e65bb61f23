import t, { type Test } from 'tap'
import { createServer as createNetServer, type Socket } from 'node:net'
import { once } from 'node:events'
import { SseClient } from './helpers/sse-client.js'
import { SseUpstream } from './helpers/sse-upstream.js'
import { startProxy } from './helpers/proxy.js'
import { RecordingMcpUpstream, proxyOnEveryRouteKind } from './helpers/recording-mcp-upstream.js'
import { freePort } from './helpers/free-port.js'
import { exchange, MCP_ACCEPT, walkEveryRoute } from './helpers/exchange.js'
import { metricsText, waitForMetric } from './helpers/hostile.js'

const setupRecording = proxyOnEveryRouteKind

t.test('hop-by-hop headers are dropped in both directions, on every route kind; end-to-end headers pass', async (t) => {
  const { upstream, proxy } = await setupRecording(t)
  upstream.responseHeaders = {
    connection: 'x-hop-secret',
    'x-hop-secret': 'upstream-hop',
    'keep-alive': 'timeout=1',
    'proxy-authenticate': 'Basic realm="upstream"',
    trailer: 'x-trailer',
    upgrade: 'h2c',
    te: 'trailers',
    'proxy-connection': 'keep-alive',
    'x-end-to-end': 'from-upstream'
  }
  const exchanges = await walkEveryRoute(proxy, {
    connection: 'keep-alive, X-Hop-Secret',
    'x-hop-secret': 'client-hop',
    'keep-alive': 'timeout=5',
    te: 'trailers',
    trailer: 'x-trailer',
    upgrade: 'h2c',
    'proxy-authorization': 'Basic Y2xpZW50OnNlY3JldA==',
    'proxy-connection': 'keep-alive',
    'x-end-to-end': 'from-client'
  })
  const dropped = ['x-hop-secret', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-authenticate', 'proxy-connection', 'transfer-encoding']

  t.equal(upstream.requests.length, exchanges.length, 'every request reached the upstream')
  for (const request of upstream.requests) {
    const label = `to the upstream: ${request.method} ${request.url.split('?')[0] ?? ''}`
    t.same(dropped.filter((name) => request.headers[name] !== undefined), [], `${label}: no hop-by-hop header`)
    t.notOk(request.headers['keep-alive'], `${label}: no keep-alive`)
    t.notMatch(String(request.headers.connection), /x-hop-secret/i, `${label}: Connection names nothing of the client's`)
    t.equal(request.headers['x-end-to-end'], 'from-client', `${label}: end-to-end headers pass`)
    if (request.method === 'POST') t.equal(request.headers['content-length'], String(request.body.length), `${label}: the body is framed anew, by length`)
  }
  for (const response of exchanges) {
    const label = `to the client: ${response.label}`
    t.ok(response.status >= 200 && response.status < 300, `${label}: ${response.status}`)
    t.same(dropped.filter((name) => name !== 'transfer-encoding' && response.headers[name] !== undefined), [], `${label}: no hop-by-hop header`)
    t.not(response.headers['keep-alive'], 'timeout=1', `${label}: not the upstream's keep-alive`)
    t.notMatch(String(response.headers.connection), /x-hop-secret/i, `${label}: Connection names nothing of the upstream's`)
    t.equal(response.headers['x-end-to-end'], 'from-upstream', `${label}: end-to-end headers pass`)
  }
})

t.test('no upstream session id reaches the client, in any header or body of a whole session on any route kind', async (t) => {
  const { upstream, proxy } = await setupRecording(t)
  const exchanges = await walkEveryRoute(proxy, {})
  t.equal(upstream.sessionIds.length, 2, 'the upstream opened a streamable-http and a legacy session')
  for (const response of exchanges) {
    const seen = JSON.stringify(response.headers) + response.body
    t.notOk(upstream.sessionIds.some((id) => seen.includes(id)), `${response.label}: none of the upstream's session ids`)
    t.notMatch(seen, /upstream-(session|legacy)-/, `${response.label}: nothing that looks like one`)
  }
  const mcpRequests = upstream.requests.filter((request) => request.url === '/mcp' && request.headers['mcp-session-id'] !== undefined)
  t.ok(mcpRequests.length >= 3 && mcpRequests.every((request) => request.headers['mcp-session-id'] === upstream.sessionIds[0]), 'while the upstream got its own id on every request of the session')
})

t.test('errors name no upstream host, port or cause, and carry no stack: unreachable, unresolvable, too slow, not HTTP, reset, an invalid status or header', async (t) => {
  const silent = await SseUpstream.start(() => { /* never answers */ })
  t.teardown(async () => await silent.close())
  const broken = await rawUpstream(t, (socket) => socket.end('garbage\r\n\r\n'))
  const reset = await rawUpstream(t, (socket) => socket.resetAndDestroy())
  const badStatus = await rawUpstream(t, (socket) => socket.end('HTTP/1.1 999 Whatever\r\nContent-Length: 2\r\n\r\nok'))
  const badHeader = await rawUpstream(t, (socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Bad: a\0b\r\n\r\n'))
  const cases = [
    { name: 'unreachable', origin: `http://127.0.0.1:${await freePort()}`, status: 502, code: 'FST_MCP_SSE_UPSTREAM_UNAVAILABLE' },
    { name: 'an internal hostname that does not resolve', origin: 'http://mcp-backend.internal.invalid:8443', status: 502, code: 'FST_MCP_SSE_UPSTREAM_UNAVAILABLE' },
    { name: 'no headers within health.connectTimeoutMs', origin: silent.origin, status: 504, code: 'FST_MCP_SSE_UPSTREAM_TIMEOUT' },
    { name: 'not HTTP at all', origin: broken, status: 502, code: 'FST_MCP_SSE_UPSTREAM_UNAVAILABLE' },
    { name: 'a reset connection', origin: reset, status: 502, code: 'FST_MCP_SSE_UPSTREAM_UNAVAILABLE' },
    { name: 'status 999', origin: badStatus, status: 502 },
    { name: 'a header with NUL', origin: badHeader, status: 502, code: 'FST_MCP_SSE_UPSTREAM_UNAVAILABLE' }
  ]
  for (const { name, origin, status, code } of cases) {
    const proxy = await startProxy(t, {
      routes: [
        { kind: 'streamable-http', path: '/mcp', upstream: `${origin}/mcp` },
        { kind: 'legacy-sse', path: '/sse', messagesPath: '/messages', upstream: `${origin}/sse` },
        { kind: 'sse', path: '/events', upstream: `${origin}/events` }
      ],
      health: { connectTimeoutMs: 300 }
    })
    const { hostname, port } = new URL(origin)
    const requests = [
      ['POST', '/mcp', '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}'],
      ['GET', '/sse', undefined],
      ['GET', '/events', undefined]
    ] as const
    // In parallel: the slow upstream costs its timeout once.
    const responses = await Promise.all(requests.map(async ([method, path, body]) => {
      const response = await fetch(proxy.url(path), { method, headers: { 'content-type': 'application/json', accept: MCP_ACCEPT }, body })
      return { method, path, response, text: await response.text() }
    }))
    for (const { method, path, response, text } of responses) {
      const label = `${name}, ${method} ${path}`
      t.equal(response.status, status, `${label}: ${status}`)
      if (code !== undefined) t.match(JSON.parse(text), { statusCode: status, code }, `${label}: the proxy's own error`)
      const seen = JSON.stringify([...response.headers]) + text
      t.notOk(seen.includes(hostname) || seen.includes(`:${port}`) || /internal|invalid\b/.test(seen), `${label}: no upstream host or port`)
      t.notMatch(seen, /ECONN|ENOTFOUND|EAI_|getaddrinfo|UND_ERR|HPE_|undici|socket|\.(ts|js):\d+|\n\s+at /, `${label}: no cause, no stack`)
    }
  }
})

async function rawUpstream (test: Test, answer: (socket: Socket) => void): Promise<string> {
  const server = createNetServer((socket) => {
    socket.on('error', () => {})
    socket.once('data', () => answer(socket))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  test.teardown(() => server.close())
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`
}

t.test('history is wiped on DELETE: the session\'s events leave the history at once, and its ids yield nothing', async (t) => {
  const { proxy } = await setupRecording(t)
  const initialize = await exchange('initialize', proxy.url('/mcp'), 'POST', { 'content-type': 'application/json', accept: MCP_ACCEPT },
    JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }))
  const sessionId = String(initialize.headers['mcp-session-id'])
  const standalone = await SseClient.open(proxy.url('/mcp'), { 'mcp-session-id': sessionId })
  await standalone.waitForEvents(1)
  const stream = await exchange('call', proxy.url('/mcp'), 'POST', { 'content-type': 'application/json', accept: MCP_ACCEPT, 'mcp-session-id': sessionId },
    JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { secret: 'secret-of-a' } }))
  const firstId = /^id: (.+)$/m.exec(stream.body)?.[1] ?? ''
  t.match(await metricsText(proxy), /sse_history_events 3\n/, 'the priming event and the two events of the call are kept')

  const deleted = await exchange('DELETE', proxy.url('/mcp'), 'DELETE', { 'mcp-session-id': sessionId })
  t.equal(deleted.status, 200)
  await standalone.ended
  t.pass('the session\'s open stream was ended')
  await waitForMetric(proxy, /sse_history_events 0\n/, 2000)
  t.match(await metricsText(proxy), /sse_history_bytes 0\n/, 'nothing of it is kept')

  const withSession = await exchange('resume', proxy.url('/mcp'), 'GET', { accept: 'text/event-stream', 'mcp-session-id': sessionId, 'last-event-id': firstId })
  t.equal(withSession.status, 404, 'the ended session is unknown')
  const withoutSession = await exchange('resume', proxy.url('/mcp'), 'GET', { accept: 'text/event-stream', 'last-event-id': firstId })
  t.notMatch(withoutSession.body, /secret-of-a/, 'and its id alone yields none of its events')
})

t.test('history is wiped when an idle session expires (sessions.idleTimeoutSeconds)', async (t) => {
  const { proxy } = await setupRecording(t, { sessions: { idleTimeoutSeconds: 1 } })
  const initialize = await exchange('initialize', proxy.url('/mcp'), 'POST', { 'content-type': 'application/json', accept: MCP_ACCEPT },
    JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }))
  const sessionId = String(initialize.headers['mcp-session-id'])
  const stream = await exchange('call', proxy.url('/mcp'), 'POST', { 'content-type': 'application/json', accept: MCP_ACCEPT, 'mcp-session-id': sessionId },
    JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { secret: 'secret-of-a' } }))
  const firstId = /^id: (.+)$/m.exec(stream.body)?.[1] ?? ''
  t.match(await metricsText(proxy), /sse_history_events 2\n/)
  await waitForMetric(proxy, /sse_history_events 0\n/, 5000)
  t.match(await metricsText(proxy), /sse_sessions_active 0\n/, 'the session is gone')
  const resumed = await exchange('resume', proxy.url('/mcp'), 'GET', { accept: 'text/event-stream', 'mcp-session-id': sessionId, 'last-event-id': firstId })
  t.equal(resumed.status, 404)
  t.notMatch(resumed.body, /secret-of-a/)
})

t.test('history expires after history.ttlSeconds even on a live stream; an expired id is told evicted and gets none of it', async (t) => {
  const { upstream, proxy } = await setupRecording(t, { history: { ttlSeconds: 1 } })
  const client = await SseClient.open(proxy.url('/events'))
  t.teardown(() => client.close())
  await client.waitForEvents(1)
  for (const stream of upstream.streams) stream.write('data: secret-of-a 1\n\ndata: secret-of-a 2\n\n')
  const [first] = await client.waitForEvents(3)
  t.match(await metricsText(proxy), /sse_history_events 3\n/)
  await waitForMetric(proxy, /sse_history_events 0\n/, 5000)
  t.equal(client.completed, false, 'the stream itself goes on')
  const resumed = await SseClient.open(proxy.url('/events'), { 'last-event-id': first?.id ?? '' })
  t.teardown(() => resumed.close())
  t.equal(resumed.headers['x-resume-status'], 'unrecoverable; reason=evicted')
  await resumed.waitForEvents(1)
  for (const stream of upstream.streams) stream.write('data: live\n\n')
  await resumed.waitForEvents(2)
  t.same(resumed.events.map((event) => event.event ?? event.data), ['resume-status', 'live'], 'the notice, then live events: none of the expired ones')
})

t.test('a legacy endpoint event that names another origin is not followed: the client\'s messages and credentials never go there', async (t) => {
  const elsewhere = await RecordingMcpUpstream.start()
  t.teardown(async () => await elsewhere.close())
  const upstream = await SseUpstream.start((request, response) => {
    upstream.openStream(request, response)
    response.write(`event: endpoint\ndata: ${elsewhere.origin.replace('127.0.0.1', 'localhost')}/collect?sessionId=1\n\n`)
  })
  t.teardown(async () => await upstream.close())
  const proxy = await startProxy(t, { routes: [{ kind: 'legacy-sse', path: '/sse', messagesPath: '/messages', upstream: upstream.url('/sse') }] })
  const stream = await SseClient.open(proxy.url('/sse'))
  t.teardown(() => stream.close())
  const endpoint = await stream.waitForEvents(1, 2000).then(([event]) => event?.data, () => undefined)
  if (endpoint !== undefined && endpoint.startsWith('/')) {
    const response = await fetch(proxy.url(endpoint), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer client-secret' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' })
    })
    await response.text()
  }
  t.same(elsewhere.requests.map((request) => `${request.method} ${request.url} ${String(request.headers.authorization)}`), [], 'the other origin got nothing')
})

t.test('security.allowedOrigins: by default a request with a foreign Origin gets 403 on every route kind, before the upstream sees it; one without Origin passes', async (t) => {
  const { upstream, proxy } = await setupRecording(t)
  const requests = [
    ['GET', '/events'],
    ['GET', '/sse'],
    ['POST', '/messages?sessionId=x'],
    ['POST', '/mcp'],
    ['GET', '/mcp'],
    ['DELETE', '/mcp'],
    ['OPTIONS', '/mcp']
  ] as const
  // A page on another site that calls the proxy by its address: a cross-site request with the
  // proxy's own Host. (A rebound name, with the page's own Host, is in browser-access.test.ts.)
  const origins = ['http://evil.example', `http://evil.example:${new URL(proxy.origin).port}`, 'null', 'http://127.0.0.1.evil.example']
  for (const origin of origins) {
    for (const [method, path] of requests) {
      const response = await exchange(`${method} ${path}`, proxy.url(path), method, { origin, 'content-type': 'application/json', accept: MCP_ACCEPT, 'access-control-request-method': 'POST' },
        method === 'POST' ? '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}' : undefined)
      t.equal(response.status, 403, `${origin} ${method} ${path}: 403`)
      t.match(JSON.parse(response.body), { jsonrpc: '2.0', error: { data: { code: 'FST_MCP_SSE_ORIGIN_NOT_ALLOWED' } } })
      t.same(Object.keys(response.headers).filter((name) => name.startsWith('access-control-')), [], `${origin} ${method} ${path}: no CORS header`)
    }
  }
  t.equal(upstream.requests.length, 0, 'the upstream saw none of them')
  const withoutOrigin = await exchange('sse GET', proxy.url('/events'), 'GET', { accept: 'text/event-stream' })
  t.equal(withoutOrigin.status, 200, 'a request without Origin (an SDK client, curl) passes')
})

t.test('security.allowedOrigins: a listed origin passes, in any case and with its default port; a look-alike does not; "*" allows any', async (t) => {
  const { proxy } = await setupRecording(t, { security: { allowedOrigins: ['http://app.example', 'https://console.example:8443'] } })
  const expectations = [
    ['http://app.example', 200],
    ['HTTP://APP.example:80', 200],
    ['https://console.example:8443', 200],
    ['https://app.example', 403],
    ['http://app.example:8080', 403],
    ['http://app.example.evil.example', 403],
    ['http://evil-app.example', 403],
    ['https://console.example', 403],
    ['null', 403]
  ] as const
  for (const [origin, status] of expectations) {
    const response = await exchange('sse GET', proxy.url('/events'), 'GET', { accept: 'text/event-stream', origin })
    t.equal(response.status, status, `${origin}: ${status}`)
  }
  const open = await setupRecording(t, { security: { allowedOrigins: ['*'] } })
  const any = await exchange('sse GET', open.proxy.url('/events'), 'GET', { accept: 'text/event-stream', origin: 'http://anything.example' })
  t.equal(any.status, 200, '"*": any origin passes')
})
