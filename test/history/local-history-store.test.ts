import t from 'tap'
import { batchOf } from '../../lib/history/event-batch.js'
import { LocalHistoryStore } from '../../lib/history/local-history-store.js'
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
