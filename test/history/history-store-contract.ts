import type { Test } from 'tap'
import type { HistoryLimits, HistoryStore, RecordedEvent } from '../../lib/history/history-store.js'

/** Builds a fresh, empty store with these limits. */
export type StoreFactory = (limits: HistoryLimits) => Promise<HistoryStore>

const DEFAULT_LIMITS: HistoryLimits = { maxEvents: 1000, maxBytes: 1 << 20, ttlMs: 300_000, replay: true }

function events (from: number, to: number, size = 10): RecordedEvent[] {
  return Array.from({ length: to - from + 1 }, (_, index) => {
    const seq = from + index
    return { seq, upstreamId: `u${seq}`, text: `id: s.${seq}\ndata: ${'x'.repeat(size)}\n\n` }
  })
}

const seqs = (read: Awaited<ReturnType<HistoryStore['readAfter']>>) =>
  read.status === 'found' ? read.events.map((event) => event.seq) : read.status

/**
 * The history store contract. Every store implementation runs this same suite
 * (test/history/*.test.ts), as @fastify/rate-limit runs one suite on its stores.
 */
export function historyStoreContract (t: Test, createStore: StoreFactory): void {
  async function store (test: Test, limits: Partial<HistoryLimits> = {}): Promise<HistoryStore> {
    const created = await createStore({ ...DEFAULT_LIMITS, ...limits })
    test.teardown(async () => await created.close())
    return created
  }

  t.test('reads back what was appended after a position, in order', async (t) => {
    const history = await store(t)
    await history.append('A', 's1', events(1, 3))
    await history.append('A', 's1', events(4, 6))
    t.same(seqs(await history.readAfter('A', 's1', 0)), [1, 2, 3, 4, 5, 6])
    t.same(seqs(await history.readAfter('A', 's1', 4)), [5, 6])
    t.same(seqs(await history.readAfter('A', 's1', 6)), [], 'a client that is up to date gets nothing, and that is found')
    const read = await history.readAfter('A', 's1', 5)
    t.match(read.status === 'found' ? read.events[0] : read, { seq: 6, upstreamId: 'u6', text: events(6, 6)[0]?.text }, 'events keep their text and upstream id')
  })

  t.test('a stream is found only with the session that owns it', async (t) => {
    const history = await store(t)
    await history.append('A', 's1', events(1, 3))
    await history.append('B', 's2', events(1, 3))
    t.equal(seqs(await history.readAfter('B', 's1', 0)), 'unknown', 'session B cannot read session A\'s stream')
    t.equal(seqs(await history.readAfter('A', 's2', 0)), 'unknown')
    t.equal(seqs(await history.readAfter('C', 's1', 0)), 'unknown')
    t.equal(await history.upstreamIdAt('B', 's1', 2), undefined)
    t.equal(await history.upstreamIdAt('A', 's1', 2), 'u2')
  })

  t.test('a position the stream never reached is unknown', async (t) => {
    const history = await store(t)
    await history.append('A', 's1', events(1, 3))
    t.equal(seqs(await history.readAfter('A', 's1', 4)), 'unknown')
    t.equal(seqs(await history.readAfter('A', 's1', -1)), 'unknown')
    t.equal(seqs(await history.readAfter('A', 'nope', 0)), 'unknown')
  })

  t.test('maxEvents: each stream keeps its newest events; a position behind them is evicted', async (t) => {
    const history = await store(t, { maxEvents: 5 })
    await history.append('A', 's1', events(1, 8))
    await history.append('A', 's2', events(1, 2))
    t.same(seqs(await history.readAfter('A', 's1', 3)), [4, 5, 6, 7, 8])
    t.equal(seqs(await history.readAfter('A', 's1', 2)), 'evicted')
    t.equal(seqs(await history.readAfter('A', 's1', 0)), 'evicted')
    t.same(seqs(await history.readAfter('A', 's2', 0)), [1, 2], 'the limit is per stream')
    t.equal(history.stats().events, 7)
    t.equal(await history.upstreamIdAt('A', 's1', 3), undefined)
  })

  t.test('maxBytes: a session keeps its newest bytes over all its streams, evicting its oldest first', async (t) => {
    const history = await store(t, { maxBytes: 2048 })
    await history.append('A', 's1', events(1, 3, 300))
    await history.append('A', 's2', events(1, 3, 300))
    await history.append('B', 's3', events(1, 3, 300))
    await history.append('A', 's1', events(4, 6, 300))
    t.ok(history.stats().bytes <= 2048 * 2, 'no session is over its limit')
    t.equal(seqs(await history.readAfter('A', 's2', 0)), 'evicted', 'the session\'s oldest events went first, from another stream')
    t.same(seqs(await history.readAfter('A', 's1', 3)), [4, 5, 6])
    t.same(seqs(await history.readAfter('B', 's3', 0)), [1, 2, 3], 'another session keeps its own budget')
  })

  t.test('maxBytes smaller than one event keeps nothing, and says so', async (t) => {
    const history = await store(t, { maxBytes: 1024 })
    await history.append('A', 's1', events(1, 1, 5000))
    t.equal(seqs(await history.readAfter('A', 's1', 0)), 'evicted')
    t.same(seqs(await history.readAfter('A', 's1', 1)), [])
    t.same(history.stats(), { events: 0, bytes: 0 })
  })

  t.test('expire(): events older than the TTL are evicted, newer ones stay', async (t) => {
    const history = await store(t, { ttlMs: 1000 })
    await history.append('A', 's1', events(1, 2))
    const afterFirst = Date.now()
    await new Promise((resolve) => setTimeout(resolve, 30))
    await history.append('A', 's1', events(3, 4))
    await history.expire(afterFirst + 1000)
    t.equal(seqs(await history.readAfter('A', 's1', 0)), 'evicted')
    t.same(seqs(await history.readAfter('A', 's1', 2)), [3, 4])
    await history.expire(Date.now() + 1000)
    t.same(seqs(await history.readAfter('A', 's1', 4)), [], 'once all are gone, the end of the stream is still known')
    t.equal(seqs(await history.readAfter('A', 's1', 3)), 'evicted')
    t.same(history.stats(), { events: 0, bytes: 0 })
  })

  t.test('replay: false keeps ids only', async (t) => {
    const history = await store(t, { replay: false })
    await history.append('A', 's1', events(1, 3, 500))
    const read = await history.readAfter('A', 's1', 1)
    t.same(read.status === 'found' ? read.events.map((event) => event.text) : read, ['', ''])
    t.equal(await history.upstreamIdAt('A', 's1', 3), 'u3')
    t.ok(history.stats().bytes < 3 * 500, 'the events\' text is not held')
  })

  t.test('dropStream and dropSession forget everything they held', async (t) => {
    const history = await store(t)
    await history.append('A', 's1', events(1, 3))
    await history.append('A', 's2', events(1, 3))
    await history.append('B', 's3', events(1, 3))
    await history.dropStream('A', 's1')
    await history.dropStream('A', 'missing')
    await history.dropStream('missing', 's1')
    t.equal(seqs(await history.readAfter('A', 's1', 0)), 'unknown')
    t.same(seqs(await history.readAfter('A', 's2', 0)), [1, 2, 3])
    await history.dropSession('A')
    await history.dropSession('missing')
    t.equal(seqs(await history.readAfter('A', 's2', 0)), 'unknown')
    t.same(seqs(await history.readAfter('B', 's3', 0)), [1, 2, 3])
    await history.dropSession('B')
    t.same(history.stats(), { events: 0, bytes: 0 })
  })
}
