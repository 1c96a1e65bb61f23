import t, { type Test } from 'tap'
import { RemoteStream } from '../../lib/cluster/remote-stream.js'
import type { HistoryRead, HistoryStats, HistoryStore, RecordedEvent } from '../../lib/history/history-store.js'
import { LocalHistoryStore } from '../../lib/history/local-history-store.js'
import { StreamSubscriber } from '../../lib/session/stream-subscriber.js'
import { exactSequence } from '../helpers/numbered-events.js'
import { clientOverSocket } from '../helpers/client-stream-server.js'

/**
 * A history whose reads wait while `gate` is set, as a Redis read does while live
 * messages keep arriving: the windows RemoteStream must merge across.
 */
class GatedStore implements HistoryStore {
  readonly local = new LocalHistoryStore({ maxEvents: 1000, maxBytes: 1 << 20, ttlMs: 60_000, replay: true })
  gate: Promise<void> | undefined
  reads = 0

  async append (sessionId: string, streamId: string, events: readonly RecordedEvent[]): Promise<void> { this.local.append(sessionId, streamId, events) }
  async readAfter (sessionId: string, streamId: string, afterSeq: number): Promise<HistoryRead> {
    this.reads++
    await this.gate
    return await this.local.readAfter(sessionId, streamId, afterSeq)
  }

  async upstreamIdAt (sessionId: string, streamId: string, seq: number): Promise<string | undefined> { return await this.local.upstreamIdAt(sessionId, streamId, seq) }
  async expire (now: number): Promise<void> { await this.local.expire(now) }
  async dropStream (sessionId: string, streamId: string): Promise<void> { await this.local.dropStream(sessionId, streamId) }
  async dropSession (sessionId: string): Promise<void> { await this.local.dropSession(sessionId) }
  stats (): HistoryStats { return this.local.stats() }
  async close (): Promise<void> { await this.local.close() }
}

const event = (seq: number): RecordedEvent => ({ seq, upstreamId: `u${seq}`, text: `id: s.${seq}\ndata: ${seq}\n\n` })

/** What the owner replica does: record the events, then publish them live (here, straight to the follower). */
async function recordAndPublish (store: GatedStore, remote: RemoteStream, from: number, to: number): Promise<void> {
  for (let seq = from; seq <= to; seq++) {
    await store.local.append('A', 's1', [event(seq)])
    remote.onEvent(seq, event(seq).text)
  }
}

/** A follower of stream s1 whose client is a real socket; its first read waits for releaseFirstRead(). */
async function follower (test: Test, store: GatedStore) {
  let releaseFirstRead = (): void => {}
  store.gate = new Promise((resolve) => { releaseFirstRead = resolve })
  const remote = new RemoteStream({ sessionId: 'A', streamId: 's1', channel: 'live', onClose: () => {} }, store)
  const client = await clientOverSocket(test, (output) => {
    // As the shared directory's resume source does (lib/directory/shared-directory.ts): read after listening, then replay what was read, then live.
    remote.readAfter(0).then((read) => {
      const replay = read.status === 'found' ? read.events : []
      const subscriber = new StreamSubscriber(remote, { lastSentSeq: 0, joinedAtSeq: replay.at(-1)?.seq ?? 0 }, { maxBufferedChars: 1 << 20, stallMs: 10_000 })
      subscriber.start(output, replay)
      remote.start(subscriber, replay.at(-1)?.seq ?? 0, false)
    })
  }, () => remote.close())
  return { remote, client, releaseFirstRead }
}

t.test('live events that arrive while the first history read runs are held, then merged after the replay: each once, in order', async (t) => {
  const store = new GatedStore()
  await store.local.append('A', 's1', [event(1), event(2), event(3)])
  const { remote, client, releaseFirstRead } = await follower(t, store)
  // Recorded before the read answers, so the read returns them too: the held copies must not go out twice.
  await recordAndPublish(store, remote, 4, 6)
  store.gate = undefined
  releaseFirstRead()
  await recordAndPublish(store, remote, 7, 10)
  const events = await client.waitForEvents(10)
  const numbers = events.map((received) => Number(received.data))
  t.same(numbers, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
  t.ok(exactSequence(numbers))
})

t.test('live events that arrive while a hole is being filled start another read: nothing missing, nothing twice', async (t) => {
  const store = new GatedStore()
  const { remote, client, releaseFirstRead } = await follower(t, store)
  store.gate = undefined
  releaseFirstRead()
  await recordAndPublish(store, remote, 1, 2)
  await client.waitForEvents(2)

  // Seq 3 never comes live (pub/sub lost it): 4 shows the hole, and the fill is held open.
  let releaseFill = (): void => {}
  store.gate = new Promise((resolve) => { releaseFill = resolve })
  await store.local.append('A', 's1', [event(3)])
  const readsBefore = store.reads
  await recordAndPublish(store, remote, 4, 4)
  t.equal(store.reads, readsBefore + 1, 'the skipped seq is read from the history')
  await recordAndPublish(store, remote, 5, 7)
  store.gate = undefined
  releaseFill()
  await recordAndPublish(store, remote, 8, 9)
  const numbers = (await client.waitForEvents(9)).map((received) => Number(received.data))
  t.same(numbers, [1, 2, 3, 4, 5, 6, 7, 8, 9])
  t.ok(store.reads >= readsBefore + 2, 'what arrived during the fill was read again')
})
