import t from 'tap'
import { LocalHistoryStore } from '../../lib/history/local-history-store.js'
import { historyStoreContract } from './history-store-contract.js'

historyStoreContract(t, async (limits) => new LocalHistoryStore(limits))

t.test('a long stream compacts its storage and stays bounded', async (t) => {
  const store = new LocalHistoryStore({ maxEvents: 10, maxBytes: 1 << 20, ttlMs: 60_000, replay: true })
  for (let seq = 1; seq <= 5000; seq++) store.appendNow('A', 's1', [{ seq, upstreamId: undefined, text: `data: ${seq}\n\n` }], Date.now())
  const read = await store.readAfter('A', 's1', 4990)
  t.same(read.status === 'found' ? read.events.map((event) => event.seq) : read, [4991, 4992, 4993, 4994, 4995, 4996, 4997, 4998, 4999, 5000])
  t.equal(store.stats().events, 10)
})
