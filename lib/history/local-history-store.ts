import { ByteBlocks } from './byte-blocks.js'
import type { EventBatch } from './event-batch.js'
import type { HistoryLimits, HistoryRead, HistoryStats, HistoryStore, RecordedEvent } from './history-store.js'

// Rough cost of one kept event beyond its bytes (six array slots), so that maxBytes bounds memory, not only events.
const EVENT_OVERHEAD_BYTES = 48
const NO_BYTES = Buffer.alloc(0)

/**
 * A stream's kept events, column by column: no object per event, which is what
 * makes ids-only mode cheap (see bench/). Seqs are contiguous, so a position is
 * found by arithmetic. The events' bytes are copied into blocks off the V8 heap
 * (byte-blocks.ts), where each is a block number, an offset and a length.
 */
class StreamHistory {
  readonly #blocks = new ByteBlocks()
  #upstreamIds: Array<string | undefined> = []
  #blockNumbers: number[] = []
  #offsets: number[] = []
  #lengths: number[] = []
  /** Append order over the whole store: the smallest is the oldest. */
  #orders: number[] = []
  #times: number[] = []
  #head = 0
  /** The highest seq evicted so far; a client behind it has lost events. */
  evictedThrough = 0
  lastSeq = 0

  get size (): number {
    return this.#lengths.length - this.#head
  }

  get oldestOrder (): number {
    return this.size === 0 ? Infinity : this.#orders[this.#head] as number
  }

  get oldestTime (): number {
    return this.size === 0 ? Infinity : this.#times[this.#head] as number
  }

  /**
   * A batch's events: event i is `bytes[bounds[2i], bounds[2i + 1])`, or nothing kept
   * (ids-only mode) when `keep` is false. Events side by side in the batch (all of them,
   * unless comments came between) are copied into a block at once. Returns the bytes they count for.
   */
  pushBatch (batch: EventBatch, keep: boolean, order: number, at: number): number {
    const { bytes, bounds, upstreamIds, count } = batch
    let counted = 0
    let index = 0
    while (index < count) {
      const runStart = bounds[2 * index] as number
      let runEnd = bounds[2 * index + 1] as number
      let last = index
      if (keep) {
        while (last + 1 < count && bounds[2 * (last + 1)] === runEnd) runEnd = bounds[2 * ++last + 1] as number
      }
      const offset = keep ? this.#blocks.write(bytes, runStart, runEnd) - runStart : 0
      const block = this.#blocks.lastBlock
      for (; index <= last; index++) {
        const start = bounds[2 * index] as number
        const length = keep ? (bounds[2 * index + 1] as number) - start : 0
        const upstreamId = upstreamIds[index]
        counted += eventBytes(length, upstreamId)
        this.#upstreamIds.push(upstreamId)
        this.#offsets.push(keep ? offset + start : 0)
        this.#blockNumbers.push(block)
        this.#lengths.push(length)
        this.#orders.push(order++)
        this.#times.push(at)
      }
    }
    this.lastSeq = batch.firstSeq + count - 1
    return counted
  }

  /** Removes the oldest event, and says how many bytes it counted for; callers check that there is one. */
  shift (): number {
    const bytes = eventBytes(this.#lengths[this.#head] as number, this.#upstreamIds[this.#head])
    this.evictedThrough = this.lastSeq - this.size + 1
    this.#upstreamIds[this.#head] = undefined
    this.#head++
    // The block being written to stays, even once all its events are gone.
    this.#blocks.releaseBefore(this.size === 0 ? this.#blocks.lastBlock : this.#blockNumbers[this.#head] as number)
    // Compact now and then instead of Array#shift on every eviction.
    if (this.#head > 1024 && this.#head * 2 > this.#lengths.length) {
      this.#upstreamIds = this.#upstreamIds.slice(this.#head)
      this.#blockNumbers = this.#blockNumbers.slice(this.#head)
      this.#offsets = this.#offsets.slice(this.#head)
      this.#lengths = this.#lengths.slice(this.#head)
      this.#orders = this.#orders.slice(this.#head)
      this.#times = this.#times.slice(this.#head)
      this.#head = 0
    }
    return bytes
  }

  /** The events after `seq`, their bytes as views of the blocks, which no later write changes. */
  after (seq: number): RecordedEvent[] {
    const firstSeq = this.lastSeq - this.size + 1
    const events: RecordedEvent[] = []
    for (let next = Math.max(seq + 1, firstSeq); next <= this.lastSeq; next++) {
      const index = this.#head + next - firstSeq
      const length = this.#lengths[index] as number
      const bytes = length === 0 ? NO_BYTES : this.#blocks.view(this.#blockNumbers[index] as number, this.#offsets[index] as number, length)
      events.push({ seq: next, upstreamId: this.#upstreamIds[index], bytes })
    }
    return events
  }

  upstreamIdAt (seq: number): string | undefined {
    const firstSeq = this.lastSeq - this.size + 1
    if (this.size === 0 || seq < firstSeq || seq > this.lastSeq) return undefined
    return this.#upstreamIds[this.#head + seq - firstSeq]
  }
}

function eventBytes (length: number, upstreamId: string | undefined): number {
  return length + (upstreamId?.length ?? 0) + EVENT_OVERHEAD_BYTES
}

class SessionHistory {
  readonly streams = new Map<string, StreamHistory>()
  bytes = 0
}

/** The in-memory history store: one process, nothing to install. */
export class LocalHistoryStore implements HistoryStore {
  readonly #limits: HistoryLimits
  readonly #sessions = new Map<string, SessionHistory>()
  #order = 0
  #events = 0
  #bytes = 0

  constructor (limits: HistoryLimits) {
    this.#limits = limits
  }

  append (sessionId: string, streamId: string, batch: EventBatch): undefined {
    this.appendNow(sessionId, streamId, batch, Date.now())
    return undefined
  }

  /** append(), synchronously, with the clock given: for callers on the hot path and for tests. */
  appendNow (sessionId: string, streamId: string, batch: EventBatch, now: number): void {
    if (batch.count === 0) return
    const session = this.#sessionFor(sessionId)
    const stream = this.#streamFor(session, streamId)
    const bytes = stream.pushBatch(batch, this.#limits.replay, this.#order + 1, now)
    this.#order += batch.count
    session.bytes += bytes
    this.#bytes += bytes
    this.#events += batch.count
    while (stream.size > this.#limits.maxEvents) this.#evictOldest(session, stream)
    while (session.bytes > this.#limits.maxBytes) this.#evictOldestOfSession(session, stream)
  }

  async readAfter (sessionId: string, streamId: string, afterSeq: number): Promise<HistoryRead> {
    const stream = this.#sessions.get(sessionId)?.streams.get(streamId)
    if (stream === undefined || afterSeq > stream.lastSeq || afterSeq < 0) return { status: 'unknown' }
    if (afterSeq < stream.evictedThrough) return { status: 'evicted' }
    return { status: 'found', events: stream.after(afterSeq) }
  }

  async upstreamIdAt (sessionId: string, streamId: string, seq: number): Promise<string | undefined> {
    return this.#sessions.get(sessionId)?.streams.get(streamId)?.upstreamIdAt(seq)
  }

  async expire (now: number): Promise<void> {
    const cutoff = now - this.#limits.ttlMs
    for (const session of this.#sessions.values()) {
      for (const stream of session.streams.values()) {
        while (stream.oldestTime <= cutoff) this.#evictOldest(session, stream)
      }
    }
  }

  async dropStream (sessionId: string, streamId: string): Promise<void> {
    const session = this.#sessions.get(sessionId)
    const stream = session?.streams.get(streamId)
    if (session === undefined || stream === undefined) return
    while (stream.size > 0) this.#evictOldest(session, stream)
    session.streams.delete(streamId)
    if (session.streams.size === 0) this.#sessions.delete(sessionId)
  }

  async dropSession (sessionId: string): Promise<void> {
    const session = this.#sessions.get(sessionId)
    if (session === undefined) return
    for (const streamId of [...session.streams.keys()]) await this.dropStream(sessionId, streamId)
  }

  stats (): HistoryStats {
    return { events: this.#events, bytes: this.#bytes }
  }

  async close (): Promise<void> {
    this.#sessions.clear()
    this.#events = 0
    this.#bytes = 0
  }

  #sessionFor (sessionId: string): SessionHistory {
    let session = this.#sessions.get(sessionId)
    if (session === undefined) {
      session = new SessionHistory()
      this.#sessions.set(sessionId, session)
    }
    return session
  }

  #streamFor (session: SessionHistory, streamId: string): StreamHistory {
    let stream = session.streams.get(streamId)
    if (stream === undefined) {
      stream = new StreamHistory()
      session.streams.set(streamId, stream)
    }
    return stream
  }

  /** Evicts the session's oldest event; `current` holds at least the event just appended. */
  #evictOldestOfSession (session: SessionHistory, current: StreamHistory): void {
    let oldest = current
    for (const stream of session.streams.values()) {
      if (stream.oldestOrder < oldest.oldestOrder) oldest = stream
    }
    this.#evictOldest(session, oldest)
  }

  #evictOldest (session: SessionHistory, stream: StreamHistory): void {
    const bytes = stream.shift()
    session.bytes -= bytes
    this.#bytes -= bytes
    this.#events--
  }
}
