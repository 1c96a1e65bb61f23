import t, { type Test } from 'tap'
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo, Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { startProxy, type RunningProxy } from './helpers/proxy.js'
import { V2Upstream } from './helpers/v2-upstream.js'

const ROUTE = '/mcp'
const HEADERS_2026 = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'x' }
const CALL = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}'

async function proxyTo (test: Test, upstreamUrl: string): Promise<RunningProxy> {
  return await startProxy(test, { routes: [{ kind: 'streamable-http', path: ROUTE, upstream: upstreamUrl }] })
}

async function withV2Upstream (test: Test): Promise<{ upstream: V2Upstream, proxy: RunningProxy }> {
  const upstream = await V2Upstream.start()
  test.teardown(async () => await upstream.close())
  return { upstream, proxy: await proxyTo(test, upstream.url) }
}

async function v2Client (test: Test, proxy: RunningProxy): Promise<Client> {
  const client = new Client({ name: 'cancel-test', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } })
  await client.connect(new StreamableHTTPClientTransport(new URL(proxy.url(ROUTE))))
  test.teardown(async () => await client.close())
  return client
}

/** A hand-written upstream on 127.0.0.1; its connections are cut when the test ends. */
async function rawUpstream (test: Test, handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<string> {
  const server = createServer((request, response) => {
    request.on('error', () => {})
    handler(request, response)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  test.teardown(() => { server.closeAllConnections(); server.close() })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}${ROUTE}`
}

/** Resolves true once `condition` holds; false after `timeoutMs` (polling, not a fixed sleep). */
async function until (condition: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) return false
    await sleep(5)
  }
  return true
}

/** A metric's one sample on the proxy's endpoint, 0 when it has none. */
async function metric (proxy: RunningProxy, name: string): Promise<number> {
  const text = await (await fetch(proxy.url('/metrics'))).text()
  const sample = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)
  return Number(sample?.[1] ?? 0)
}

/** Resolves true once the metric reads `value`; false after `timeoutMs`. */
async function metricReaches (proxy: RunningProxy, name: string, value: number, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (await metric(proxy, name) !== value) {
    if (Date.now() > deadline) return false
    await sleep(20)
  }
  return true
}

/** A raw POST, sent: the caller reads its response, or drops it. */
function rawPost (url: string, headers: Record<string, string>, body = CALL) {
  const request = httpRequest(url, { method: 'POST', headers })
  request.on('error', () => {})
  request.end(body)
  return request
}

t.test('a 2026-07-28 client that aborts a tool call before any response byte cancels it upstream within 100 ms', async (t) => {
  const { upstream, proxy } = await withV2Upstream(t)
  const client = await v2Client(t, proxy)
  const controller = new AbortController()
  let answered = false
  const call = client.callTool({ name: 'slow', arguments: { ms: 10000 } }, { signal: controller.signal, timeout: 20000 })
    .then(() => { answered = true }, () => {})
  t.ok(await until(() => upstream.slowCalls.length === 1), 'the call reached the upstream tool')
  await sleep(300)
  const abortedAt = Date.now()
  controller.abort()
  await call
  t.ok(await until(() => upstream.slowCalls[0]?.abortedAt !== undefined), 'the upstream tool\'s abort signal fired')
  const delay = (upstream.slowCalls[0]?.abortedAt ?? Infinity) - abortedAt
  t.comment(`upstream abort ${delay} ms after the client's`)
  t.ok(delay < 100, `within 100 ms (${delay} ms)`)
  t.notOk(answered, 'the client got no answer')
  t.equal(upstream.slowCalls[0]?.finished, false, 'the tool did not run to its end')
  t.equal(await metric(proxy, 'sse_requests_cancelled_total'), 1, 'counted once')
})

t.test('a 2026-07-28 client that aborts during a streamed answer cancels the upstream request', async (t) => {
  const { upstream, proxy } = await withV2Upstream(t)
  const client = await v2Client(t, proxy)
  const controller = new AbortController()
  const progress: number[] = []
  const call = client.callTool({ name: 'progress', arguments: { steps: 100, delayMs: 50 } }, {
    signal: controller.signal,
    timeout: 20000,
    onprogress: (update) => {
      progress.push(update.progress)
      controller.abort()
    }
  }).then(() => 'answered', () => 'rejected')
  t.equal(await call, 'rejected')
  t.same(progress, [1], 'the stream had begun')
  t.ok(await until(() => upstream.progressCalls[0]?.abortedAt !== undefined), 'the upstream tool\'s abort signal fired')
  t.equal(upstream.progressCalls[0]?.finished, false, 'the tool did not run to its end')
  t.ok(await metricReaches(proxy, 'sse_requests_cancelled_total', 1), 'counted')
  t.ok(await metricReaches(proxy, 'sse_streams_active', 0), 'the stream is closed')
})

t.test('a 2026-07-28 client that leaves during a JSON answer cancels the upstream request', async (t) => {
  let upstreamClosedEarly = false
  let upstreamFinished = false
  const url = await rawUpstream(t, (_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' })
    response.write('{"jsonrpc":"2.0","id":1,"result":{"content":[')
    // The rest, slowly: a large answer the client stops reading.
    const timer = setInterval(() => response.write('{"type":"text","text":"more"},'), 20)
    const end = setTimeout(() => { clearInterval(timer); response.end('{"type":"text","text":"end"}]}}'); upstreamFinished = true }, 5000)
    response.once('close', () => {
      clearInterval(timer)
      clearTimeout(end)
      if (!upstreamFinished) upstreamClosedEarly = true
    })
  })
  const proxy = await proxyTo(t, url)
  const request = rawPost(proxy.url(ROUTE), HEADERS_2026)
  const [response] = await once(request, 'response') as [IncomingMessage]
  t.equal(response.statusCode, 200)
  t.equal(response.headers['content-type'], 'application/json')
  const [first] = await once(response, 'data') as [Buffer]
  t.match(first.toString(), /^\{"jsonrpc":"2\.0"/, 'the answer had begun')
  request.destroy()
  t.ok(await until(() => upstreamClosedEarly), 'the upstream request was closed before its answer ended')
  t.equal(await metric(proxy, 'sse_requests_cancelled_total'), 1)
})

t.test('a 2026-07-28 request whose upstream cannot answer gets the proxy\'s own errors', async (t) => {
  // Nothing listens on port 1.
  const proxy = await proxyTo(t, `http://127.0.0.1:1${ROUTE}`)
  const refused = await fetch(proxy.url(ROUTE), { method: 'POST', headers: HEADERS_2026, body: CALL })
  t.equal(refused.status, 502)
  const body = await refused.json() as { code: string, message: string }
  t.equal(body.code, 'FST_MCP_SSE_UPSTREAM_UNAVAILABLE')
  t.notMatch(JSON.stringify(body), /127\.0\.0\.1/, 'the upstream is not named')

  const oddStatus = await rawUpstream(t, (_request, response) => {
    // A status line Fastify cannot pass on.
    response.socket?.end('HTTP/1.1 999 Odd\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}')
  })
  const odd = await proxyTo(t, oddStatus)
  const answer = await fetch(odd.url(ROUTE), { method: 'POST', headers: HEADERS_2026, body: CALL })
  t.equal(answer.status, 502)
  t.equal((await answer.json() as { code: string }).code, 'FST_MCP_SSE_UPSTREAM_UNAVAILABLE')
  t.equal(await metric(odd, 'sse_requests_cancelled_total'), 0, 'an error answer is no cancellation')
})

t.test('a 2026-07-28 answer passes with its status, headers and query; the upstream\'s CORS and hop-by-hop headers do not', async (t) => {
  let seen: IncomingMessage | undefined
  let seenBody = ''
  const url = await rawUpstream(t, (request, response) => {
    seen = request
    request.setEncoding('utf8')
    request.on('data', (chunk: string) => { seenBody += chunk })
    request.on('end', () => {
      response.writeHead(202, { 'content-type': 'application/json', 'x-upstream': 'yes', 'access-control-allow-origin': '*', 'keep-alive': 'timeout=5' })
      response.end('{}')
    })
  })
  const proxy = await proxyTo(t, url)
  const answer = await fetch(proxy.url(`${ROUTE}?tenant=a`), { method: 'POST', headers: { ...HEADERS_2026, 'last-event-id': 'kept' }, body: CALL })
  t.equal(answer.status, 202)
  t.equal(answer.headers.get('x-upstream'), 'yes')
  t.equal(answer.headers.get('access-control-allow-origin'), null)
  t.equal(await answer.text(), '{}')
  t.equal(seen?.url, `${ROUTE}?tenant=a`)
  t.equal(seen?.headers.host, new URL(url).host, 'the upstream is addressed as itself')
  t.equal(seen?.headers['accept-encoding'], 'identity')
  t.equal(seen?.headers['mcp-method'], 'tools/call')
  t.equal(seen?.headers['last-event-id'], 'kept', '2026-07-28 requests pass it on')
  t.equal(seenBody, CALL, 'the body byte for byte')
})

t.test('a client that left before the upstream\'s head leaves no stream open behind it', async (t) => {
  // Only 2026-07-28 requests are cancelled: here the head still comes, for a client already gone.
  let asked = 0
  const url = await rawUpstream(t, (_request, response) => {
    asked++
    setTimeout(() => {
      response.writeHead(200, { 'content-type': 'text/event-stream' })
      response.write('id: up-1\ndata: late\n\n')
    }, 300)
  })
  const proxy = await startProxy(t, {
    routes: [{ kind: 'streamable-http', path: ROUTE, upstream: url }],
    health: { heartbeatSeconds: 1 }
  })
  const request = rawPost(proxy.url(ROUTE), { ...HEADERS_2026, 'mcp-protocol-version': '2025-11-25' })
  t.ok(await until(() => asked === 1), 'the request reached the upstream')
  request.destroy()
  t.ok(await metricReaches(proxy, 'sse_history_events', 1), 'the proxy took the stream in, and its event')
  // Its close handlers ran although the client's 'close' had passed: not counted open, no heartbeat left behind.
  t.ok(await metricReaches(proxy, 'sse_streams_active', 0), 'no client stream is counted open')
})

t.test('2025 era: a client whose POST stream drops does not cancel; the tool runs to its end and the resumed stream brings its result', async (t) => {
  const { upstream, proxy } = await withV2Upstream(t)
  const sockets = new Set<Socket>()
  proxy.app.server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  const client = new V1Client({ name: 'cancel-test-2025', version: '1.0.0' })
  await client.connect(new V1Transport(new URL(proxy.url(ROUTE)), {
    reconnectionOptions: { initialReconnectionDelay: 50, maxReconnectionDelay: 500, reconnectionDelayGrowFactor: 1.5, maxRetries: 5 }
  }))
  t.teardown(async () => await client.close())
  const progress: number[] = []
  let cut = false
  const result = await client.callTool({ name: 'progress', arguments: { steps: 10, delayMs: 50 } }, undefined, {
    timeout: 20000,
    onprogress: (update) => {
      progress.push(update.progress)
      if (update.progress === 2 && !cut) {
        cut = true
        for (const socket of sockets) socket.destroy()
      }
    }
  })
  t.ok(cut, 'the client\'s connections were cut mid-call')
  t.same(result.content, [{ type: 'text', text: 'done 10' }], 'the result came on the resumed stream')
  t.same(progress, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'with every progress notification once')
  t.equal(upstream.progressCalls.length, 1, 'the tool ran once')
  t.equal(upstream.progressCalls[0]?.abortedAt, undefined, 'its abort signal never fired')
  t.equal(upstream.progressCalls[0]?.finished, true, 'it ran to its end')
  t.ok(await metric(proxy, 'sse_client_reconnections_total') >= 1, 'through a resume with Last-Event-ID')
  t.equal(await metric(proxy, 'sse_requests_cancelled_total'), 0, 'no cancellation counted')
})
