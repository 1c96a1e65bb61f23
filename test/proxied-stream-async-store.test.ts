import t, { type Test } from 'tap'
import { PassThrough } from 'node:stream'
import { once } from 'node:events'
import type { FastifyBaseLogger } from 'fastify'
import type { HistoryRead, HistoryStats, HistoryStore, RecordedEvent } from '../lib/history/history-store.js'
import { LocalHistoryStore } from '../lib/history/local-history-store.js'
import { ProxyMetrics } from '../lib/metrics.js'
import { ProxiedStream } from '../lib/session/proxied-stream.js'
import type { ProxySession } from '../lib/session/session-registry.js'
import type { UpstreamReconnect } from '../lib/session/stream-environment.js'
import { resolveOptions } from '../lib/config/validate.js'
import { clientOverSocket } from './helpers/client-stream-server.js'

/**
 * A store that answers later, as one over the network does (Redis): the
 * memory store records synchronously, so only this exercises the ordered path.
 */
class LaterStore implements HistoryStore {
  readonly local = new LocalHistoryStore({ maxEvents: 1000, maxBytes: 1 << 20, ttlMs: 60_000, replay: true })
  failAppends = false
  appends = 0
  /** While set, appends wait for it: a store that has stopped answering. */
  gate: Promise<void> | undefined
  /** While set, reads wait for it. */
  readGate: Promise<void> | undefined
  reads = 0

  /** A store that cannot even start an append: it throws before it returns. */
  throwAppends = false

  append (sessionId: string, streamId: string, events: readonly RecordedEvent[]): Promise<void> {
    if (this.throwAppends) throw new Error('store closed')
    return this.#appendLater(sessionId, streamId, events)
  }

  async #appendLater (sessionId: string, streamId: string, events: readonly RecordedEvent[]): Promise<void> {
    this.appends++
    await this.gate
    // A random wait, so that appends overlap and finish out of turn unless the stream keeps them in order.
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 5))
    if (this.failAppends) throw new Error('store unreachable')
    this.local.append(sessionId, streamId, events)
  }

  async readAfter (sessionId: string, streamId: string, afterSeq: number): Promise<HistoryRead> {
    this.reads++
    await this.readGate
    return await this.local.readAfter(sessionId, streamId, afterSeq)
  }

  async upstreamIdAt (sessionId: string, streamId: string, seq: number): Promise<string | undefined> { return await this.local.upstreamIdAt(sessionId, streamId, seq) }
  async expire (now: number): Promise<void> { await this.local.expire(now) }
  async dropStream (): Promise<void> { throw new Error('store unreachable') }
  async dropSession (sessionId: string): Promise<void> { await this.local.dropSession(sessionId) }
  stats (): HistoryStats { return this.local.stats() }
  async close (): Promise<void> { await this.local.close() }
}

interface Logged { level: string, message: string }

function recordingLogger (logged: Logged[]): FastifyBaseLogger {
  const log = (level: string) => (_fields: unknown, message?: string) => { logged.push({ level, message: message ?? '' }) }
  const logger = { level: 'info', fatal: log('fatal'), error: log('error'), warn: log('warn'), info: log('info'), debug: log('debug'), trace: log('trace'), silent: log('silent'), child: () => logger }
  return logger as unknown as FastifyBaseLogger
}

/** A ProxiedStream over `store`, its upstream a PassThrough the test writes to, its client a real socket. */
async function relay (test: Test, store: LaterStore, reconnect?: UpstreamReconnect) {
  const logged: Logged[] = []
  const upstream = new PassThrough()
  const session: ProxySession = { id: 'session-1', routePath: '/events', endsWithItsStreams: true, subscriptions: new Set(), streams: new Map(), lastActiveAt: Date.now() }
  const labels = { route_kind: 'sse' as const, route: '/events' }
  const stream = new ProxiedStream(session, {
    store,
    metrics: new ProxyMetrics(),
    labels,
    log: recordingLogger(logged),
    upstreamUrl: 'http://upstream.invalid/events',
    epoch: 'testEpoc',
    maxEventBytes: 1 << 20,
    idleTimeoutMs: 0,
    detachGraceMs: 60_000,
    retentionMs: 60_000,
    maxBufferedChars: 1 << 20,
    maxAppendChars: 4096,
    stallMs: 10_000,
    onForget: () => {},
    reconnect
  })
  const client = await clientOverSocket(test, (output) => {
    stream.subscribe().start(output, [])
    stream.start(upstream)
  }, () => stream.forget())
  return { stream, upstream, client, logged }
}

t.test('with a store that answers later, every chunk reaches the client once recorded, in upstream order', async (t) => {
  const store = new LaterStore()
  const { stream, upstream, client } = await relay(t, store)
  // One chunk per turn of the event loop, so that many arrive while an append waits.
  for (let n = 1; n <= 200; n++) {
    upstream.write(`id: u${n}\ndata: ${n}\n\n`)
    await new Promise((resolve) => setImmediate(resolve))
  }
  const events = await client.waitForEvents(200)
  t.same(events.map((event) => Number(event.data)), Array.from({ length: 200 }, (_, i) => i + 1), 'in order, each once')
  const read = await stream.readAfter(0)
  t.equal(read.status === 'found' ? read.events.length : read.status, 200, 'and each was recorded before it was sent')
  t.ok(store.appends < 100, `chunks that arrived while an append waited joined the next one: ${store.appends} appends for 200 chunks`)
})

t.test('a store that fails: events still reach the client, and the failure is logged, not thrown', async (t) => {
  const store = new LaterStore()
  store.failAppends = true
  const { upstream, client, logged } = await relay(t, store)
  upstream.write('data: a\n\n')
  upstream.write('data: b\n\n')
  const events = await client.waitForEvents(2)
  t.same(events.map((event) => event.data), ['a', 'b'])
  t.ok(logged.some((entry) => entry.level === 'error' && /could not record events/.test(entry.message)))
})

t.test('a store that throws instead of answering: events still reach the client, and the failure is logged', async (t) => {
  const store = new LaterStore()
  store.throwAppends = true
  const { upstream, client, logged } = await relay(t, store)
  upstream.write('data: a\n\n')
  upstream.write('data: b\n\n')
  const events = await client.waitForEvents(2)
  t.same(events.map((event) => event.data), ['a', 'b'])
  t.ok(logged.some((entry) => entry.level === 'error' && /could not record events/.test(entry.message)))
})

t.test('a stream forgotten while its store cannot drop its history logs it and goes on', async (t) => {
  const store = new LaterStore()
  const { stream, logged, client } = await relay(t, store)
  stream.forget()
  await client.ended
  await new Promise((resolve) => setImmediate(resolve))
  t.ok(logged.some((entry) => entry.level === 'error' && /could not drop/.test(entry.message)))
})

t.test('store.maxAppendBytes: while the store does not answer, the upstream is read until that much waits, then held back; nothing is lost', async (t) => {
  const store = new LaterStore()
  let open = (): void => {}
  store.gate = new Promise((resolve) => { open = resolve })
  const { upstream, client } = await relay(t, store)
  const event = (n: number): string => `id: u${n}\ndata: ${n} ${'x'.repeat(90)}\n\n`
  let sent = 0
  for (let n = 1; n <= 500; n++) {
    upstream.write(event(n))
    sent += event(n).length
    await new Promise((resolve) => setImmediate(resolve))
  }
  t.ok(upstream.isPaused(), 'the upstream is held back')
  const taken = sent - upstream.readableLength - upstream.writableLength
  t.ok(taken < 4096 + 16_384, `the proxy took ${taken} of ${sent} bytes: what makes 4096 characters of recorded events (store.maxAppendBytes here), then it stopped reading`)
  t.equal(client.events.length, 0, 'nothing went out unrecorded')
  open()
  const events = await client.waitForEvents(500)
  t.same(events.map((received) => Number(received.data.split(' ')[0])), Array.from({ length: 500 }, (_, i) => i + 1), 'once the store answers, all of it, in order')
})

t.test('a stream forgotten while its reconnect reads back the history lets the new upstream connection go', async (t) => {
  const store = new LaterStore()
  const reconnected = new PassThrough()
  let connects = 0
  const policy = resolveOptions({ routes: [{ kind: 'sse', path: '/events', upstream: 'http://upstream.invalid/events' }] }).reconnect
  const { stream, upstream, client } = await relay(t, store, {
    policy,
    replays: false,
    needsUpstreamIds: false,
    connect: async () => {
      connects++
      return { kind: 'connected', body: reconnected }
    }
  })
  upstream.write('id: u1\ndata: 1\n\n')
  await client.waitForEvents(1)
  let open = (): void => {}
  store.readGate = new Promise((resolve) => { open = resolve })
  // A clean close is reconnected at once; the reconnect then reads what it may be sent again.
  upstream.end()
  while (store.reads === 0) await new Promise((resolve) => setTimeout(resolve, 5))
  t.equal(connects, 1, 'the upstream was opened again')
  stream.forget()
  open()
  await once(reconnected, 'close')
  t.ok(reconnected.destroyed, 'the new connection is closed, not read by a stream that is gone')
  await client.ended
  t.same(client.events.map((event) => event.data), ['1'], 'and the client got nothing more')
})
