import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import cors from '@fastify/cors'
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { mcpSseResilience, resolveOptions } from '../lib/index.js'
import { exchange, MCP_ACCEPT, walkEveryRoute, type Exchange } from './helpers/exchange.js'
import { RecordingMcpUpstream, everyRouteKind, proxyOnEveryRouteKind } from './helpers/recording-mcp-upstream.js'
import { rawExchange } from './helpers/hostile.js'
import type { RunningProxy } from './helpers/proxy.js'

const PAGE = 'http://app.example:5173'
const INITIALIZE = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'browser-access', version: '1' } } })
const MCP_REQUEST_HEADERS = ['content-type', 'mcp-protocol-version', 'mcp-session-id', 'last-event-id', 'mcp-method', 'mcp-name', 'authorization']

/** One request of every route kind of proxyOnEveryRouteKind(); the POSTs open nothing. */
const EVERY_ROUTE_KIND = [
  ['GET', '/events'],
  ['GET', '/sse'],
  ['POST', '/messages?sessionId=x'],
  ['POST', '/mcp'],
  ['GET', '/mcp'],
  ['DELETE', '/mcp']
] as const

/** A GET of the plain SSE route with these Host and Origin headers (undefined: none). */
async function streamWith (proxy: RunningProxy, host: string, origin?: string): Promise<Exchange> {
  return await exchange('sse GET', proxy.url('/events'), 'GET', { host, accept: 'text/event-stream', ...(origin === undefined ? {} : { origin }) })
}

function refusedWith (response: Exchange): string {
  if (response.status !== 403) return String(response.status)
  return (JSON.parse(response.body) as { error: { data: { code: string } } }).error.data.code
}

function corsHeaders (headers: IncomingHttpHeaders): Record<string, string | string[] | undefined> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => name.startsWith('access-control-')))
}

t.test('on a loopback bind, localhost names and origins (any port) pass, as the MCP SDK allows them; a rebound Host or a foreign Origin gets 403 on every route kind, before the upstream sees it', async (t) => {
  const { upstream, proxy } = await proxyOnEveryRouteKind(t)
  const own = new URL(proxy.origin)
  const allowed = [
    [own.host, proxy.origin],
    [`localhost:${own.port}`, 'http://localhost:5173'],
    [`LOCALHOST:${own.port}`, 'https://localhost'],
    [`[::1]:${own.port}`, 'http://[::1]:8080'],
    ['127.0.0.1', undefined]
  ] as const
  for (const [host, origin] of allowed) {
    t.equal((await streamWith(proxy, host, origin)).status, 200, `Host ${host}, Origin ${String(origin)}: passes`)
  }
  const served = upstream.requests.length

  const refused = [
    ['evil.example', undefined, 'FST_MCP_SSE_HOST_NOT_ALLOWED'],
    [`evil.example:${own.port}`, `http://evil.example:${own.port}`, 'FST_MCP_SSE_HOST_NOT_ALLOWED'],
    [`localhost.evil.example:${own.port}`, undefined, 'FST_MCP_SSE_HOST_NOT_ALLOWED'],
    [`127.0.0.1.nip.io:${own.port}`, undefined, 'FST_MCP_SSE_HOST_NOT_ALLOWED'],
    [own.host, 'http://evil.example', 'FST_MCP_SSE_ORIGIN_NOT_ALLOWED'],
    [own.host, 'http://localhost.evil.example', 'FST_MCP_SSE_ORIGIN_NOT_ALLOWED'],
    [own.host, 'ftp://localhost', 'FST_MCP_SSE_ORIGIN_NOT_ALLOWED'],
    [own.host, 'null', 'FST_MCP_SSE_ORIGIN_NOT_ALLOWED']
  ] as const
  for (const [host, origin, code] of refused) {
    for (const [method, path] of EVERY_ROUTE_KIND) {
      const response = await exchange(`${method} ${path}`, proxy.url(path), method, { host, accept: MCP_ACCEPT, 'content-type': 'application/json', ...(origin === undefined ? {} : { origin }) },
        method === 'POST' ? INITIALIZE : undefined)
      t.equal(refusedWith(response), code, `Host ${host}, Origin ${String(origin)}, ${method} ${path}: 403 ${code}`)
      t.notMatch(response.body, /evil|nip\.io|127\.0\.0\.1|localhost/, 'the body names nothing it was sent, nor the upstream')
    }
  }
  const noHost = await rawExchange(proxy.origin, 'GET /events HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n')
  t.equal(noHost.status, 403, 'HTTP/1.0 without Host: 403')
  t.equal(upstream.requests.length, served, 'the upstream saw none of the refused requests')
})

t.test('the conformance suite\'s dns-rebinding-protection check: initialize and notifications/initialized with Host and Origin of 127.0.0.1:<port> pass; with evil.example.com they get 403', async (t) => {
  const { proxy } = await proxyOnEveryRouteKind(t)
  const as = (host: string): Record<string, string> => ({ host, origin: `http://${host}`, 'content-type': 'application/json', accept: MCP_ACCEPT, 'mcp-protocol-version': '2025-11-25' })
  const own = new URL(proxy.origin).host
  const initialized = await exchange('initialize', proxy.url('/mcp'), 'POST', as(own), INITIALIZE)
  t.equal(initialized.status, 200)
  const notified = await exchange('initialized', proxy.url('/mcp'), 'POST', { ...as(own), 'mcp-session-id': String(initialized.headers['mcp-session-id']) },
    JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }))
  t.equal(notified.status, 202)
  const rebound = await exchange('initialize', proxy.url('/mcp'), 'POST', as('evil.example.com'), INITIALIZE)
  t.equal(rebound.status, 403)
})

t.test('on a bind that is not loopback (0.0.0.0, as behind a load balancer), Host is not checked and localhost origins are not let in on their own; lists are checked whatever the bind', async (t) => {
  const open = await proxyOnEveryRouteKind(t, { security: { allowedOrigins: [PAGE] } }, '0.0.0.0')
  t.equal((await streamWith(open.proxy, 'mcp.example.com')).status, 200, 'any Host: a load balancer\'s name passes')
  t.equal((await streamWith(open.proxy, 'mcp.example.com', PAGE)).status, 200, 'a listed origin passes')
  t.equal(refusedWith(await streamWith(open.proxy, 'mcp.example.com', 'http://localhost:5173')), 'FST_MCP_SSE_ORIGIN_NOT_ALLOWED', 'a localhost page is a page like any other')

  const listed = await proxyOnEveryRouteKind(t, { security: { allowedHosts: ['MCP.example.com', '[::1]'], localhostOrigins: true } }, '0.0.0.0')
  t.equal((await streamWith(listed.proxy, 'mcp.EXAMPLE.com:8443')).status, 200, 'a listed name passes, in any case and on any port')
  t.equal((await streamWith(listed.proxy, '[::1]:80')).status, 200, 'an IPv6 name passes')
  t.equal(refusedWith(await streamWith(listed.proxy, 'evil.example')), 'FST_MCP_SSE_HOST_NOT_ALLOWED', 'another name is refused, whatever the bind')
  t.equal(refusedWith(await streamWith(listed.proxy, '127.0.0.1')), 'FST_MCP_SSE_HOST_NOT_ALLOWED', 'a list replaces the localhost names')
  t.equal((await streamWith(listed.proxy, 'mcp.example.com', 'http://localhost:5173')).status, 200, 'localhostOrigins: true lets localhost pages in whatever the bind')
})

t.test('[::1] is a loopback bind; localhostOrigins false and allowedHosts ["*"] turn each default off', async (t) => {
  const { proxy: on } = await proxyOnEveryRouteKind(t, { security: { localhostOrigins: false } }, '::1')
  t.equal(refusedWith(await streamWith(on, 'evil.example')), 'FST_MCP_SSE_HOST_NOT_ALLOWED', '[::1]: the Host is checked')
  t.equal((await streamWith(on, '[::1]')).status, 200)
  t.equal(refusedWith(await streamWith(on, '[::1]', 'http://localhost:5173')), 'FST_MCP_SSE_ORIGIN_NOT_ALLOWED', 'localhostOrigins: false refuses localhost pages')

  const anyHost = await proxyOnEveryRouteKind(t, { security: { allowedHosts: ['*'] } })
  t.equal((await streamWith(anyHost.proxy, 'evil.example')).status, 200, 'allowedHosts ["*"]: no Host check')
  t.equal((await streamWith(anyHost.proxy, 'evil.example', 'http://localhost:5173')).status, 200, 'localhost pages still pass on loopback')
})

t.test('a proxy without a network bind (a Unix socket, or inject() before listen) checks no Host', async (t) => {
  const upstream = await RecordingMcpUpstream.start()
  t.teardown(async () => await upstream.close())
  const injected = Fastify()
  await injected.register(mcpSseResilience, everyRouteKind(upstream))
  t.teardown(async () => await injected.close())
  const response = await injected.inject({ method: 'POST', url: '/mcp', headers: { host: 'evil.example', 'content-type': 'application/json', accept: MCP_ACCEPT }, payload: INITIALIZE })
  t.equal(response.statusCode, 200, 'inject(): the upstream answered')

  const dir = await mkdtemp(join(tmpdir(), 'mcp-sse-socket-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  const socketPath = join(dir, 'proxy.sock')
  const unix = Fastify({ forceCloseConnections: true })
  await unix.register(mcpSseResilience, everyRouteKind(upstream))
  await unix.listen({ path: socketPath })
  t.teardown(async () => await unix.close())
  const status = await new Promise<number>((resolve, reject) => {
    const request = httpRequest({ socketPath, path: '/mcp', method: 'POST', headers: { host: 'mcp.example.com', 'content-type': 'application/json', accept: MCP_ACCEPT } }, (answer) => {
      answer.resume()
      resolve(answer.statusCode ?? 0)
    })
    request.once('error', reject)
    request.end(INITIALIZE)
  })
  t.equal(status, 200, 'a Unix socket: whatever fronts it sets Host')
})

t.test('CORS: a preflight from an allowed origin gets 204 with the MCP methods and headers, on every route kind, without reaching the upstream; answers expose Mcp-Session-Id and X-Resume-Status', async (t) => {
  const { upstream, proxy } = await proxyOnEveryRouteKind(t, { security: { allowedOrigins: [PAGE] } })
  for (const path of ['/mcp', '/sse', '/messages?sessionId=x', '/events']) {
    const preflight = await exchange(`OPTIONS ${path}`, proxy.url(path), 'OPTIONS', {
      origin: PAGE, 'access-control-request-method': 'POST', 'access-control-request-headers': MCP_REQUEST_HEADERS.join(',')
    })
    t.equal(preflight.status, 204, `OPTIONS ${path}: 204`)
    t.same(corsHeaders(preflight.headers), {
      'access-control-allow-origin': PAGE,
      'access-control-allow-methods': 'GET, POST, DELETE',
      'access-control-allow-headers': MCP_REQUEST_HEADERS.join(', '),
      'access-control-expose-headers': 'mcp-session-id, x-resume-status, www-authenticate',
      'access-control-max-age': '7200'
    }, `OPTIONS ${path}: the allowed methods and headers`)
    t.match(preflight.headers.vary, /Origin/, `OPTIONS ${path}: Vary: Origin`)
  }
  t.equal(upstream.requests.length, 0, 'the upstream saw no preflight')
  const notPreflight = await exchange('OPTIONS /mcp', proxy.url('/mcp'), 'OPTIONS', { origin: PAGE })
  t.equal(notPreflight.status, 400, 'an OPTIONS without Access-Control-Request-Method is no preflight')
  for (const path of ['/mcp', '/events']) {
    const withoutOrigin = await exchange(`OPTIONS ${path}`, proxy.url(path), 'OPTIONS', {})
    t.equal(withoutOrigin.status, 404, `OPTIONS ${path}: nor is one without Origin: not found, as before`)
    t.same(corsHeaders(withoutOrigin.headers), {})
  }

  for (const response of await walkEveryRoute(proxy, { origin: PAGE })) {
    t.ok(response.status < 300, `${response.label}: ${response.status}`)
    t.equal(response.headers['access-control-allow-origin'], PAGE, `${response.label}: the page may read it`)
    t.equal(response.headers['access-control-expose-headers'], 'mcp-session-id, x-resume-status, www-authenticate', `${response.label}: and its MCP headers`)
  }
})

t.test('CORS answers replace the upstream\'s own, and reach a resume from the history and a request sent again after an upstream restart', async (t) => {
  const { upstream, proxy } = await proxyOnEveryRouteKind(t, { security: { allowedOrigins: [PAGE] } })
  upstream.responseHeaders = {
    'access-control-allow-origin': 'http://upstream.example',
    'access-control-allow-credentials': 'true',
    'access-control-expose-headers': 'x-upstream-only'
  }
  const expected = { 'access-control-allow-origin': PAGE, 'access-control-expose-headers': 'mcp-session-id, x-resume-status, www-authenticate' }
  for (const response of await walkEveryRoute(proxy, { origin: PAGE })) {
    t.same(corsHeaders(response.headers), expected, `${response.label}: the proxy's CORS headers, none of the upstream's`)
  }

  const first = await exchange('sse GET', proxy.url('/events'), 'GET', { origin: PAGE, accept: 'text/event-stream' })
  const [, eventId = ''] = /^id: (.+)$/m.exec(first.body) ?? []
  // Nothing follows that event: the head is all there is to read.
  const resumed = await rawExchange(proxy.origin, `GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: ${PAGE}\r\nAccept: text/event-stream\r\nLast-Event-ID: ${eventId}\r\n\r\n`,
    5000, (received) => received.includes('\r\n\r\n'))
  t.equal(resumed.headers.get('x-resume-status'), 'recovered')
  t.same(corsHeaders(Object.fromEntries(resumed.headers)), expected, 'a resume from the history carries them')

  const json = { origin: PAGE, 'content-type': 'application/json', accept: MCP_ACCEPT }
  const initialized = await exchange('initialize', proxy.url('/mcp'), 'POST', json, INITIALIZE)
  const session = { ...json, 'mcp-session-id': String(initialized.headers['mcp-session-id']) }
  upstream.forgetSessions()
  const resent = await exchange('tools/call', proxy.url('/mcp'), 'POST', session, JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'x' } }))
  t.equal(upstream.sessionIds.length, 4, 'the proxy opened the lost session again upstream (after the two of the walk, and the first of this one)')
  t.equal(resent.status, 200)
  t.same(corsHeaders(resent.headers), expected, 'the answer of the request sent again carries them')
})

t.test('CORS stays on the proxy\'s paths: the host application\'s other paths get no answer from it, a host application with its own @fastify/cors starts, and a prefix is honoured', async (t) => {
  const upstream = await RecordingMcpUpstream.start()
  t.teardown(async () => await upstream.close())
  const options = { ...everyRouteKind(upstream), security: { allowedOrigins: [PAGE] } }
  const preflight = async (app: FastifyInstance, url: string, origin = PAGE): Promise<{ status: number, allowOrigin: unknown }> => {
    const response = await app.inject({ method: 'OPTIONS', url, headers: { origin, 'access-control-request-method': 'POST' } })
    return { status: response.statusCode, allowOrigin: response.headers['access-control-allow-origin'] }
  }

  const plain = Fastify()
  plain.get('/other', async () => 'host')
  await plain.register(mcpSseResilience, options)
  t.teardown(async () => await plain.close())
  t.same(await preflight(plain, '/other'), { status: 404, allowOrigin: undefined }, 'a path of the host application: not answered')
  t.same(await preflight(plain, '/mcp'), { status: 204, allowOrigin: PAGE })

  const withCors = Fastify()
  await withCors.register(cors, { origin: 'http://host-app.example' })
  withCors.get('/other', async () => 'host')
  await withCors.register(mcpSseResilience, options)
  await withCors.ready()
  t.teardown(async () => await withCors.close())
  t.same(await preflight(withCors, '/other', 'http://host-app.example'), { status: 204, allowOrigin: 'http://host-app.example' }, 'the host\'s own CORS answers for its paths')
  t.same(await preflight(withCors, '/mcp', 'http://host-app.example'), { status: 204, allowOrigin: 'http://host-app.example' }, 'and for the proxy\'s: its hook runs first')
  const request = await withCors.inject({ method: 'POST', url: '/mcp', headers: { origin: 'http://host-app.example', 'content-type': 'application/json', accept: MCP_ACCEPT }, payload: INITIALIZE })
  t.equal(request.statusCode, 403, 'the proxy\'s Origin check still refuses an origin it does not allow')

  const prefixed = Fastify()
  await prefixed.register(async (scope) => { await scope.register(mcpSseResilience, options) }, { prefix: '/api' })
  t.teardown(async () => await prefixed.close())
  t.same(await preflight(prefixed, '/api/mcp'), { status: 204, allowOrigin: PAGE }, 'under a prefix: the prefixed path')
  t.same(await preflight(prefixed, '/api/messages?sessionId=x'), { status: 204, allowOrigin: PAGE })
  t.equal((await preflight(prefixed, '/mcp')).status, 404, 'not the bare one')
  t.equal((await preflight(prefixed, '/api/mcp', 'http://evil.example')).status, 403)
})

t.test('security options: unknown keys, host names with a scheme or a port, and values of no kind the key takes are each named', async (t) => {
  const routes = [{ kind: 'sse', path: '/events', upstream: 'http://127.0.0.1:3002/events' }]
  const problems = (options: Record<string, unknown>): string[] => {
    try {
      resolveOptions({ routes, ...options })
      return []
    } catch (error) {
      return String((error as Error).message).split('\n').slice(1).map((line) => line.trim())
    }
  }
  const hostName = 'must be a host name without scheme or port ("localhost", "[::1]", "mcp.example.com"), or "*"'
  t.same(problems({ security: { allowedHosts: ['localhost:3000', 'http://mcp.example.com', '::1', '', 'MCP.example.com', '[::1]', '*'] } }), [
    `- security.allowedHosts[0]: ${hostName}`,
    `- security.allowedHosts[1]: ${hostName}`,
    `- security.allowedHosts[2]: ${hostName}`,
    `- security.allowedHosts[3]: ${hostName}`
  ])
  t.same(problems({ security: { allowedHosts: [] } }), ['- security.allowedHosts: must have at least 1 item(s)'])
  t.same(problems({ security: { allowedHosts: 'localhost', localhostOrigins: 'yes', allowedHost: ['x'] } }), [
    '- security.allowedHost: unknown key',
    '- security.localhostOrigins: must be "auto", true or false',
    '- security.allowedHosts: must be "auto" or a list'
  ])
  t.same(problems({ store: { kind: 'disk', keyPrefix: 'a b' } }), ['- store.kind: must be "memory" or "redis"', '- store.keyPrefix: must match ^[^{}\\s]*$'], 'the same for the other sections\' choices and patterns')
  t.match(resolveOptions({ routes }).security, { allowedOrigins: [], localhostOrigins: 'auto', allowedHosts: 'auto' }, 'the defaults')
})
