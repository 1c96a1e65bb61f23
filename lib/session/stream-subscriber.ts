import type { ClientSseStream } from '../client/client-sse-stream.js'
import type { HistoryRead } from '../history/history-store.js'
import { serializeRetry } from '../wire/sse-serializer.js'

/** An event (with its seq) or a line that is not recorded: a comment, a `retry:`. */
export interface StreamItem {
  readonly seq?: number | undefined
  readonly text: string
}

export interface SubscriberOwner {
  unsubscribe: (subscriber: StreamSubscriber) => void
  readAfter: (seq: number) => Promise<HistoryRead>
}

/**
 * One client's place in a stream.
 *
 * Live, events are written as they come. When the client's socket is full, the
 * subscriber stops writing live and catches up from the history instead: it
 * waits for the socket to drain, then writes what the client lacks in slices,
 * no faster than the client reads. Meanwhile live events queue; if the queue
 * overflows it is dropped and read back from the history, where everything is,
 * so memory stays bounded. Its stream holds the upstream back while it catches up
 * (afterCatchUp), so that the upstream does not outrun it past the end of the
 * history. `lastSentSeq` drops anything the client already has: nothing comes
 * twice, nothing is skipped.
 *
 * A client whose socket takes in nothing for `stallMs` while events wait for it,
 * or whose place has left the history, cannot keep up: it is cut, and counted,
 * and may resume.
 */
export class StreamSubscriber {
  readonly #owner: SubscriberOwner
  readonly #maxBufferedChars: number
  readonly #stallMs: number
  /** The stream's last seq when this client joined: "live from now" starts after it. */
  readonly #joinedAtSeq: number
  #lastSentSeq: number
  /** Defined while catching up: the live events that arrived meanwhile. */
  #queue: StreamItem[] | undefined = []
  #queuedChars = 0
  #queueOverflowed = false
  #output: ClientSseStream | undefined
  #finished = false
  #closed = false
  /** Told once a catch-up is over, or the client is gone. */
  #caughtUpListener: (() => void) | undefined

  constructor (owner: SubscriberOwner, position: { lastSentSeq: number, joinedAtSeq: number }, limits: { maxBufferedChars: number, stallMs: number }) {
    this.#owner = owner
    this.#lastSentSeq = position.lastSentSeq
    this.#joinedAtSeq = position.joinedAtSeq
    this.#maxBufferedChars = limits.maxBufferedChars
    this.#stallMs = limits.stallMs
  }

  get closed (): boolean {
    return this.#closed
  }

  /** True while the client is being caught up, not written to live. */
  get catchingUp (): boolean {
    return this.#queue !== undefined
  }

  /** Calls `listener` once the current catch-up is over or the client is gone. */
  afterCatchUp (listener: () => void): void {
    this.#caughtUpListener = listener
  }

  /** Starts the client's output: `replay` first, then what arrived meanwhile, then live. */
  start (output: ClientSseStream, replay: readonly StreamItem[]): void {
    this.#output = output
    output.onClose(() => this.#gone())
    this.#runCatchUp(output, replay)
  }

  /**
   * Starts the output live from the moment this client joined, whatever position it
   * asked for: one the history cannot serve, or one the stream never reached (an id
   * the proxy never issued), which must not hold back the events that come next.
   */
  startLive (output: ClientSseStream): void {
    this.#lastSentSeq = this.#joinedAtSeq
    this.start(output, [])
  }

  deliver (items: readonly StreamItem[]): void {
    const output = this.#output
    if (this.#queue === undefined && output !== undefined) {
      this.#writeNow(output, items)
      if (output.needsDrain) {
        this.#queue = []
        this.#queuedChars = 0
        this.#runCatchUp(output, [])
      }
      return
    }
    this.#enqueue(items)
  }

  /** The stream has no more events: end the client's response once it has them all. */
  finish (): void {
    this.#finished = true
    if (this.#queue === undefined) this.#output?.end()
  }

  /** Tells the client, in-band, how long to wait before it reconnects: the SSE `retry:` field. */
  hintRetry (milliseconds: number): void {
    this.#output?.write(serializeRetry(milliseconds))
    this.#output?.flush()
  }

  /** Resolves once the client's response has ended and gone, or at once when there is none. */
  async gone (): Promise<void> {
    const output = this.#output
    if (output === undefined || output.closed) return
    await new Promise<void>((resolve) => output.onClose(resolve))
  }

  /** Cuts the client off (a newer connection took the stream over, or it is being shut). */
  close (): void {
    if (this.#closed) return
    this.#closed = true
    this.#queue = undefined
    this.#output?.destroy()
    this.#caughtUp()
    this.#owner.unsubscribe(this)
  }

  #enqueue (items: readonly StreamItem[]): void {
    if (this.#queueOverflowed || this.#queue === undefined) return
    for (const item of items) {
      this.#queue.push(item)
      this.#queuedChars += item.text.length
    }
    // Everything queued is in the history too: past the limit, read it back from there.
    if (this.#queuedChars > this.#maxBufferedChars) {
      this.#queue = []
      this.#queuedChars = 0
      this.#queueOverflowed = true
    }
  }

  #runCatchUp (output: ClientSseStream, pending: readonly StreamItem[]): void {
    this.#catchUp(output, pending).catch(() => this.close())
  }

  async #catchUp (output: ClientSseStream, replay: readonly StreamItem[]): Promise<void> {
    let pending = replay
    for (;;) {
      if (!await this.#writePaced(output, pending)) return
      if (!this.#queueOverflowed) break
      this.#queueOverflowed = false
      const read = await this.#owner.readAfter(this.#lastSentSeq)
      if (read.status !== 'found') {
        // The history moved past this client while it read: it cannot keep up.
        output.cutAsSlowConsumer()
        return
      }
      pending = read.events
    }
    const queued = this.#queue ?? []
    this.#queue = undefined
    this.#queuedChars = 0
    this.#writeNow(output, queued)
    this.#caughtUp()
    if (this.#finished) output.end()
  }

  #caughtUp (): void {
    const listener = this.#caughtUpListener
    this.#caughtUpListener = undefined
    listener?.()
  }

  /** Writes in slices, waiting for the socket to drain first and between them. False once the client is gone. */
  async #writePaced (output: ClientSseStream, items: readonly StreamItem[]): Promise<boolean> {
    const sliceChars = this.#maxBufferedChars / 2
    let written = 0
    if (!await this.#drained(output)) return false
    for (const item of items) {
      if (this.#append(output, item)) written += item.text.length
      if (written >= sliceChars) {
        output.flush()
        written = 0
        if (!await this.#drained(output)) return false
      }
    }
    output.flush()
    return await this.#drained(output)
  }

  /** Waits for room in the socket; a client that takes nothing in for stallMs is cut. */
  async #drained (output: ClientSseStream): Promise<boolean> {
    if (!await output.drained(this.#stallMs)) output.cutAsSlowConsumer()
    return !this.#closed && !output.closed
  }

  #writeNow (output: ClientSseStream, items: readonly StreamItem[]): void {
    for (const item of items) this.#append(output, item)
    output.flush()
  }

  /** Adds an item to the output unless the client already has it. */
  #append (output: ClientSseStream, item: StreamItem): boolean {
    if (item.seq !== undefined) {
      if (item.seq <= this.#lastSentSeq) return false
      this.#lastSentSeq = item.seq
    }
    output.write(item.text)
    return true
  }

  #gone (): void {
    this.#closed = true
    this.#caughtUp()
    this.#owner.unsubscribe(this)
  }
}
