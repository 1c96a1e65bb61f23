import t from 'tap'
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'
import { BoundedEventStore } from './bounded-event-store.js'

// The conformance upstream's event store. The SDK's example store sorts ids as strings
// (event 10 before event 9) and never forgets anything; this one must do neither.

const note = (n: number): JSONRPCMessage => ({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: n } })

const numbers = (sent: Array<[string, JSONRPCMessage]>): unknown[] => sent.map(([, message]) => 'params' in message ? message.params?.data : undefined)

async function replay (store: BoundedEventStore, lastEventId: string): Promise<{ streamId: string, sent: Array<[string, JSONRPCMessage]> }> {
  const sent: Array<[string, JSONRPCMessage]> = []
  const streamId = await store.replayEventsAfter(lastEventId, { send: async (id, message) => { sent.push([id, message]) } })
  return { streamId, sent }
}

t.test('a replay sends the rest of the named stream, in the order stored, past ten events; not its priming event, nor another stream', async (t) => {
  const store = new BoundedEventStore(100)
  const ids: Record<string, string[]> = { post: [], get: [] }
  ids.post?.push(await store.storeEvent('post', {} as JSONRPCMessage))
  for (let n = 1; n <= 12; n++) {
    const stream = n % 3 === 0 ? 'get' : 'post'
    ids[stream]?.push(await store.storeEvent(stream, note(n)))
  }
  t.equal(new Set([...ids.post ?? [], ...ids.get ?? []]).size, 13, 'every event has its own id')

  const fromPriming = await replay(store, ids.post?.[0] ?? '')
  t.equal(fromPriming.streamId, 'post')
  t.same(numbers(fromPriming.sent), [1, 2, 4, 5, 7, 8, 10, 11])
  t.same(fromPriming.sent.map(([id]) => id), ids.post?.slice(1), 'each event replays under the id it was stored with')

  const fromSecond = await replay(store, ids.get?.[1] ?? '')
  t.equal(fromSecond.streamId, 'get')
  t.same(numbers(fromSecond.sent), [9, 12])
  t.equal(await store.getStreamIdForEventId(ids.get?.[0] ?? ''), 'get')
})

t.test('it keeps the last maxEvents events: an older id, or one it never issued, is unknown', async (t) => {
  const store = new BoundedEventStore(3)
  const other = new BoundedEventStore(3)
  const ids = []
  for (let n = 1; n <= 5; n++) ids.push(await store.storeEvent('post', note(n)))
  t.equal(store.size, 3)

  t.equal(await store.getStreamIdForEventId(ids[1] ?? ''), undefined, 'an evicted id is unknown')
  await t.rejects(replay(store, ids[1] ?? ''), /unknown or expired event id/)
  t.equal(await store.getStreamIdForEventId(ids[2] ?? ''), 'post', 'the oldest kept id is known')
  t.same((await replay(store, ids[2] ?? '')).sent.length, 2)

  const foreign = await other.storeEvent('post', note(1))
  for (const id of [foreign, 'nonsense', '', `${ids[4] ?? ''}0`]) {
    t.equal(await store.getStreamIdForEventId(id), undefined, `${JSON.stringify(id)} is unknown`)
  }
  t.throws(() => new BoundedEventStore(0), RangeError)
})
