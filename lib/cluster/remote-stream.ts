import type { HistoryRead, HistoryStore } from '../history/history-store.js'
import type { StreamItem, StreamSubscriber, SubscriberOwner } from '../session/stream-subscriber.js'
import type { LiveFeed, LiveListener } from './live-feed.js'

export interface RemoteStreamRef {
  readonly sessionId: string
  readonly streamId: string
  readonly channel: string
  /** Told once, when the client stops following (it left, or was cut). */
  readonly onClose: () => void
}

// Live events held while the first history read runs; past it they are read back from the history.
const MAX_EARLY_EVENTS = 10_000

/**
 * A stream another replica records, followed from Redis for one client: "replay,
 * then live". Listening starts before the history is read, so nothing
 * falls between the two; events are merged by seq, so nothing comes twice; and a
 * seq that skips ahead (pub/sub lost messages while Redis was away) is filled
 * from the history before anything after it goes out.
 */
export class RemoteStream implements SubscriberOwner, LiveListener {
  readonly #ref: RemoteStreamRef
  readonly #store: HistoryStore
  #subscriber: StreamSubscriber | undefined
  #stopListening: (() => void) | undefined
  /** Until the first read is in: live events that arrived meanwhile, or undefined once too many did. */
  #early: StreamItem[] | undefined = []
  #started = false
  #lastSeq = 0
  #ended = false
  #filling: Promise<void> | undefined
  #refillAgain = false
  #closed = false

  constructor (ref: RemoteStreamRef, store: HistoryStore) {
    this.#ref = ref
    this.#store = store
  }

  /** Listens to the live channel. Call before the first read. */
  async listen (channels: LiveFeed): Promise<void> {
    this.#stopListening = await channels.listen(this.#ref.channel, this)
    if (this.#closed) this.#stopListening()
  }

  async readAfter (seq: number): Promise<HistoryRead> {
    return await this.#store.readAfter(this.#ref.sessionId, this.#ref.streamId, seq)
  }

  /**
   * The client's subscriber is writing everything up to `lastSeq` (the first read);
   * live events flow to it from here. `ended`: the stream was already over.
   */
  start (subscriber: StreamSubscriber, lastSeq: number, ended: boolean): void {
    this.#subscriber = subscriber
    this.#lastSeq = lastSeq
    this.#started = true
    const early = this.#early
    this.#early = []
    for (const item of early ?? []) this.onEvent(item.seq as number, item.text)
    if (ended) this.onEnd()
    /* c8 ignore next -- early events were dropped (see #holdEarly): read them from the history. */
    else if (early === undefined) this.#fillHole()
  }

  onEvent (seq: number, text: string): void {
    if (!this.#started) {
      this.#holdEarly({ seq, text })
      return
    }
    if (this.#filling !== undefined) {
      this.#refillAgain = true
      return
    }
    if (seq <= this.#lastSeq) return
    if (seq !== this.#lastSeq + 1) {
      this.#fillHole()
      return
    }
    this.#lastSeq = seq
    this.#subscriber?.deliver([{ seq, text }])
  }

  onEnd (): void {
    this.#ended = true
    if (!this.#started) return
    // The end may overtake events lost on the way: read what is recorded first.
    this.#fillHole()
  }

  resync (): void {
    if (this.#started) this.#fillHole()
  }

  unsubscribe (subscriber: StreamSubscriber): void {
    if (subscriber !== this.#subscriber) return
    this.close()
  }

  close (): void {
    if (this.#closed) return
    this.#closed = true
    this.#subscriber = undefined
    this.#stopListening?.()
    this.#ref.onClose()
  }

  #holdEarly (item: StreamItem): void {
    /* c8 ignore start -- more than MAX_EARLY_EVENTS live events during one history read: they are
       dropped here, and start() reads them back from the history, which holds them all. */
    if (this.#early === undefined) return
    if (this.#early.length === MAX_EARLY_EVENTS) {
      this.#early = undefined
      return
    }
    /* c8 ignore stop */
    this.#early.push(item)
  }

  /** Reads from the history what follows the last event sent, until nothing more arrives meanwhile. */
  #fillHole (): void {
    if (this.#filling !== undefined) {
      this.#refillAgain = true
      return
    }
    this.#filling = this.#readMissing().finally(() => {
      this.#filling = undefined
      if (this.#ended && !this.#closed) this.#subscriber?.finish()
    })
  }

  async #readMissing (): Promise<void> {
    do {
      this.#refillAgain = false
      const read = await this.readAfter(this.#lastSeq).catch(() => undefined)
      if (this.#closed) return
      /* c8 ignore next 4 -- the Redis client waits through disconnects rather than fail; a read
         that Redis itself refuses is asked again when the subscriber reconnects (resync). */
      if (read === undefined) {
        return
      }
      if (read.status !== 'found') {
        // The history moved past this client: it cannot be served without a gap.
        this.#subscriber?.close()
        return
      }
      // Ids-only history (history.replay false) has no text to fill the hole with.
      if (read.events.some((event) => event.text === '')) {
        this.#subscriber?.close()
        return
      }
      const last = read.events.at(-1)
      if (last !== undefined) {
        this.#lastSeq = last.seq
        this.#subscriber?.deliver(read.events)
      }
    } while (this.#refillAgain)
  }
}
