import type { FastifyBaseLogger } from 'fastify'
import type { StreamRegistry } from './stream-registry.js'

/** The part of the registry the keeper needs: leases, nothing else. */
export type LeaseRegistry = Pick<StreamRegistry, 'renewMany' | 'release'>

export interface HeldLease {
  readonly sessionId: string
  readonly streamId: string
  readonly token: number
  /** The lease is gone (another replica holds it), or could not be renewed in time. */
  readonly onLost: () => void
  renewedAt: number
}

/**
 * The leases of the upstream streams this replica reads. All are
 * renewed together every third of their TTL, by compare-and-extend scripts that
 * take many leases each (one call per interval on one Redis). A lease that
 * another replica holds now, or that could not be renewed for half its TTL (two
 * renewals in a row failed), is lost: the stream stops reading its upstream before the lease can run
 * out under it, so that two replicas never read one upstream stream for long
 * (and the fencing token rejects whatever the old owner still tries to record).
 */
export class LeaseKeeper {
  readonly #registry: LeaseRegistry
  readonly #owner: string
  readonly #ttlMs: number
  readonly #log: FastifyBaseLogger
  readonly #held = new Map<string, HeldLease>()
  readonly #timer: NodeJS.Timeout
  readonly #onCountChange: (count: number) => void

  constructor (registry: LeaseRegistry, options: { owner: string, ttlMs: number, log: FastifyBaseLogger, onCountChange: (count: number) => void }) {
    this.#registry = registry
    this.#owner = options.owner
    this.#ttlMs = options.ttlMs
    this.#log = options.log
    this.#onCountChange = options.onCountChange
    this.#timer = setInterval(() => this.renewAll(Date.now()), Math.floor(options.ttlMs / 3)).unref()
  }

  get owner (): string {
    return this.#owner
  }

  hold (lease: Omit<HeldLease, 'renewedAt'>): void {
    this.#held.set(lease.streamId, { ...lease, renewedAt: Date.now() })
    this.#onCountChange(this.#held.size)
  }

  /** Gives the lease back, so that another replica may take the stream over at once. */
  async release (streamId: string): Promise<void> {
    const lease = this.#forget(streamId)
    if (lease === undefined) return
    await this.#registry.release(lease.sessionId, lease.streamId, this.#owner, lease.token)
  }

  /** Forgets the lease without a word to the store: the stream finished, and finish() cleared it. */
  forget (streamId: string): void {
    this.#forget(streamId)
  }

  renewAll (now: number): void {
    const due: HeldLease[] = []
    for (const lease of this.#held.values()) {
      if (now - lease.renewedAt >= this.#ttlMs / 2) this.#lose(lease, 'could not renew the lease in time')
      else due.push(lease)
    }
    if (due.length === 0) return
    this.#registry.renewMany(this.#owner, due, this.#ttlMs, now).then((renewed) => {
      due.forEach((lease, index) => {
        if (renewed[index] === true) lease.renewedAt = now
        else this.#lose(lease, 'another replica holds the lease')
      })
    }, /* c8 ignore next 3 -- the Redis client waits through disconnects instead of failing (the check
       above decides when that took too long); only a client being closed rejects. */ (error: unknown) => {
      this.#log.warn({ err: error, leases: due.length }, 'could not renew the upstream leases')
    })
  }

  close (): void {
    clearInterval(this.#timer)
  }

  #lose (lease: HeldLease, reason: string): void {
    // A renewal answered late may concern a lease since released, or held again with a new token.
    if (this.#held.get(lease.streamId) !== lease) return
    this.#forget(lease.streamId)
    this.#log.warn({ streamId: lease.streamId, reason }, 'lost an upstream lease; this replica stops reading the stream')
    lease.onLost()
  }

  #forget (streamId: string): HeldLease | undefined {
    const lease = this.#held.get(streamId)
    if (lease === undefined) return undefined
    this.#held.delete(streamId)
    this.#onCountChange(this.#held.size)
    return lease
  }
}
