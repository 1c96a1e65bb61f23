/** What the shared store knows of a stream, for the replica that takes it over. */
export interface StreamPosition {
  /** The highest seq recorded. */
  readonly lastSeq: number
  /** The highest seq evicted, 0 if none. */
  readonly evictedThrough: number
  /** The upstream id of the last recorded event that had one: where to resume the upstream. */
  readonly cursor: string | undefined
  readonly finished: boolean
  /** The takeover descriptor given at registration. */
  readonly descriptor: string | undefined
  /** The last fencing token issued. */
  readonly fence: number
  readonly epoch: string
}

export interface LeaseToRenew {
  readonly sessionId: string
  readonly streamId: string
  readonly token: number
}

export interface StreamRef {
  readonly sessionId: string
  readonly streamId: string
}

/**
 * Which replica reads which upstream stream. A replica claims a stream's lease and
 * gets a fencing token, higher than any before it; it renews the lease while it
 * reads; the history store rejects the appends of a token that a later claim
 * superseded. The streams whose lease ran out are listed, so that the other
 * replicas find the streams whose owner died.
 */
export interface StreamRegistry {
  /** The store epoch: a value that changes when the store loses its data. */
  ensureEpoch: () => Promise<string>
  /** Records a new stream; a stream already registered keeps its position, and gets the new descriptor. */
  register: (sessionId: string, streamId: string, descriptor: string, epoch: string) => Promise<void>
  /** The session that owns a stream, for a client that resumes with only a Last-Event-ID. */
  sessionOf: (streamId: string) => Promise<string | undefined>
  /** Takes the lease of an unfinished stream that has none; its fencing token, or undefined. */
  claim: (sessionId: string, streamId: string, owner: string, ttlMs: number, now: number) => Promise<number | undefined>
  /** Extends the leases, each only for the holder of its token, in as few calls as the store allows; false for each one lost. */
  renewMany: (owner: string, leases: readonly LeaseToRenew[], ttlMs: number, now: number) => Promise<boolean[]>
  /** Gives the lease up, only for its holder; an unfinished stream is due for takeover at once. */
  release: (sessionId: string, streamId: string, owner: string, token: number) => Promise<boolean>
  /** Marks the stream ended for good, unless a newer owner holds it, and tells its live followers. */
  finish: (sessionId: string, streamId: string, token: number) => Promise<boolean>
  position: (sessionId: string, streamId: string) => Promise<StreamPosition | undefined>
  /** Unfinished streams whose lease expired at `now` (or was released), oldest expiry first. */
  expiredLeases: (now: number, limit: number) => Promise<StreamRef[]>
}
