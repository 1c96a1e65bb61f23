import t from 'tap'
import { batchOf } from '../../lib/history/event-batch.js'
import { LocalHistoryStore } from '../../lib/history/local-history-store.js'
import { BatchBuilder } from '../../lib/session/batch-builder.js'
import { historyStoreContract } from './history-store-contract.js'

historyStoreContract(t, async (limits) => new LocalHistoryStore(limits))

t.test('a long stream compacts its storage and stays bounded', async (t) => {
  const store = new LocalHistoryStore({ maxEvents: 10, maxBytes: 1 << 20, ttlMs: 60_000, replay: true })
  for (let seq = 1; seq <= 5000; seq++) store.appendNow('A', 's1', batchOf([{ seq, upstreamId: undefined, bytes: Buffer.from(`data: ${seq}\n\n`) }]), Date.now())
  const read = await store.readAfter('A', 's1', 4990)
  t.same(read.status === 'found' ? read.events.map((event) => event.seq) : read, [4991, 4992, 4993, 4994, 4995, 4996, 4997, 4998, 4999, 5000])
  t.equal(store.stats().events, 10)
})

t.test('events kept in blocks read back whole across block ends, evictions and events larger than a block, and stay as they were read', async (t) => {
  const store = new LocalHistoryStore({ maxEvents: 400, maxBytes: 1 << 22, ttlMs: 60_000, replay: true })
  // Sizes that straddle the blocks' ends, with bytes that are no UTF-8 (the history never decodes), and one event past the largest block.
  const eventOf = (seq: number): Buffer => {
    const size = seq === 700 ? 100_000 : 50 + (seq * 37) % 900
    return Buffer.alloc(size, seq % 251)
  }
  let earlier: Buffer[] = []
  for (let seq = 1; seq <= 1000; seq++) {
    store.appendNow('A', 's1', batchOf([{ seq, upstreamId: `u${seq}`, bytes: eventOf(seq) }]), Date.now())
    if (seq === 650) {
      const read = await store.readAfter('A', 's1', 600)
      earlier = read.status === 'found' ? read.events.map((event) => event.bytes) : []
    }
  }
  const read = await store.readAfter('A', 's1', 600)
  t.ok(read.status === 'found' && read.events.every((event) => event.bytes.equals(eventOf(event.seq))), 'the 400 kept events, byte for byte')
  t.equal(read.status === 'found' ? read.events.length : 0, 400)
  t.ok(earlier.every((bytes, index) => bytes.equals(eventOf(601 + index))), 'what was read before 350 more events came and older ones went is unchanged')
  t.same(await store.readAfter('A', 's1', 599), { status: 'evicted' })
})

t.test('a chunk\'s batch is recorded by ranges: comments between its events are not kept, a batch past a block is kept whole, and one batch over maxEvents keeps its last ones', async (t) => {
  const builderStore = new LocalHistoryStore({ maxEvents: 5, maxBytes: 1 << 22, ttlMs: 60_000, replay: true })
  const builder = new BatchBuilder('S.E.')
  builder.raw(Buffer.from(': before\n\n'))
  builder.event(1, Buffer.from('data: one\n'), 'u1')
  builder.event(2, Buffer.from('event: two\ndata: 2\n'), 'u2')
  builder.raw(Buffer.from('retry: 500\n\n'))
  builder.event(3, Buffer.from('data: three\n'), undefined)
  const small = builder.take()
  if (small === undefined) throw new Error('the builder gave no batch')
  builderStore.appendNow('A', 's1', small, Date.now())
  const read = await builderStore.readAfter('A', 's1', 0)
  t.same(read.status === 'found' ? read.events.map((event) => [event.seq, event.upstreamId, event.bytes.toString()]) : read, [
    [1, 'u1', 'id: S.E.1\ndata: one\n\n'],
    [2, 'u2', 'event: two\nid: S.E.2\ndata: 2\n\n'],
    [3, undefined, 'id: S.E.3\ndata: three\n\n']
  ], 'each event under its proxy id, without the comment and the retry hint around them')

  // 2,000 events of 100 B: past the largest block (64 KB), so the history keeps the batch's own bytes.
  const payload = 'x'.repeat(100)
  for (let seq = 4; seq < 2004; seq++) builder.event(seq, Buffer.from(`data: ${payload}\n`), `u${seq}`)
  const large = builder.take()
  if (large === undefined) throw new Error('the builder gave no batch')
  builderStore.appendNow('A', 's1', large, Date.now())
  t.equal(builderStore.stats().events, 5, 'maxEvents holds within one batch')
  t.same(await builderStore.readAfter('A', 's1', 1997), { status: 'evicted' })
  const last = await builderStore.readAfter('A', 's1', 1998)
  t.same(last.status === 'found' ? last.events.map((event) => [event.seq, event.upstreamId, event.bytes.toString()]) : last,
    [1999, 2000, 2001, 2002, 2003].map((seq) => [seq, `u${seq}`, `id: S.E.${seq}\ndata: ${payload}\n\n`]))

  const idsOnly = new LocalHistoryStore({ maxEvents: 10, maxBytes: 1 << 20, ttlMs: 60_000, replay: false })
  idsOnly.appendNow('A', 's1', small, Date.now())
  t.equal(await idsOnly.upstreamIdAt('A', 's1', 2), 'u2', 'ids-only mode keeps the upstream ids')
  const none = await idsOnly.readAfter('A', 's1', 0)
  t.same(none.status === 'found' ? none.events.map((event) => event.bytes.length) : none, [0, 0, 0], 'and none of the bytes')
})
