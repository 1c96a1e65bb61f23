import type { HistoryLimits, HistoryRead, HistoryStats, HistoryStore, RecordedEvent } from './history-store.js'

// Rough heap cost of one kept event beyond its strings (four array slots, string headers),
// so that maxBytes bounds memory, not only text.
const EVENT_OVERHEAD_BYTES = 48

/**
 * A stream's kept events, column by column: no object per event, which is what
 * makes ids-only mode cheap (see bench/). Seqs are contiguous, so a position is
 * found by arithmetic.
 */
class StreamHistory {
  #upstreamIds: Array<string | undefined> = []
  #texts: string[] = []
  /** Append order over the whole store: the smallest is the oldest. */
  #orders: number[] = []
  #times: number[] = []
  #head = 0
  /** The highest seq evicted so far; a client behind it has lost events. */
  evictedThrough = 0
  lastSeq = 0

  get size (): number {
    return this.#texts.length - this.#head
  }

  get oldestOrder (): number {
    return this.size === 0 ? Infinity : this.#orders[this.#head] as number
  }

  get oldestTime (): number {
    return this.size === 0 ? Infinity : this.#times[this.#head] as number
  }

  push (event: RecordedEvent, text: string, order: number, at: number): void {
    this.#upstreamIds.push(event.upstreamId)
    this.#texts.push(text)
    this.#orders.push(order)
    this.#times.push(at)
    this.lastSeq = event.seq
  }

  /** Removes the oldest event, and says how many bytes it counted for; callers check that there is one. */
  shift (): number {
    const bytes = eventBytes(this.#texts[this.#head] as string, this.#upstreamIds[this.#head])
    this.evictedThrough = this.lastSeq - this.size + 1
    this.#upstreamIds[this.#head] = undefined
    this.#texts[this.#head] = ''
    this.#head++
    // Compact now and then instead of Array#shift on every eviction.
    if (this.#head > 1024 && this.#head * 2 > this.#texts.length) {
      this.#upstreamIds = this.#upstreamIds.slice(this.#head)
      this.#texts = this.#texts.slice(this.#head)
      this.#orders = this.#orders.slice(this.#head)
      this.#times = this.#times.slice(this.#head)
      this.#head = 0
    }
    return bytes
  }

  after (seq: number): RecordedEvent[] {
    const firstSeq = this.lastSeq - this.size + 1
    const events: RecordedEvent[] = []
    for (let next = Math.max(seq + 1, firstSeq); next <= this.lastSeq; next++) {
      const index = this.#head + next - firstSeq
      events.push({ seq: next, upstreamId: this.#upstreamIds[index], text: this.#texts[index] as string })
    }
    return events
  }

  upstreamIdAt (seq: number): string | undefined {
    const firstSeq = this.lastSeq - this.size + 1
    if (this.size === 0 || seq < firstSeq || seq > this.lastSeq) return undefined
    return this.#upstreamIds[this.#head + seq - firstSeq]
  }
}

function eventBytes (text: string, upstreamId: string | undefined): number {
  return text.length + (upstreamId?.length ?? 0) + EVENT_OVERHEAD_BYTES
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

  append (sessionId: string, streamId: string, events: readonly RecordedEvent[]): undefined {
    this.appendNow(sessionId, streamId, events, Date.now())
    return undefined
  }

  /** append(), synchronously, with the clock given: for callers on the hot path and for tests. */
  appendNow (sessionId: string, streamId: string, events: readonly RecordedEvent[], now: number): void {
    const session = this.#sessionFor(sessionId)
    const stream = this.#streamFor(session, streamId)
    for (const event of events) {
      const text = this.#limits.replay ? event.text : ''
      const bytes = eventBytes(text, event.upstreamId)
      stream.push(event, text, ++this.#order, now)
      session.bytes += bytes
      this.#bytes += bytes
      this.#events++
      if (stream.size > this.#limits.maxEvents) this.#evictOldest(session, stream)
      while (session.bytes > this.#limits.maxBytes) this.#evictOldestOfSession(session, stream)
    }
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
