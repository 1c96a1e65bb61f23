import type { HistoryLimits, HistoryRead, HistoryStats, HistoryStore, RecordedEvent } from './history-store.js'

// Rough heap cost of one kept event beyond its strings, so that maxBytes bounds memory, not only text.
const EVENT_OVERHEAD_BYTES = 64

interface KeptEvent extends RecordedEvent {
  /** Append order over the whole store: the smallest is the oldest. */
  readonly order: number
  readonly at: number
  readonly bytes: number
}

/** A stream's kept events. Seqs are contiguous, so a position is found by arithmetic. */
class StreamHistory {
  #events: KeptEvent[] = []
  #head = 0
  /** The highest seq evicted so far; a client behind it has lost events. */
  evictedThrough = 0
  lastSeq = 0

  get size (): number {
    return this.#events.length - this.#head
  }

  get oldest (): KeptEvent | undefined {
    return this.#events[this.#head]
  }

  push (event: KeptEvent): void {
    this.#events.push(event)
    this.lastSeq = event.seq
  }

  /** Removes the oldest event; callers check that there is one. */
  shift (): KeptEvent {
    const event = this.#events[this.#head] as KeptEvent
    this.#head++
    this.evictedThrough = event.seq
    // Compact now and then instead of Array#shift on every eviction.
    if (this.#head > 1024 && this.#head * 2 > this.#events.length) {
      this.#events = this.#events.slice(this.#head)
      this.#head = 0
    }
    return event
  }

  after (seq: number): KeptEvent[] {
    const first = this.oldest
    if (first === undefined) return []
    return this.#events.slice(this.#head + Math.max(0, seq + 1 - first.seq))
  }

  at (seq: number): KeptEvent | undefined {
    const first = this.oldest
    if (first === undefined || seq < first.seq) return undefined
    return this.#events[this.#head + seq - first.seq]
  }
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
      const bytes = text.length + (event.upstreamId?.length ?? 0) + EVENT_OVERHEAD_BYTES
      stream.push({ seq: event.seq, upstreamId: event.upstreamId, text, order: ++this.#order, at: now, bytes })
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
    return this.#sessions.get(sessionId)?.streams.get(streamId)?.at(seq)?.upstreamId
  }

  async expire (now: number): Promise<void> {
    const cutoff = now - this.#limits.ttlMs
    for (const session of this.#sessions.values()) {
      for (const stream of session.streams.values()) {
        while ((stream.oldest?.at ?? Infinity) <= cutoff) this.#evictOldest(session, stream)
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
      if (oldestOrder(stream) < oldestOrder(oldest)) oldest = stream
    }
    this.#evictOldest(session, oldest)
  }

  #evictOldest (session: SessionHistory, stream: StreamHistory): void {
    const event = stream.shift()
    session.bytes -= event.bytes
    this.#bytes -= event.bytes
    this.#events--
  }
}

function oldestOrder (stream: StreamHistory): number {
  return stream.oldest?.order ?? Infinity
}
