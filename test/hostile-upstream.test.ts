import t, { type Test } from 'tap'
import { request as httpRequest, type ServerResponse } from 'node:http'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import type { McpSseResilienceOptions } from '../lib/index.js'
import { SseClient } from './helpers/sse-client.js'
import { SseUpstream } from './helpers/sse-upstream.js'
import { startProxy } from './helpers/proxy.js'
import { metricsText, proxyStillServes, sleep, startLoggedProxy, waitForMetric } from './helpers/hostile.js'

// Each case: one hostile upstream input, the outcome in the test's name. None may bring the process down:
// every test ends by checking that the proxy still serves.

const PROXY_ID = /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{8}\.\d+$/

async function setup (test: Test, extra: Omit<McpSseResilienceOptions, 'routes'> = {}, upstream?: SseUpstream) {
  const server = upstream ?? await SseUpstream.start()
  test.teardown(async () => await server.close())
  const proxy = await startProxy(test, { routes: [{ kind: 'sse', path: '/events', upstream: server.url('/events') }], ...extra })
  return { upstream: server, proxy }
}

/** The client's response body, as bytes, until `needle` has arrived. */
async function readRawUntil (url: string, needle: string, timeoutMs = 5000): Promise<Buffer> {
  return await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    const request = httpRequest(url, { agent: false, headers: { accept: 'text/event-stream' } }, (response) => {
      response.on('data', (chunk: Buffer) => {
        chunks.push(chunk)
        const all = Buffer.concat(chunks)
        if (all.includes(needle)) {
          clearTimeout(timer)
          response.destroy()
          resolve(all)
        }
      })
    })
    const timer = setTimeout(() => { request.destroy(); reject(new Error(`"${needle}" never arrived; got ${JSON.stringify(Buffer.concat(chunks).toString('latin1'))}`)) }, timeoutMs)
    request.once('error', () => {})
    request.end()
  })
}

function parseEvents (text: string): EventSourceMessage[] {
  const events: EventSourceMessage[] = []
  const parser = createParser({ onEvent: (event) => events.push(event) })
  parser.feed(text)
  return events
}

t.test('invalid UTF-8 from the upstream reaches the client as U+FFFD, as EventSource decodes it, in valid UTF-8; the stream goes on', async (t) => {
  const { upstream, proxy } = await setup(t)
  const reading = readRawUntil(proxy.url('/events'), 'data: after')
  await upstream.waitForStreams(1)
  const bytes = (...parts: Array<string | number[]>) => Buffer.concat(parts.map((part) => Buffer.from(part)))
  // Stray bytes, an overlong encoding, a UTF-16 surrogate; then a valid character split across two
  // chunks, and a sequence truncated by the end of its line.
  const [stream] = [...upstream.streams]
  stream?.write(bytes('data: a', [0xff, 0xfe], 'b\ndata: ', [0xc0, 0xaf], ' ', [0xed, 0xa0, 0x80], '\n\n'))
  await sleep(20)
  stream?.write(bytes('data: split ', [0xe2, 0x9c]))
  await sleep(20)
  stream?.write(bytes([0x93], ' and truncated ', [0xe2, 0x82], '\n\ndata: after\n\n'))
  const raw = await reading
  const text = new TextDecoder('utf-8', { fatal: true }).decode(raw)
  t.pass('what the client received is valid UTF-8')
  const events = parseEvents(text)
  t.same(events.map((event) => event.data), [
    'a\uFFFD\uFFFDb\n\uFFFD\uFFFD \uFFFD\uFFFD\uFFFD',
    'split \u2713 and truncated \uFFFD',
    'after'
  ], 'each invalid sequence is one U+FFFD per maximal subpart (WHATWG), the split character is whole')
  t.ok(events.every((event) => PROXY_ID.test(event.id ?? '')), 'every event carries a proxy id')
  t.ok(await proxyStillServes(proxy))
})

t.test('a line longer than limits.maxEventBytes, over many chunks without a line break (data, comment or id), ends the stream cleanly: logged, counted, not reconnected; what came before stays resumable', async (t) => {
  const upstream = await SseUpstream.start()
  t.teardown(async () => await upstream.close())
  const byUrl = new Map<string, ServerResponse>()
  upstream.handler = (request, response) => {
    upstream.openStream(request, response)
    byUrl.set(request.url ?? '', response)
    response.write('data: ok\n\n')
  }
  const proxy = await startLoggedProxy(t, { routes: [{ kind: 'sse', path: '/events', upstream: upstream.url('/events') }], limits: { maxEventBytes: 1024 } })
  const kinds = { data: 'data: ', comment: ': ', id: 'id: ' }
  for (const [kind, prefix] of Object.entries(kinds)) {
    const client = await SseClient.open(proxy.url(`/events?kind=${kind}`))
    const [ok] = await client.waitForEvents(1)
    const stream = byUrl.get(`/events?kind=${kind}`)
    stream?.write(prefix)
    for (let i = 0; i < 6 && !stream?.destroyed; i++) {
      stream?.write('x'.repeat(400))
      await sleep(10)
    }
    await client.ended
    t.ok(client.completed, `${kind}: the client's stream ended cleanly`)
    t.same(client.events.map((event) => event.data), ['ok'], `${kind}: nothing of the long line reached the client`)
    t.equal(upstream.requests.filter((request) => request.url === `/events?kind=${kind}`).length, 1, `${kind}: the upstream was not asked again`)

    const resumed = await SseClient.open(proxy.url('/events'), { 'last-event-id': ok?.id ?? '' })
    await resumed.ended
    t.equal(resumed.headers['x-resume-status'], 'recovered', `${kind}: the stream up to the long line can still be resumed`)
  }
  const metrics = await metricsText(proxy)
  t.match(metrics, /sse_upstream_malformed_total\{route_kind="sse",route="\/events",reason="oversized-event"\} 3/)
  const warnings = proxy.logs.filter((line) => line.level === 40 && /limits\.maxEventBytes/.test(line.msg))
  t.equal(warnings.length, 3, 'each is logged at WARN')
  t.match(warnings[0], { upstream: upstream.url('/events?kind=data'), maxEventBytes: 1024 }, 'with the upstream and the limit')
  t.ok(await proxyStillServes(proxy))
})

t.test('a stream that ends without the blank line after its last event: that half event is never forwarded', async (t) => {
  const endings = { bare: 'data: half', lf: 'data: half\n', cr: 'data: half\r', crlf: 'data: half\r\nid: 9\r\n' }
  const seen = new Map<string, number>()
  const upstream = await SseUpstream.start((request, response) => {
    const count = (seen.get(request.url ?? '') ?? 0) + 1
    seen.set(request.url ?? '', count)
    if (count > 1) {
      // The reconnect after the clean close is refused, so the client's stream ends.
      response.writeHead(404).end()
      return
    }
    const ending = new URL(request.url ?? '/', 'http://upstream').searchParams.get('ending') as keyof typeof endings
    upstream.openStream(request, response)
    response.end(`data: whole\n\n${endings[ending]}`)
  })
  const { proxy } = await setup(t, {}, upstream)
  for (const ending of Object.keys(endings)) {
    const client = await SseClient.open(proxy.url(`/events?ending=${ending}`))
    await client.ended
    t.ok(client.completed, `${ending}: the client's stream ended cleanly`)
    t.same(client.events.map((event) => event.data), ['whole'], `${ending}: only the whole event`)
  }
  t.ok(await proxyStillServes(proxy))
})

t.test('mixed CR, LF and CRLF line endings, and a CRLF split across two chunks, give the same events as LF', async (t) => {
  const { upstream, proxy } = await setup(t)
  const client = await SseClient.open(proxy.url('/events'))
  t.teardown(() => client.close())
  await upstream.waitForStreams(1)
  upstream.broadcast('data: lf\n\ndata: crlf\r\n\r\ndata: cr\r\rdata: mixed-1\r\ndata: mixed-2\ndata: mixed-3\r\r\nevent: named\rdata: split-1\r')
  await sleep(30)
  upstream.broadcast('\ndata: split-2\r\n\r\ndata: end\n\n')
  const events = await client.waitForEvents(6)
  t.same(events.map((event) => event.data), ['lf', 'crlf', 'cr', 'mixed-1\nmixed-2\nmixed-3', 'split-1\nsplit-2', 'end'],
    'a CR at the end of one chunk and an LF at the start of the next are one line break')
  t.equal(events[4]?.event, 'named')
  await sleep(50)
  t.equal(client.events.length, 6, 'nothing more')
})

t.test('CR-only line endings: an event whose blank line ends a chunk is forwarded at once, without waiting for more bytes', async (t) => {
  const { upstream, proxy } = await setup(t)
  const client = await SseClient.open(proxy.url('/events'))
  t.teardown(() => client.close())
  await upstream.waitForStreams(1)
  upstream.broadcast('data: first\r\r')
  const inTime = await client.waitForEvents(1, 1000).then(() => true, () => false)
  t.ok(inTime, 'the event arrived within 1 s, with nothing sent after it')
  upstream.broadcast('data: second\r\r')
  await client.waitForEvents(1, 2000)
  t.equal(client.events[0]?.data, 'first')
})

t.test('retry: with garbage is ignored and counted per line; valid retries and the events around them pass', async (t) => {
  const { upstream, proxy } = await setup(t)
  const client = await SseClient.open(proxy.url('/events'))
  t.teardown(() => client.close())
  await upstream.waitForStreams(1)
  const garbage = ['soon', '-1', '1.5', '1e3', ' 100', '0x10', '']
  upstream.broadcast(`${garbage.map((value) => `retry: ${value}\n`).join('')}data: a\n\nretry: 2500\n\ndata: b\n\n`)
  await client.waitForEvents(2)
  t.same(client.events.map((event) => event.data), ['a', 'b'])
  t.same(client.retries, [2500], 'only the valid retry reaches the client')
  const metrics = await metricsText(proxy)
  t.match(metrics, new RegExp(`sse_upstream_malformed_total\\{route_kind="sse",route="/events",reason="invalid-retry"\\} ${garbage.length}`))
  t.ok(await proxyStillServes(proxy))
})

t.test('a retry: too large for a number is never passed on as a retry line that clients reject', async (t) => {
  const { upstream, proxy } = await setup(t)
  const reading = readRawUntil(proxy.url('/events'), 'data: after')
  await upstream.waitForStreams(1)
  upstream.broadcast('retry: 99999999999999999999999\n\ndata: after\n\n')
  const text = (await reading).toString('utf8')
  const retryLines = text.split('\n').filter((line) => line.startsWith('retry:'))
  t.ok(retryLines.every((line) => /^retry: \d+$/.test(line)), `every retry line the client gets is digits only: ${JSON.stringify(retryLines)}`)
})

t.test('a huge upstream id (100 KB) never reaches the client: the event passes under a proxy id; an upstream that refuses it back as Last-Event-ID (431) ends the stream cleanly', async (t) => {
  const hugeId = 'i'.repeat(100 * 1024)
  const upstream = await SseUpstream.start((request, response) => {
    upstream.openStream(request, response)
    response.end(`data: before\n\nid: ${hugeId}\ndata: after-huge-id\n\n`)
  })
  t.teardown(async () => await upstream.close())
  const proxy = await startLoggedProxy(t, { routes: [{ kind: 'sse', path: '/events', upstream: upstream.url('/events') }] })
  const client = await SseClient.open(proxy.url('/events'))
  await client.ended
  t.same(client.events.map((event) => event.data), ['before', 'after-huge-id'])
  t.ok(client.events.every((event) => PROXY_ID.test(event.id ?? '')), 'each under a proxy id of normal length')
  t.notOk(JSON.stringify(client.events).includes('iiii'), 'the upstream id is not in anything the client got')
  t.ok(client.completed, 'the stream ended cleanly')
  t.equal(upstream.requests.length, 1, 'the reconnect never reached the upstream\'s handler: its HTTP server refused the header')
  t.ok(proxy.logs.some((line) => line.level === 40 && line.reason === 'status 431'), 'the give-up is logged with the upstream\'s answer')
  t.match(await metricsText(proxy), /sse_reconnection_failure_total\{route_kind="sse",route="\/events"\} 1/)
  t.ok(await proxyStillServes(proxy))
})

t.test('an id containing NUL is ignored, as the SSE spec says: the event passes, and the reconnect resumes after the last valid id', async (t) => {
  const upstream = await SseUpstream.start((request, response) => {
    upstream.openStream(request, response)
    if (upstream.requests.length === 1) {
      response.end('id: good\ndata: 1\n\nid: ba\0d\ndata: 2\n\n')
    } else {
      response.write('data: 3\n\n')
    }
  })
  const { proxy } = await setup(t, {}, upstream)
  const client = await SseClient.open(proxy.url('/events'))
  t.teardown(() => client.close())
  const events = await client.waitForEvents(4)
  t.same(events.map((event) => event.event === 'resume-status' ? 'gap' : event.data), ['1', '2', 'gap', '3'])
  t.ok(events.every((event) => PROXY_ID.test(event.id ?? '')), 'every event under a proxy id')
  t.equal(upstream.requests[1]?.headers['last-event-id'], 'good', 'the NUL id did not replace the last event id')
})

t.test('a 200 that is not text/event-stream passes through as it is, on sse and legacy-sse routes: no stream, no session, no proxy ids', async (t) => {
  const upstream = await SseUpstream.start((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<html>please sign in</html>')
  })
  t.teardown(async () => await upstream.close())
  const proxy = await startProxy(t, {
    routes: [
      { kind: 'sse', path: '/events', upstream: upstream.url('/events') },
      { kind: 'legacy-sse', path: '/sse', messagesPath: '/messages', upstream: upstream.url('/sse') }
    ]
  })
  for (const path of ['/events', '/sse']) {
    const response = await fetch(proxy.url(path), { headers: { accept: 'text/event-stream' } })
    t.equal(response.status, 200, `${path}: the upstream's status`)
    t.equal(response.headers.get('content-type'), 'text/html; charset=utf-8', `${path}: the upstream's content type, so an EventSource fails the connection`)
    t.equal(response.headers.get('x-resume-status'), null)
    t.equal(await response.text(), '<html>please sign in</html>', `${path}: the body as it is`)
  }
  const metrics = await metricsText(proxy)
  t.match(metrics, /sse_sessions_active 0/)
  t.match(metrics, /sse_history_events 0/)
  t.notMatch(metrics, /sse_streams_active\{[^}]*\} [1-9]/)
})

t.test('an upstream that sends nothing but oversized events: the first one ends the stream; nothing is forwarded or recorded', async (t) => {
  const { upstream, proxy } = await setup(t, { limits: { maxEventBytes: 1024 } })
  const client = await SseClient.open(proxy.url('/events'))
  await upstream.waitForStreams(1)
  const [stream] = [...upstream.streams]
  const big = `data: ${'y'.repeat(4096)}\n\n`
  for (let i = 0; i < 50 && stream?.destroyed !== true; i++) {
    stream?.write(big)
    await sleep(2)
  }
  await client.ended
  t.ok(client.completed, 'the client\'s stream ended cleanly')
  t.equal(client.events.length, 0, 'nothing oversized reached the client')
  await waitForMetric(proxy, /sse_upstream_malformed_total\{route_kind="sse",route="\/events",reason="oversized-event"\} 1/)
  t.match(await metricsText(proxy), /sse_history_events 0/, 'nothing was recorded')
})
