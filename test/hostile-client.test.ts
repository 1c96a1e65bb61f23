import t, { type Test } from 'tap'
import { request as httpRequest } from 'node:http'
import { SseClient } from './helpers/sse-client.js'
import type { RunningProxy } from './helpers/proxy.js'
import { proxyOnEveryRouteKind } from './helpers/recording-mcp-upstream.js'
import { proxyStillServes, rawExchange } from './helpers/hostile.js'

// Each case: one hostile client input, the outcome in the test's name. None may bring the process down.

const MCP_ACCEPT = 'application/json, text/event-stream'
const INITIALIZE = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'hostile', version: '1' } } })

const setup = proxyOnEveryRouteKind

async function initialize (proxy: RunningProxy): Promise<string> {
  const response = await fetch(proxy.url('/mcp'), { method: 'POST', headers: { 'content-type': 'application/json', accept: MCP_ACCEPT }, body: INITIALIZE })
  await response.text()
  return response.headers.get('mcp-session-id') ?? ''
}

/** The path of the legacy session's messages endpoint, from its stream's first event. */
async function openLegacySession (test: Test, proxy: RunningProxy): Promise<string> {
  const stream = await SseClient.open(proxy.url('/sse'))
  test.teardown(() => stream.close())
  const [endpoint] = await stream.waitForEvents(1)
  return endpoint?.data ?? ''
}

t.test('Last-Event-ID with a raw CR, LF, line folding or NUL (CRLF injection) gets 400 from the HTTP parser: nothing reaches the upstream, nothing is injected', async (t) => {
  const { upstream, proxy } = await setup(t)
  const values = ['abc\rX-Injected: yes', 'abc\nX-Injected: yes', 'abc\r\n X-Injected: yes', 'abc\0X-Injected: yes']
  for (const path of ['/events', '/sse', '/mcp']) {
    for (const value of values) {
      const response = await rawExchange(proxy.origin, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nLast-Event-ID: ${value}\r\n\r\n`)
      t.equal(response.status, 400, `${path} ${JSON.stringify(value)}: 400`)
      t.notOk(response.headers.has('x-injected'), 'no injected header')
      t.notMatch(response.body, /X-Injected|\bat\s+\S+:\d+/, 'the body names nothing of it, and carries no stack')
    }
  }
  t.equal(upstream.requests.length, 0, 'the upstream saw none of them')
  t.ok(await proxyStillServes(proxy))
})

t.test('a Last-Event-ID that smuggles an encoded CRLF is malformed on every route kind: X-Resume-Status unrecoverable; reason=malformed, and nothing is injected into headers or body', async (t) => {
  const { proxy } = await setup(t)
  const sessionId = await initialize(proxy)
  const values = [
    'AAAAAAAAAAAAAAAAAAAAAA.1%0D%0AX-Injected:%20yes',
    'AAAAAAAAAAAAAAAAAAAAAA.1\\r\\nX-Injected: yes',
    'x%0d%0a%0d%0adata: injected',
    'AAAAAAAAAAAAAAAAAAAAAA.1 X-Injected: yes'
  ]
  const routes = [['/events', ''], ['/sse', ''], ['/mcp', `Mcp-Session-Id: ${sessionId}\r\n`]]
  for (const [path, extraHeaders] of routes) {
    for (const value of values) {
      const response = await rawExchange(proxy.origin, `GET ${path ?? ''} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n${extraHeaders ?? ''}Last-Event-ID: ${value}\r\n\r\n`, 2000, (received) => received.includes('"reason":"malformed"}\n\n'))
      t.equal(response.status, 200, `${path ?? ''} ${JSON.stringify(value)}: a fresh or live stream`)
      t.equal(response.headers.get('x-resume-status'), 'unrecoverable; reason=malformed')
      t.notOk(response.headers.has('x-injected'), 'no injected header')
      t.notMatch(response.body, /injected/i, 'the id is not echoed into the stream')
      t.match(response.body, /event: resume-status\ndata: \{"recovered":false,"reason":"malformed"\}/, 'the in-band notice')
    }
  }
  t.match(await (await fetch(proxy.url('/metrics'))).text(), /sse_last_event_id_misses_total\{route_kind="streamable-http",route="\/mcp",reason="malformed"\} 4/)
})

t.test('a garbage or 10 KB Last-Event-ID on streamable-http and legacy-sse is malformed, told in the header and in-band, and the client goes on live', async (t) => {
  const { proxy } = await setup(t)
  const sessionId = await initialize(proxy)
  for (const value of ['garbage', 'x'.repeat(10 * 1024), '.'.repeat(23), 'AAAAAAAAAAAAAAAAAAAAAA.0', 'AAAAAAAAAAAAAAAAAAAAAA.99999999999999999999']) {
    for (const [path, headers] of [['/mcp', { 'mcp-session-id': sessionId }], ['/sse', {}]] as const) {
      const client = await SseClient.open(proxy.url(path), { ...headers, 'last-event-id': value })
      t.equal(client.status, 200)
      t.equal(client.headers['x-resume-status'], 'unrecoverable; reason=malformed', `${path} ${value.slice(0, 30)}: malformed`)
      const [notice] = await client.waitForEvents(1)
      t.same(JSON.parse(notice?.data ?? '{}'), { recovered: false, reason: 'malformed' })
      if (path === '/sse') {
        const [, endpoint] = await client.waitForEvents(2)
        t.equal(endpoint?.event, 'endpoint', 'a fresh legacy session follows')
      }
      client.close()
    }
  }
  t.ok(await proxyStillServes(proxy))
})

t.test('a Last-Event-ID past the HTTP server\'s header limit gets 431, and the proxy goes on', async (t) => {
  const { upstream, proxy } = await setup(t)
  const response = await rawExchange(proxy.origin, `GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nLast-Event-ID: ${'x'.repeat(20 * 1024)}\r\n\r\n`)
  t.equal(response.status, 431)
  t.equal(upstream.requests.length, 0)
  t.ok(await proxyStillServes(proxy))
})

t.test('a garbage Mcp-Session-Id on POST, GET and DELETE gets 404 with a JSON-RPC error and never reaches the upstream', async (t) => {
  const { upstream, proxy } = await setup(t)
  const legacyEndpoint = await openLegacySession(t, proxy)
  const legacySessionId = new URL(legacyEndpoint, 'http://proxy').searchParams.get('sessionId') ?? ''
  const realSession = await initialize(proxy)
  const before = upstream.requests.length
  const garbage = [
    'garbage',
    'x'.repeat(10 * 1024),
    '../../../etc/passwd',
    '%00%0d%0a',
    `${realSession}x`,
    realSession.slice(0, -1),
    legacySessionId,
    upstream.sessionIds.find((id) => id.startsWith('upstream-session-')) ?? 'missing'
  ]
  for (const sessionId of garbage) {
    for (const method of ['POST', 'GET', 'DELETE']) {
      const response = await fetch(proxy.url('/mcp'), {
        method,
        headers: { 'content-type': 'application/json', accept: MCP_ACCEPT, 'mcp-session-id': sessionId },
        ...(method === 'POST' ? { body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }) } : {})
      })
      t.equal(response.status, 404, `${method} ${sessionId.slice(0, 30)}: 404`)
      t.same(await response.json(), { jsonrpc: '2.0', error: { code: -32001, message: 'Session not found', data: { code: 'FST_MCP_SSE_SESSION_NOT_FOUND' } }, id: null })
    }
  }
  t.equal(upstream.requests.length, before, 'the upstream saw none of them')
  const stillGood = await fetch(proxy.url('/mcp'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: MCP_ACCEPT, 'mcp-session-id': realSession },
    body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/list' })
  })
  await stillGood.text()
  t.equal(stillGood.status, 200, 'the real session was not harmed by the near misses')
})

t.test('a POST body over limits.maxBodyBytes gets 413 on every POST route, with Content-Length or chunked, and never reaches the upstream', async (t) => {
  const { upstream, proxy } = await setup(t, { limits: { maxBodyBytes: 1024 } })
  const legacyEndpoint = await openLegacySession(t, proxy)
  const sessionId = await initialize(proxy)
  const before = upstream.requests.length
  const body = JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { padding: 'p'.repeat(4096) } })
  const targets = [['/mcp', { 'mcp-session-id': sessionId }], ['/mcp', {}], [legacyEndpoint, {}]] as const
  for (const [path, headers] of targets) {
    const withLength = await fetch(proxy.url(path), { method: 'POST', headers: { 'content-type': 'application/json', accept: MCP_ACCEPT, ...headers }, body })
    t.equal(withLength.status, 413, `${path}, with Content-Length: 413`)
    t.match(await withLength.json(), { statusCode: 413, code: 'FST_ERR_CTP_BODY_TOO_LARGE' })
    const chunked = await postChunked(proxy.url(path), { 'content-type': 'application/json', accept: MCP_ACCEPT, ...headers }, body, 512)
    t.equal(chunked, 413, `${path}, chunked, with no length announced: 413`)
  }
  t.equal(upstream.requests.length, before, 'the upstream saw none of them')
  t.ok(await proxyStillServes(proxy))
})

/** A POST whose body goes out in `pieceBytes` chunks with Transfer-Encoding: chunked; resolves the status. */
async function postChunked (url: string, headers: Record<string, string>, body: string, pieceBytes: number): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const request = httpRequest(url, { method: 'POST', agent: false, headers: { ...headers, 'transfer-encoding': 'chunked' } }, (response) => {
      response.resume()
      resolve(response.statusCode ?? 0)
    })
    request.once('error', reject)
    for (let start = 0; start < body.length; start += pieceBytes) request.write(body.slice(start, start + pieceBytes))
    request.end()
  })
}
