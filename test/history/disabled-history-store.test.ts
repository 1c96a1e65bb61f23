import t from 'tap'
import { DisabledHistoryStore } from '../../lib/history/disabled-history-store.js'
import type { HistoryStore } from '../../lib/history/history-store.js'

t.test('history.enabled false: the store keeps nothing, so every read is unknown', async (t) => {
  const store: HistoryStore = new DisabledHistoryStore()
  await store.append('A', 's1', [{ seq: 1, upstreamId: 'u1', text: 'id: s1.1\ndata: x\n\n' }])
  t.same(await store.readAfter('A', 's1', 0), { status: 'unknown' })
  t.equal(await store.upstreamIdAt('A', 's1', 1), undefined)
  await store.expire(Date.now())
  await store.dropStream('A', 's1')
  await store.dropSession('A')
  t.same(store.stats(), { events: 0, bytes: 0 })
  await store.close()
})
