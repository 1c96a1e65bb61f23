import t, { type Test } from 'tap'
import { once } from 'node:events'
import { connect } from 'node:net'
import type { McpSseResilienceOptions } from '../lib/index.js'
import { SseClient } from './helpers/sse-client.js'
import { SseUpstream } from './helpers/sse-upstream.js'
import { startProxy } from './helpers/proxy.js'

type Extra = Omit<McpSseResilienceOptions, 'routes'>

async function setup (test: Test, extra: Extra = {}) {
  const upstream = await SseUpstream.start()
  test.teardown(async () => await upstream.close())
  const proxy = await startProxy(test, { routes: [{ kind: 'sse', path: '/events', upstream: upstream.url() }], ...extra })
  return { upstream, proxy }
}

/** The upstream cannot replay: it only ever sends what comes next. */
function send (upstream: SseUpstream, from: number, to: number): void {
  let text = ''
  for (let n = from; n <= to; n++) text += `id: u${n}\ndata: ${n}\n\n`
  upstream.broadcast(text)
}

const numbers = (client: SseClient) => client.events.map((event) => Number(event.data))
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

async function metrics (url: string): Promise<string> {
  return await (await fetch(url)).text()
}

t.test('a client resumes with Last-Event-ID and gets exactly what it missed, then live', async (t) => {
  const { upstream, proxy } = await setup(t)
  const first = await SseClient.open(proxy.url('/events'))
  await upstream.waitForStreams(1)
  send(upstream, 1, 10)
  const seen = await first.waitForEvents(10)
  first.close()
  await first.ended
  send(upstream, 11, 25)
  await new Promise((resolve) => setTimeout(resolve, 50))

  const resumed = await SseClient.open(proxy.url('/events'), { 'last-event-id': seen[9]?.id ?? '' })
  t.teardown(() => resumed.close())
  t.equal(resumed.headers['x-resume-status'], 'recovered')
  await resumed.waitForEvents(15)
  send(upstream, 26, 30)
  await resumed.waitForEvents(20)
  t.same(numbers(resumed), range(11, 30), 'no gap, no duplicate')
  t.equal(upstream.requests.length, 1, 'the upstream stream kept running: the history served the resume')
  t.ok(resumed.events.every((event) => /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{8}\.\d+$/.test(event.id ?? '')), 'every event carries a proxy id')

  const text = await metrics(proxy.url('/metrics'))
  t.match(text, /sse_client_reconnections_total\{route_kind="sse",route="\/events"\} 1/)
  t.match(text, /sse_events_replayed_total\{route_kind="sse",route="\/events"\} 15/)
  t.match(text, /sse_last_event_id_cache_hit_ratio 1/)
  t.match(text, /sse_history_events 30/)
})

t.test('history.enabled false: events keep proxy ids, and a resume is told plainly that nothing can be replayed', async (t) => {
  const { upstream, proxy } = await setup(t, { history: { enabled: false } })
  const first = await SseClient.open(proxy.url('/events'))
  await upstream.waitForStreams(1)
  send(upstream, 1, 3)
  const seen = await first.waitForEvents(3)
  t.ok(seen.every((event) => /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{8}\.\d+$/.test(event.id ?? '')))
  first.close()
  await first.ended
  send(upstream, 4, 5)
  const resumed = await SseClient.open(proxy.url('/events'), { 'last-event-id': seen[2]?.id ?? '' })
  t.teardown(() => resumed.close())
  t.equal(resumed.headers['x-resume-status'], 'unrecoverable; reason=unknown')
  t.match(await metrics(proxy.url('/metrics')), /sse_history_events 0/)
})

t.test('several disconnects in a row lose and repeat nothing', async (t) => {
  const { upstream, proxy } = await setup(t)
  let client = await SseClient.open(proxy.url('/events'))
  await upstream.waitForStreams(1)
  const received: number[] = []
  let next = 1
  for (let round = 0; round < 6; round++) {
    send(upstream, next, next + 9)
    next += 10
    const events = await client.waitForEvents(3)
    received.push(...numbers(client))
    client.close()
    await client.ended
    send(upstream, next, next + 4)
    next += 5
    client = await SseClient.open(proxy.url('/events'), { 'last-event-id': client.events.at(-1)?.id ?? events[2]?.id ?? '' })
  }
  await client.waitForEvents(next - 1 - received.length)
  received.push(...numbers(client))
  client.close()
  t.same(received, range(1, next - 1))
})

t.test('a disconnect in the middle of a write: the client resumes after the last whole event it has', async (t) => {
  const { upstream, proxy } = await setup(t)
  const port = new URL(proxy.origin).port
  // A raw socket, so that the test can cut it after half an event has arrived.
  const socket = connect(Number(port), '127.0.0.1')
  await once(socket, 'connect')
  socket.write('GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n')
  await upstream.waitForStreams(1)
  let raw = ''
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => { raw += chunk })
  send(upstream, 1, 5)
  upstream.broadcast(`id: u6\ndata: ${'x'.repeat(200000)}\n\n`)
  while (!raw.includes('data: xxxx')) await once(socket, 'data')
  socket.destroy()
  send(upstream, 7, 9)
  const lastWhole = [...raw.matchAll(/id: ([^\n]+)\ndata: (\d+)\n\n/g)].at(-1)
  t.equal(lastWhole?.[2], '5', 'the client had events 1 to 5 whole, and part of 6')

  const resumed = await SseClient.open(proxy.url('/events'), { 'last-event-id': lastWhole?.[1] ?? '' })
  t.teardown(() => resumed.close())
  await resumed.waitForEvents(4)
  t.same(resumed.events.map((event) => event.data.length > 100 ? 'big' : event.data), ['big', '7', '8', '9'])
})

t.test('an evicted id gets an explicit answer, then live events: never a silent gap', async (t) => {
  const { upstream, proxy } = await setup(t, { history: { maxEvents: 5 } })
  const first = await SseClient.open(proxy.url('/events'))
  await upstream.waitForStreams(1)
  send(upstream, 1, 3)
  const seen = await first.waitForEvents(3)
  first.close()
  await first.ended
  send(upstream, 4, 20)
  await new Promise((resolve) => setTimeout(resolve, 50))

  const resumed = await SseClient.open(proxy.url('/events'), { 'last-event-id': seen[2]?.id ?? '' })
  t.teardown(() => resumed.close())
  t.equal(resumed.headers['x-resume-status'], 'unrecoverable; reason=evicted')
  const [notice] = await resumed.waitForEvents(1)
  t.same(notice, { id: undefined, event: 'resume-status', data: '{"recovered":false,"reason":"evicted"}' })
  send(upstream, 21, 22)
  await resumed.waitForEvents(3)
  t.same(resumed.events.slice(1).map((event) => event.data), ['21', '22'], 'live from now, on the same stream')
  const text = await metrics(proxy.url('/metrics'))
  t.match(text, /sse_last_event_id_misses_total\{route_kind="sse",route="\/events",reason="evicted"\} 1/)
  t.match(text, /sse_last_event_id_cache_hit_ratio 0/)
})

t.test('an id evicted by the byte limit or the TTL gets the same answer', async (t) => {
  const byBytes = await setup(t, { history: { maxBytes: 2048 } })
  const client = await SseClient.open(byBytes.proxy.url('/events'))
  await byBytes.upstream.waitForStreams(1)
  byBytes.upstream.broadcast('data: small\n\n')
  const [small] = await client.waitForEvents(1)
  client.close()
  await client.ended
  byBytes.upstream.broadcast(`data: ${'y'.repeat(3000)}\n\n`)
  await new Promise((resolve) => setTimeout(resolve, 50))
  const resumed = await SseClient.open(byBytes.proxy.url('/events'), { 'last-event-id': small?.id ?? '' })
  t.teardown(() => resumed.close())
  t.equal(resumed.headers['x-resume-status'], 'unrecoverable; reason=evicted')

  const byTtl = await setup(t, { history: { ttlSeconds: 1 } })
  const ttlClient = await SseClient.open(byTtl.proxy.url('/events'))
  await byTtl.upstream.waitForStreams(1)
  send(byTtl.upstream, 1, 2)
  const [one] = await ttlClient.waitForEvents(1)
  ttlClient.close()
  await ttlClient.ended
  await new Promise((resolve) => setTimeout(resolve, 2200))
  const late = await SseClient.open(byTtl.proxy.url('/events'), { 'last-event-id': one?.id ?? '' })
  t.teardown(() => late.close())
  t.equal(late.headers['x-resume-status'], 'unrecoverable; reason=evicted', 'the TTL evicted event 2')
})

t.test('malformed, unknown and pre-restart ids get a fresh stream with the explicit answer', async (t) => {
  const { upstream, proxy } = await setup(t)
  const first = await SseClient.open(proxy.url('/events'))
  await upstream.waitForStreams(1)
  send(upstream, 1, 1)
  const [event] = await first.waitForEvents(1)
  first.close()
  // The same epoch (this process's store), a stream it never had.
  const unknownStream = `${'A'.repeat(22)}${event?.id?.slice(22) ?? ''}`
  const cases = [
    ['garbage', 'malformed'],
    ['x'.repeat(10 * 1024), 'malformed'],
    [unknownStream, 'unknown'],
    // Another epoch: an id from before the store lost its data (here, a proxy restart).
    [`${'A'.repeat(22)}.AAAAAAAA.5`, 'store-reset']
  ]
  for (const [lastEventId, reason] of cases) {
    const client = await SseClient.open(proxy.url('/events'), { 'last-event-id': lastEventId ?? '' })
    t.equal(client.status, 200)
    t.equal(client.headers['x-resume-status'], `unrecoverable; reason=${reason ?? ''}`)
    const [notice] = await client.waitForEvents(1)
    t.equal(notice?.event, 'resume-status')
    client.close()
  }
  t.equal(upstream.requests.length, 5, 'each got a fresh upstream stream')
  t.notOk(upstream.requests.some((request) => request.headers['last-event-id'] !== undefined), 'proxy ids never go upstream')
})

t.test('an id of a stream on another route yields none of its events', async (t) => {
  const upstream = await SseUpstream.start()
  t.teardown(async () => await upstream.close())
  const proxy = await startProxy(t, {
    routes: [
      { kind: 'sse', path: '/a', upstream: upstream.url('/a') },
      { kind: 'sse', path: '/b', upstream: upstream.url('/b') }
    ]
  })
  const onA = await SseClient.open(proxy.url('/a'))
  await upstream.waitForStreams(1)
  send(upstream, 1, 3)
  const [event] = await onA.waitForEvents(1)
  onA.close()
  await onA.ended
  const onB = await SseClient.open(proxy.url('/b'), { 'last-event-id': event?.id ?? '' })
  t.teardown(() => onB.close())
  t.equal(onB.headers['x-resume-status'], 'unrecoverable; reason=unknown')
  const [notice] = await onB.waitForEvents(1)
  t.equal(notice?.event, 'resume-status')
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(onB.events.length, 1, 'nothing of stream /a')
})

t.test('the newer of two connections on one stream wins; the older is closed', async (t) => {
  const { upstream, proxy } = await setup(t)
  const first = await SseClient.open(proxy.url('/events'))
  await upstream.waitForStreams(1)
  send(upstream, 1, 2)
  const [one] = await first.waitForEvents(1)
  const older = await SseClient.open(proxy.url('/events'), { 'last-event-id': one?.id ?? '' })
  await first.ended
  t.pass('the original connection was closed by the first resume')
  const newer = await SseClient.open(proxy.url('/events'), { 'last-event-id': one?.id ?? '' })
  t.teardown(() => newer.close())
  await older.ended
  t.pass('the first resume was closed by the second')
  send(upstream, 3, 3)
  await newer.waitForEvents(2)
  t.same(numbers(newer), [2, 3])
})

t.test('within the grace period the upstream keeps running; after it, it is closed', async (t) => {
  const { upstream, proxy } = await setup(t, { sessions: { detachGraceSeconds: 1 } })
  const client = await SseClient.open(proxy.url('/events'))
  await upstream.waitForStreams(1)
  send(upstream, 1, 1)
  const [one] = await client.waitForEvents(1)
  const [upstreamStream] = [...upstream.streams]
  const upstreamClosed = once(upstreamStream!, 'close')
  client.close()
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(upstream.streams.size, 1, 'still open within the grace period')
  send(upstream, 2, 3)
  await upstreamClosed
  t.pass('closed once the grace period ran out')

  const late = await SseClient.open(proxy.url('/events'), { 'last-event-id': one?.id ?? '' })
  await late.ended
  t.equal(late.headers['x-resume-status'], 'recovered')
  t.same(numbers(late), [2, 3], 'what was recorded during the grace period is replayed, then the finished stream ends')
})

t.test('a quiet stream gets keep-alive comments every health.heartbeatSeconds', async (t) => {
  const { upstream, proxy } = await setup(t, { health: { heartbeatSeconds: 1 } })
  const client = await SseClient.open(proxy.url('/events'))
  t.teardown(() => client.close())
  await upstream.waitForStreams(1)
  const comments = await client.waitForComments(2, 5000)
  t.same(comments, ['keepalive', 'keepalive'])
})

t.test('sessions.maxSessions also bounds sse streams', async (t) => {
  const { upstream, proxy } = await setup(t, { sessions: { maxSessions: 1 } })
  const client = await SseClient.open(proxy.url('/events'))
  t.teardown(() => client.close())
  await upstream.waitForStreams(1)
  const refused = await fetch(proxy.url('/events'))
  t.equal(refused.status, 503)
  t.equal(refused.headers.get('retry-after'), '5')
})

t.test('a resume with a large backlog under live traffic gets everything once: the replay is paced, live events read back from the history', async (t) => {
  const { upstream, proxy } = await setup(t, {
    limits: { clientBufferBytes: 65536 },
    history: { maxEvents: 100000, maxBytes: 256 * 1024 * 1024 }
  })
  const first = await SseClient.open(proxy.url('/events'))
  await upstream.waitForStreams(1)
  send(upstream, 1, 1)
  const [one] = await first.waitForEvents(1)
  first.close()
  await first.ended
  const payload = 'p'.repeat(500)
  let next = 2
  const burst = (count: number): void => {
    let text = ''
    for (let i = 0; i < count; i++, next++) text += `data: ${next} ${payload}\n\n`
    upstream.broadcast(text)
  }
  burst(20000)
  await new Promise((resolve) => setTimeout(resolve, 200))
  const resumed = await SseClient.open(proxy.url('/events'), { 'last-event-id': one?.id ?? '' })
  t.teardown(() => resumed.close())
  // Live traffic while the backlog is replayed, in chunks larger than limits.clientBufferBytes:
  // what queues meanwhile overflows, and is read back from the history.
  for (let round = 0; round < 40; round++) {
    burst(200)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  const total = next - 2
  const events = await resumed.waitForEvents(total, 60000)
  t.ok(events.every((event, i) => event.data.startsWith(`${i + 2} `)), `all ${total} events, in order, each once`)
})

t.test('an MCP 2025-11-25 priming event (an id and empty data) passes with a proxy id, and resuming from it works', async (t) => {
  const { upstream, proxy } = await setup(t)
  const client = await SseClient.open(proxy.url('/events'))
  await upstream.waitForStreams(1)
  upstream.broadcast('id: prime-0\ndata:\n\n')
  const [priming] = await client.waitForEvents(1)
  t.match(priming, { id: /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{8}\.1$/, data: '' })
  client.close()
  await client.ended
  send(upstream, 1, 2)
  const resumed = await SseClient.open(proxy.url('/events'), { 'last-event-id': priming?.id ?? '' })
  t.teardown(() => resumed.close())
  await resumed.waitForEvents(2)
  t.same(numbers(resumed), [1, 2])
})
