import t, { type Test } from 'tap'
import { once } from 'node:events'
import { Writable } from 'node:stream'
import type { ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import { mcpSseResilience, type McpSseResilienceOptions } from '../lib/index.js'
import { reconnectDelayMs, parseRetryAfter } from '../lib/upstream/backoff.js'
import { SseClient } from './helpers/sse-client.js'
import { SseUpstream } from './helpers/sse-upstream.js'
import { startProxy } from './helpers/proxy.js'

type Extra = Omit<McpSseResilienceOptions, 'routes'>

/** An upstream with an event log that survives its restarts, and honours Last-Event-ID (or not). */
class ReplayingUpstream {
  readonly log: string[] = []
  upstream!: SseUpstream
  port = 0
  /** How the events are written: LF lines, with or without a space after the colon, or CRLF lines. */
  spelling: 'lf' | 'lf-tight' | 'crlf' = 'lf'

  constructor (readonly honoursLastEventId: boolean) {}

  async start (): Promise<void> {
    this.upstream = new SseUpstream((request, response) => {
      this.upstream.openStream(request, response)
      const after = this.honoursLastEventId ? Number(request.headers['last-event-id'] ?? 0) : 0
      response.write(this.log.slice(after).map((data, index) => this.#event(after + index + 1, data)).join(''))
    })
    this.upstream.server.listen(this.port, '127.0.0.1')
    await once(this.upstream.server, 'listening')
    this.port = (this.upstream.server.address() as AddressInfo).port
  }

  emit (data: string): void {
    this.log.push(data)
    this.upstream.broadcast(this.#event(this.log.length, data))
  }

  #event (id: number, data: string): string {
    if (this.spelling === 'lf') return `id: ${id}\ndata: ${data}\n\n`
    return this.spelling === 'lf-tight' ? `id:${id}\ndata:${data}\n\n` : `id: ${id}\r\ndata: ${data}\r\n\r\n`
  }

  async stop (): Promise<void> {
    await this.upstream.close()
  }
}

/** An upstream whose first stream sends one event and closes; every later request gets `answer`. */
async function oneEventThen (answer: (response: ServerResponse) => void): Promise<SseUpstream & { answers: () => number }> {
  let answers = 0
  const upstream = await SseUpstream.start((request, response) => {
    answers++
    if (answers === 1) {
      upstream.openStream(request, response)
      response.end('id: 1\ndata: only\n\n')
    } else {
      answer(response)
    }
  })
  return Object.assign(upstream, { answers: () => answers })
}

/** `upstreamReplays`: whether the upstream honours Last-Event-ID; without it, each reconnect is a gap the client is told of. */
async function proxyFor (test: Test, url: string, extra: Extra = {}, upstreamReplays = false) {
  return await startProxy(test, { routes: [{ kind: 'sse', path: '/events', upstream: url, upstreamReplays }], reconnect: { baseDelayMs: 100, jitter: 0.1 }, ...extra })
}

/** What a client received, with each gap notice as `gap`. */
const dataOf = (client: SseClient): string[] => client.events.map((event) => event.event === 'resume-status' ? 'gap' : event.data)

/** The upstream started, the proxy in front of it, and one client whose upstream stream is open. */
async function clientThroughProxy (test: Test, upstream: ReplayingUpstream, extra: Extra = {}) {
  await upstream.start()
  test.teardown(async () => await upstream.stop())
  const proxy = await proxyFor(test, upstream.upstream.url(), extra, upstream.honoursLastEventId)
  const client = await SseClient.open(proxy.url('/events'))
  test.teardown(() => client.close())
  await upstream.upstream.waitForStreams(1)
  return { upstream, proxy, client }
}

async function waitForMetric (url: string, pattern: RegExp): Promise<string> {
  for (let attempt = 0; attempt < 500; attempt++) {
    const text = await (await fetch(url)).text()
    if (pattern.test(text)) return text
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`metric ${String(pattern)} never appeared`)
}

t.test('backoff: immediate after a clean close, then exponential within the jitter, hints first, capped', async (t) => {
  const policy = { baseDelayMs: 1000, maxDelayMs: 30000, factor: 2, jitter: 0.1, maxRetries: 10, maxHintDelayMs: 5000, dedupeWindow: 10 }
  t.equal(reconnectDelayMs(policy, 1, true, undefined), 0)
  t.equal(reconnectDelayMs(policy, 2, true, undefined, () => 0.5), 1000)
  t.equal(reconnectDelayMs(policy, 1, false, undefined, () => 0.5), 1000)
  t.equal(reconnectDelayMs(policy, 3, false, undefined, () => 1), 4400)
  t.equal(reconnectDelayMs(policy, 3, false, undefined, () => 0), 3600)
  t.equal(reconnectDelayMs(policy, 20, false, undefined, () => 0.5), 30000)
  t.equal(reconnectDelayMs(policy, 1, true, 2500), 2500)
  t.equal(reconnectDelayMs(policy, 1, true, 60000), 5000)
  t.equal(parseRetryAfter('3', 0), 3000)
  t.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4000), 6000)
  t.equal(parseRetryAfter('soon', 0), undefined)
  t.equal(parseRetryAfter(undefined, 0), undefined)
})

t.test('an upstream killed and restarted on the same port: the client stays connected and sees every event once', async (t) => {
  const { upstream, proxy, client } = await clientThroughProxy(t, new ReplayingUpstream(true))
  for (let n = 1; n <= 5; n++) upstream.emit(`e${n}`)
  await client.waitForEvents(5)
  await upstream.stop()
  upstream.log.push('e6', 'e7')
  await new Promise((resolve) => setTimeout(resolve, 400))
  await upstream.start()
  await client.waitForEvents(7, 15000)
  upstream.emit('e8')
  await client.waitForEvents(8)
  t.same(client.events.map((event) => event.data), ['e1', 'e2', 'e3', 'e4', 'e5', 'e6', 'e7', 'e8'])
  const metrics = await (await fetch(proxy.url('/metrics'))).text()
  t.match(metrics, /sse_reconnection_success_total\{route_kind="sse",route="\/events"\} 1/)
  t.match(metrics, /sse_reconnection_attempts_total\{route_kind="sse",route="\/events"\} [2-9]/)
})

/**
 * e1..e4 in `first` spelling, then the upstream drops and sends them all again in `replay`
 * spelling before e5: the client must get each once, and the four be counted as dropped.
 */
async function replayedFromTheStart (t: Test, first: ReplayingUpstream['spelling'], replay: ReplayingUpstream['spelling'], message: string): Promise<void> {
  const { upstream, proxy, client } = await clientThroughProxy(t, new ReplayingUpstream(false))
  upstream.spelling = first
  for (let n = 1; n <= 4; n++) upstream.emit(`e${n}`)
  await client.waitForEvents(4)
  upstream.spelling = replay
  const [stream] = [...upstream.upstream.streams]
  stream!.end()
  await upstream.upstream.waitForRequests(2)
  upstream.emit('e5')
  await client.waitForEvents(6)
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.same(dataOf(client), ['e1', 'e2', 'e3', 'e4', 'gap', 'e5'], message)
  await waitForMetric(proxy.url('/metrics'), /sse_events_deduplicated_total\{route_kind="sse",route="\/events"\} 4/)
}

t.test('an upstream that replays from the start: what the client has is dropped, not sent twice', async (t) => {
  await replayedFromTheStart(t, 'lf', 'lf', 'it ignores Last-Event-ID: told as a gap, though nothing was lost here')
})

t.test('an upstream that replays its events spelled otherwise (no space after the colon, then CRLF): they are still known and dropped', async (t) => {
  await replayedFromTheStart(t, 'lf-tight', 'crlf', 'the replay is compared as a client reads it, not as text')
})

t.test('reconnect.dedupeWindow 0 turns dedupe off: what an upstream replays reaches the client again', async (t) => {
  const { upstream, proxy, client } = await clientThroughProxy(t, new ReplayingUpstream(false), { reconnect: { baseDelayMs: 100, dedupeWindow: 0 } })
  upstream.emit('e1')
  upstream.emit('e2')
  await client.waitForEvents(2)
  const [stream] = [...upstream.upstream.streams]
  stream!.end()
  await client.waitForEvents(5)
  t.same(dataOf(client), ['e1', 'e2', 'gap', 'e1', 'e2'])
  t.notMatch(await (await fetch(proxy.url('/metrics'))).text(), /sse_events_deduplicated_total\{[^}]*\} [1-9]/)
})

t.test('an upstream that restarts and reuses its ids for new events: nothing new is dropped', async (t) => {
  // A fresh process that knows nothing of the old ids, and sends its own log from the start.
  const { upstream, client } = await clientThroughProxy(t, new ReplayingUpstream(false))
  upstream.emit('old-1')
  upstream.emit('old-2')
  await client.waitForEvents(2)
  await upstream.stop()
  // A fresh process: its log starts again at id 1, with new data.
  upstream.log.length = 0
  upstream.log.push('new-1', 'new-2', 'new-3')
  await upstream.start()
  await client.waitForEvents(6, 15000)
  t.same(dataOf(client), ['old-1', 'old-2', 'gap', 'new-1', 'new-2', 'new-3'], 'ids 1 and 2 again, with new data: new events')
})

t.test('retry delays follow the backoff, measured at the upstream; Retry-After wins', async (t) => {
  const arrivals: number[] = []
  let answers = 0
  const upstream = await SseUpstream.start((request, response) => {
    arrivals.push(Date.now())
    answers++
    if (answers === 1) {
      upstream.openStream(request, response)
      response.end('id: 1\ndata: first\n\n')
    } else if (answers <= 4) {
      response.writeHead(503).end()
    } else if (answers === 5) {
      response.writeHead(429, { 'retry-after': '1' }).end()
    } else {
      upstream.openStream(request, response)
      response.write('id: 2\ndata: second\n\n')
    }
  })
  t.teardown(async () => await upstream.close())
  const proxy = await proxyFor(t, upstream.url())
  const client = await SseClient.open(proxy.url('/events'))
  t.teardown(() => client.close())
  await client.waitForEvents(3, 15000)
  const gaps = arrivals.slice(1).map((time, index) => time - (arrivals[index] as number))
  // Lower bounds are the jitter's; upper bounds add 100 ms for the round trip on a busy machine.
  t.ok(gaps[0]! < 100, `the first retry after a clean close is immediate (${gaps[0]} ms)`)
  t.ok(gaps[1]! >= 90 && gaps[1]! < 210, `then 100 ms +-10% (${gaps[1]} ms)`)
  t.ok(gaps[2]! >= 180 && gaps[2]! < 320, `then 200 ms +-10% (${gaps[2]} ms)`)
  t.ok(gaps[3]! >= 360 && gaps[3]! < 540, `then 400 ms +-10% (${gaps[3]} ms)`)
  t.ok(gaps[4]! >= 990, `then what Retry-After asked: 1 s (${gaps[4]} ms)`)
  t.same(dataOf(client), ['first', 'gap', 'second'])
})

t.test('a 4xx is not retried: the client stream closes cleanly, and the give-up is counted', async (t) => {
  const upstream = await oneEventThen((response) => response.writeHead(403).end())
  t.teardown(async () => await upstream.close())
  const proxy = await proxyFor(t, upstream.url())
  const client = await SseClient.open(proxy.url('/events'))
  await client.ended
  t.equal(upstream.answers(), 2)
  t.same(client.events.map((event) => event.data), ['only'])
  await waitForMetric(proxy.url('/metrics'), /sse_reconnection_failure_total\{route_kind="sse",route="\/events"\} 1/)
})

t.test('after reconnect.maxRetries attempts the client stream closes cleanly; every attempt is logged with the upstream URL', async (t) => {
  const upstream = await oneEventThen((response) => response.writeHead(502).end())
  t.teardown(async () => await upstream.close())
  const lines: Array<Record<string, unknown>> = []
  const app = Fastify({
    logger: {
      level: 'info',
      stream: new Writable({ write (chunk: Buffer, _encoding, done) { lines.push(JSON.parse(chunk.toString())); done() } })
    }
  })
  await app.register(mcpSseResilience, { routes: [{ kind: 'sse', path: '/events', upstream: upstream.url() }], reconnect: { baseDelayMs: 20, maxRetries: 3 } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => await app.close())
  const client = await SseClient.open(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/events`)
  await client.ended
  t.equal(upstream.answers(), 4, 'the first connection, then 3 attempts')
  const attempts = lines.filter((line) => line.msg === 'reconnecting to the upstream')
  t.same(attempts.map((line) => [line.upstream, line.attempt]), [[upstream.url(), 1], [upstream.url(), 2], [upstream.url(), 3]])
  t.ok(attempts.every((line) => line.level === 30 && typeof line.delayMs === 'number' && typeof line.reason === 'string'), 'INFO, with the delay and the reason')
  const giveUp = lines.find((line) => line.msg === 'gave up reconnecting to the upstream; closing the client stream')
  t.match(giveUp, { level: 40, upstream: upstream.url() })
})

t.test('a reconnect answered 200 with another content type is not retried', async (t) => {
  const upstream = await oneEventThen((response) => response.writeHead(200, { 'content-type': 'text/html' }).end('<html>maintenance</html>'))
  t.teardown(async () => await upstream.close())
  const proxy = await proxyFor(t, upstream.url())
  const client = await SseClient.open(proxy.url('/events'))
  await client.ended
  t.equal(upstream.answers(), 2)
  t.same(client.events.map((event) => event.data), ['only'])
})

t.test('an upstream unreachable during the outage: network errors are retried until it is back', async (t) => {
  const upstream = new ReplayingUpstream(true)
  await upstream.start()
  const proxy = await proxyFor(t, upstream.upstream.url(), { reconnect: { baseDelayMs: 50, maxRetries: 0 } }, true)
  const client = await SseClient.open(proxy.url('/events'))
  t.teardown(() => client.close())
  await upstream.upstream.waitForStreams(1)
  upstream.emit('before')
  await client.waitForEvents(1)
  await upstream.stop()
  await waitForMetric(proxy.url('/metrics'), /sse_reconnection_attempts_total\{route_kind="sse",route="\/events"\} [3-9]/)
  upstream.log.push('during')
  await upstream.start()
  t.teardown(async () => await upstream.stop())
  await client.waitForEvents(2, 15000)
  t.same(client.events.map((event) => event.data), ['before', 'during'])
})

t.test('streamable-http: a dropped GET stream reconnects with the upstream session id and Last-Event-ID; a POST stream reconnects only before its response', async (t) => {
  const seen: Array<{ method?: string, session?: string, lastEventId?: string }> = []
  let getCount = 0
  let postCount = 0
  const upstream = await SseUpstream.start((request, response) => {
    seen.push({ method: request.method, session: request.headers['mcp-session-id'] as string | undefined, lastEventId: request.headers['last-event-id'] as string | undefined })
    request.resume()
    if (request.method === 'POST' && request.headers['mcp-session-id'] === undefined) {
      response.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'upstream-session-1' })
      response.end('{"jsonrpc":"2.0","id":1,"result":{}}')
    } else if (request.method === 'POST') {
      postCount++
      upstream.openStream(request, response)
      // The first call's stream drops before its response; the second one's ends after it.
      response.end(postCount === 1 ? 'id: p1\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{}}\n\n' : 'id: p9\ndata: {"jsonrpc":"2.0","id":3,"result":{}}\n\n')
    } else if (request.headers['last-event-id'] === 'p1') {
      upstream.openStream(request, response)
      response.write('id: p2\ndata: {"jsonrpc":"2.0","id":2,"result":{"ok":true}}\n\n')
      response.end()
    } else {
      getCount++
      upstream.openStream(request, response)
      if (getCount === 1) response.end('id: g1\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{}}\n\n')
    }
  })
  t.teardown(async () => await upstream.close())
  const proxy = await startProxy(t, { routes: [{ kind: 'streamable-http', path: '/mcp', upstream: upstream.url('/mcp') }], reconnect: { baseDelayMs: 20 } })
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }
  const init = await fetch(proxy.url('/mcp'), { method: 'POST', headers, body: '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}' })
  await init.text()
  const sessionId = init.headers.get('mcp-session-id') ?? ''

  const get = await SseClient.open(proxy.url('/mcp'), { 'mcp-session-id': sessionId })
  t.teardown(() => get.close())
  await get.waitForEvents(1)
  await upstream.waitForRequests(3)
  t.match(seen[2], { method: 'GET', session: 'upstream-session-1', lastEventId: 'g1' }, 'the GET reconnected with the upstream\'s session id and its last id')

  const call = await fetch(proxy.url('/mcp'), { method: 'POST', headers: { ...headers, 'mcp-session-id': sessionId }, body: '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{}}' })
  const text = await call.text()
  t.match(text, /"id":2,"result":\{"ok":true\}/, 'the POST stream was resumed upstream through a GET, and its response came through')
  t.match(seen.find((request) => request.lastEventId === 'p1'), { method: 'GET', session: 'upstream-session-1' })

  const answered = await fetch(proxy.url('/mcp'), { method: 'POST', headers: { ...headers, 'mcp-session-id': sessionId }, body: '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{}}' })
  t.match(await answered.text(), /"id":3/)
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.notOk(seen.some((request) => request.lastEventId === 'p9'), 'a POST stream that sent its response is complete: no reconnect')
})

t.test('a stalled upstream (headers sent, then silence) is detected after health.idleTimeoutSeconds and replaced', async (t) => {
  let answers = 0
  const upstream = await SseUpstream.start((request, response) => {
    answers++
    upstream.openStream(request, response)
    if (answers === 1) {
      response.write('id: 1\ndata: then silence\n\n')
    } else {
      response.write('id: 2\ndata: fresh\n\n')
    }
  })
  t.teardown(async () => await upstream.close())
  const proxy = await proxyFor(t, upstream.url(), { health: { idleTimeoutSeconds: 1 } })
  const client = await SseClient.open(proxy.url('/events'))
  t.teardown(() => client.close())
  await client.waitForEvents(3, 10000)
  t.same(dataOf(client), ['then silence', 'gap', 'fresh'])
  t.equal(upstream.requests[1]?.headers['last-event-id'], '1')
  await waitForMetric(proxy.url('/metrics'), /sse_upstream_stalls_total\{route_kind="sse",route="\/events"\} 1/)
})

t.test('keep-alive comments count as life: a quiet upstream that sends them is never replaced', async (t) => {
  const upstream = await SseUpstream.start()
  t.teardown(async () => await upstream.close())
  const proxy = await proxyFor(t, upstream.url(), { health: { idleTimeoutSeconds: 1 } })
  const client = await SseClient.open(proxy.url('/events'))
  t.teardown(() => client.close())
  await upstream.waitForStreams(1)
  for (let beat = 0; beat < 5; beat++) {
    upstream.broadcast(': keepalive\n\n')
    await new Promise((resolve) => setTimeout(resolve, 400))
  }
  t.equal(upstream.requests.length, 1, 'the one upstream stream lived through 2 s of keep-alives only')
})

t.test('50 sessions reconnect at once after an upstream restart, each to a contiguous sequence', async (t) => {
  const upstream = new ReplayingUpstream(true)
  await upstream.start()
  t.teardown(async () => await upstream.stop())
  const proxy = await proxyFor(t, upstream.upstream.url(), { reconnect: { baseDelayMs: 50, maxRetries: 0 } }, true)
  const clients = await Promise.all(Array.from({ length: 50 }, async () => await SseClient.open(proxy.url('/events'))))
  t.teardown(() => { for (const client of clients) client.close() })
  await upstream.upstream.waitForStreams(50)
  upstream.emit('one')
  upstream.emit('two')
  await Promise.all(clients.map(async (client) => await client.waitForEvents(2)))
  await upstream.stop()
  upstream.log.push('three')
  await new Promise((resolve) => setTimeout(resolve, 200))
  await upstream.start()
  await upstream.upstream.waitForStreams(50)
  upstream.emit('four')
  await Promise.all(clients.map(async (client) => await client.waitForEvents(4, 15000)))
  t.ok(clients.every((client) => client.events.map((event) => event.data).join() === 'one,two,three,four'), 'every client: one, two, three, four')
  const metrics = await (await fetch(proxy.url('/metrics'))).text()
  t.match(metrics, /sse_reconnection_success_total\{route_kind="sse",route="\/events"\} 50/)
  t.match(metrics, /sse_upstream_reconnect_latency_seconds_count\{route_kind="sse",route="\/events"\} 50/)
  t.match(metrics, /sse_upstream_connection_duration_seconds_count\{route_kind="sse",route="\/events"\} 50/)
})

t.test('routes[].reconnect overrides the global policy for its route only', async (t) => {
  const upstream = await oneEventThen((response) => response.writeHead(502).end())
  t.teardown(async () => await upstream.close())
  const proxy = await startProxy(t, {
    routes: [{ kind: 'sse', path: '/events', upstream: upstream.url(), reconnect: { maxRetries: 1, baseDelayMs: 10 } }],
    reconnect: { maxRetries: 50, baseDelayMs: 10 }
  })
  const client = await SseClient.open(proxy.url('/events'))
  await client.ended
  t.equal(upstream.answers(), 2, 'the route gave up after its own single retry')
})
