/** One event as the history keeps it. */
export interface RecordedEvent {
  /** Its position in its stream, from 1; the proxy's event id carries it. */
  readonly seq: number
  /** The upstream's own id, kept for upstream resume and dedup; never sent to clients. */
  readonly upstreamId: string | undefined
  /** The event as clients receive it, proxy id included. Empty in ids-only mode. */
  readonly text: string
}

/** What a store can say about the events after a position. */
export type HistoryRead =
  /** Every event after the position, oldest first (none when the client is up to date). */
  | { readonly status: 'found', readonly events: readonly RecordedEvent[] }
  /** Some events after the position are gone: the client cannot get them all. */
  | { readonly status: 'evicted' }
  /** The store knows no such stream in this session, or no such position in it. */
  | { readonly status: 'unknown' }

export interface HistoryLimits {
  /** Events kept per stream. */
  readonly maxEvents: number
  /** Bytes kept per session, over all its streams. */
  readonly maxBytes: number
  /** Events older than this are evicted by expire(). */
  readonly ttlMs: number
  /** false: keep ids only, never the events' text. */
  readonly replay: boolean
}

export interface HistoryStats {
  readonly events: number
  readonly bytes: number
}

/**
 * The contract every history store keeps, in the manner of @fastify/rate-limit's
 * LocalStore and RedisStore: one interface, and one test suite run against each.
 * A stream belongs to one session, and it is always looked up with it, so that
 * one session can never read another's events (GHSA-84j6-jc92-77jm).
 */
export interface HistoryStore {
  /**
   * Records a stream's next events, in order, evicting the oldest past the limits.
   * A store that needs no I/O records them at once and returns nothing, so that
   * they reach the client in the same turn; one that does I/O returns a promise.
   */
  append: (sessionId: string, streamId: string, events: readonly RecordedEvent[]) => Promise<void> | undefined
  /** The stream's events with a seq above `afterSeq`. */
  readAfter: (sessionId: string, streamId: string, afterSeq: number) => Promise<HistoryRead>
  /** The upstream id recorded for one event, if it is still known. */
  upstreamIdAt: (sessionId: string, streamId: string, seq: number) => Promise<string | undefined>
  /** Evicts what is older than the TTL at `now` (milliseconds since the epoch). */
  expire: (now: number) => Promise<void>
  dropStream: (sessionId: string, streamId: string) => Promise<void>
  dropSession: (sessionId: string) => Promise<void>
  stats: () => HistoryStats
  close: () => Promise<void>
}
