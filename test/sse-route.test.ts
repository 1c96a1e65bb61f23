import t, { type Test } from 'tap'
import { once } from 'node:events'
import { freePort } from './helpers/free-port.js'
import { SseClient } from './helpers/sse-client.js'
import { SseUpstream } from './helpers/sse-upstream.js'
import { startProxy } from './helpers/proxy.js'

/** `upstreamReplays`: the test's upstream sends, after a reconnect, what follows the Last-Event-ID it got. */
async function setup (test: Test, upstream?: SseUpstream, extra: Record<string, unknown> = {}, upstreamReplays = false) {
  const server = upstream ?? await SseUpstream.start()
  test.teardown(async () => await server.close())
  const proxy = await startProxy(test, { routes: [{ kind: 'sse', path: '/events', upstream: server.url('/upstream-events'), upstreamReplays }], ...extra })
  return { upstream: server, proxy }
}

t.test('events pass one by one, unbuffered: each is sent only after the client has the one before', async (t) => {
  const { upstream, proxy } = await setup(t)
  const client = await SseClient.open(proxy.url('/events'))
  t.teardown(() => client.close())
  await upstream.waitForStreams(1)
  for (let i = 1; i <= 20; i++) {
    upstream.broadcast(`id: u${i}\nevent: tick\ndata: payload ${i}\n\n`)
    await client.waitForEvents(i, 2000)
  }
  t.same(client.events.map((event) => event.data), Array.from({ length: 20 }, (_, i) => `payload ${i + 1}`))
  t.equal(client.events[0]?.event, 'tick')
})

t.test('the SSE response carries the streaming headers and no hop-by-hop headers', async (t) => {
  const upstream = await SseUpstream.start((request, response) => {
    upstream.openStream(request, response, { 'x-upstream': 'yes', 'keep-alive': 'timeout=5', 'content-length': '9999' })
  })
  const { proxy } = await setup(t, upstream)
  const client = await SseClient.open(proxy.url('/events'))
  t.teardown(() => client.close())
  t.equal(client.status, 200)
  t.equal(client.headers['content-type'], 'text/event-stream')
  t.equal(client.headers['cache-control'], 'no-cache')
  t.equal(client.headers['x-accel-buffering'], 'no')
  t.equal(client.headers['x-upstream'], 'yes')
  t.equal(client.headers['content-length'], undefined)
})

t.test('the query string and headers reach the upstream; hop-by-hop headers do not', async (t) => {
  const { upstream, proxy } = await setup(t)
  const client = await SseClient.open(proxy.url('/events?topic=a&topic=b'), {
    authorization: 'Bearer token',
    'x-custom': 'kept',
    connection: 'keep-alive, x-private',
    'x-private': 'dropped',
    'keep-alive': 'timeout=5'
  })
  t.teardown(() => client.close())
  await upstream.waitForStreams(1)
  const seen = upstream.requests[0]
  t.equal(seen?.url, '/upstream-events?topic=a&topic=b')
  t.equal(seen?.headers.authorization, 'Bearer token')
  t.equal(seen?.headers['x-custom'], 'kept')
  t.equal(seen?.headers['x-private'], undefined)
  t.equal(seen?.headers['keep-alive'], undefined)
})

t.test('comments and retry pass through; ids and event names never carry a line break', async (t) => {
  const { upstream, proxy } = await setup(t)
  const client = await SseClient.open(proxy.url('/events'))
  t.teardown(() => client.close())
  await upstream.waitForStreams(1)
  upstream.broadcast(': ping\n\nretry: 2500\n\nid: 7\ndata: line one\ndata: line two\n\n')
  const [event] = await client.waitForEvents(1)
  t.match(event, { id: /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{8}\.1$/, data: 'line one\nline two' }, 'the event carries a proxy id, not the upstream\'s')
  t.notMatch(event?.id, /^7$/)
  t.same(client.comments, ['ping'])
  t.same(client.retries, [2500])
})

t.test('with sessions.detachGraceSeconds 0, a client disconnect closes the upstream at once', async (t) => {
  const { upstream, proxy } = await setup(t, undefined, { sessions: { detachGraceSeconds: 0 } })
  const client = await SseClient.open(proxy.url('/events'))
  await upstream.waitForStreams(1)
  const [stream] = [...upstream.streams]
  const closed = once(stream!, 'close')
  client.close()
  await closed
  t.equal(upstream.streams.size, 0)
})

t.test('an upstream that ends its stream cleanly is reconnected at once with Last-Event-ID; the half event is dropped, the client stays', async (t) => {
  const { upstream, proxy } = await setup(t, undefined, {}, true)
  const client = await SseClient.open(proxy.url('/events'))
  t.teardown(() => client.close())
  await upstream.waitForStreams(1)
  const [stream] = [...upstream.streams]
  stream!.end('id: 1\ndata: whole\n\nid: 2\ndata: half')
  await upstream.waitForRequests(2)
  t.equal(upstream.requests[1]?.headers['last-event-id'], '1', 'the reconnect asks for what follows the last whole event')
  upstream.broadcast('id: 2\ndata: second\n\n')
  await client.waitForEvents(2)
  t.same(client.events.map((event) => event.data), ['whole', 'second'])
})

t.test('an upstream connection that breaks mid-event is reconnected; the half event is never forwarded', async (t) => {
  const { upstream, proxy } = await setup(t, undefined, { reconnect: { baseDelayMs: 10 } }, true)
  const client = await SseClient.open(proxy.url('/events'))
  t.teardown(() => client.close())
  await upstream.waitForStreams(1)
  const [stream] = [...upstream.streams]
  stream!.write('id: a\ndata: before\n\nid: b\ndata: cut')
  await client.waitForEvents(1)
  stream!.socket?.destroy()
  await upstream.waitForRequests(2)
  t.equal(upstream.requests[1]?.headers['last-event-id'], 'a')
  upstream.broadcast('id: b\ndata: after\n\n')
  await client.waitForEvents(2)
  t.same(client.events.map((event) => event.data), ['before', 'after'])
})

t.test('a client that stops reading is cut after limits.clientStallSeconds, counted, and can resume', async (t) => {
  const total = 20000
  const { upstream, proxy } = await setup(t, undefined, {
    limits: { clientBufferBytes: 65536, clientStallSeconds: 1 },
    history: { maxEvents: total + 1, maxBytes: 64 * 1024 * 1024 }
  })
  const slow = await SseClient.open(proxy.url('/events'))
  await upstream.waitForStreams(1)
  upstream.broadcast('data: first\n\n')
  const [first] = await slow.waitForEvents(1)
  slow.pause()
  // 20 MB: more than the kernel's socket buffers hold, so the proxy has events waiting for the client.
  const payload = 'z'.repeat(1000)
  for (let i = 0; i < total; i++) upstream.broadcast(`data: ${i} ${payload}\n\n`)
  await waitForMetric(proxy.url('/metrics'), /sse_slow_consumer_disconnects_total\{route_kind="sse",route="\/events"\} 1/)
  await waitForMetric(proxy.url('/metrics'), new RegExp(`sse_history_events ${total + 1}`))
  t.equal(upstream.streams.size, 1, 'the upstream stream kept running and recording')
  const memory = process.memoryUsage().rss
  slow.close()

  const resumed = await SseClient.open(proxy.url('/events'), { 'last-event-id': first?.id ?? '' })
  t.teardown(() => resumed.close())
  t.equal(resumed.headers['x-resume-status'], 'recovered')
  const events = await resumed.waitForEvents(total, 60000)
  t.ok(events.every((event, i) => event.data.startsWith(`${i} `)), 'every event it missed, in order, each once')
  t.ok(process.memoryUsage().rss - memory < 64 * 1024 * 1024, 'the replay is paced to the client, not buffered whole')
})

t.test('an upstream that cannot be reached gives 502 with a JSON error that names no host', async (t) => {
  const port = await freePort()
  const proxy = await startProxy(t, { routes: [{ kind: 'sse', path: '/events', upstream: `http://127.0.0.1:${port}/events` }] })
  const response = await fetch(proxy.url('/events'))
  t.equal(response.status, 502)
  const body = await response.json() as Record<string, unknown>
  t.equal(body.code, 'FST_MCP_SSE_UPSTREAM_UNAVAILABLE')
  t.notMatch(JSON.stringify(body), /127\.0\.0\.1|ECONNREFUSED|\bat\b/)
})

t.test('an upstream too slow to send headers gives 504', async (t) => {
  const upstream = await SseUpstream.start(() => { /* never answers */ })
  const { proxy } = await setup(t, upstream, { health: { connectTimeoutMs: 200 } })
  const response = await fetch(proxy.url('/events'))
  t.equal(response.status, 504)
  t.match(await response.json(), { code: 'FST_MCP_SSE_UPSTREAM_TIMEOUT', statusCode: 504 })
})

t.test('a non-SSE upstream response passes through with its status and body', async (t) => {
  const upstream = await SseUpstream.start((_request, response) => {
    response.writeHead(403, { 'content-type': 'application/json' }).end('{"error":"forbidden"}')
  })
  const { proxy } = await setup(t, upstream)
  const response = await fetch(proxy.url('/events'))
  t.equal(response.status, 403)
  t.same(await response.json(), { error: 'forbidden' })
})

t.test('an event over limits.maxEventBytes closes the stream cleanly and is counted', async (t) => {
  const { upstream, proxy } = await setup(t, undefined, { limits: { maxEventBytes: 1024 } })
  const client = await SseClient.open(proxy.url('/events'))
  await upstream.waitForStreams(1)
  upstream.broadcast('data: small\n\n')
  await client.waitForEvents(1)
  upstream.broadcast(`data: ${'x'.repeat(4096)}\n\n`)
  await client.ended
  t.same(client.events.map((event) => event.data), ['small'])
  const metrics = await (await fetch(proxy.url('/metrics'))).text()
  t.match(metrics, /sse_upstream_malformed_total\{route_kind="sse",route="\/events",reason="oversized-event"\} 1/)
})

t.test('malformed lines are ignored, counted, and the stream goes on', async (t) => {
  const { upstream, proxy } = await setup(t)
  const client = await SseClient.open(proxy.url('/events'))
  t.teardown(() => client.close())
  await upstream.waitForStreams(1)
  upstream.broadcast('retry: soon\nbogus: field\ndata: \xff\xfe after garbage\n\ndata: next\n\n')
  const events = await client.waitForEvents(2)
  t.same(events.map((event) => event.data), ['\xff\xfe after garbage', 'next'])
  const metrics = await (await fetch(proxy.url('/metrics'))).text()
  t.match(metrics, /sse_upstream_malformed_total\{[^}]*reason="invalid-retry"\} 1/)
  t.match(metrics, /sse_upstream_malformed_total\{[^}]*reason="unknown-field"\} 1/)
})

t.test('metrics: events forwarded are counted by route kind, and SSE routes stay out of the duration histogram', async (t) => {
  const { upstream, proxy } = await setup(t)
  const client = await SseClient.open(proxy.url('/events'))
  await upstream.waitForStreams(1)
  upstream.broadcast('data: a\n\ndata: b\n\n')
  await client.waitForEvents(2)
  client.close()
  await client.ended
  await fetch(proxy.url('/metrics'))
  // The second scrape sees the first one's duration.
  const metrics = await (await fetch(proxy.url('/metrics'))).text()
  t.match(metrics, /sse_events_forwarded_total\{route_kind="sse",route="\/events"\} 2/)
  t.notMatch(metrics, /http_request_duration_seconds_count\{[^}]*route="\/events"/)
  t.match(metrics, /http_request_duration_seconds_count\{[^}]*route="\/metrics"/)
})

t.test('closing the server ends open streams instead of waiting for them', async (t) => {
  const upstream = await SseUpstream.start()
  t.teardown(async () => await upstream.close())
  const proxy = await startProxy({ teardown: () => {} }, { routes: [{ kind: 'sse', path: '/events', upstream: upstream.url() }] })
  const client = await SseClient.open(proxy.url('/events'))
  await upstream.waitForStreams(1)
  await proxy.app.close()
  await client.ended
  t.equal(upstream.streams.size, 0)
})

async function waitForMetric (url: string, pattern: RegExp): Promise<void> {
  for (let attempt = 0; attempt < 500; attempt++) {
    if (pattern.test(await (await fetch(url)).text())) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`metric ${String(pattern)} never appeared`)
}
