import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { ResolvedOptions } from '../config/schema.js'
import type { StoreMetrics } from '../metrics/store-metrics.js'
import { countInto } from '../metrics/shared-count.js'
import type { StreamOrigin, StreamOwnership } from '../session/stream-environment.js'
import type { ProxySession, SessionRegistry, SessionStream } from '../session/session-registry.js'
import type { HeaderMap } from '../upstream/headers.js'
import type { ClusterStore, ClusterStoreFactory, FencedHistoryStore } from './cluster-store.js'
import { LeaseKeeper } from './lease-keeper.js'
import type { LiveFeed } from './live-feed.js'
import { withinDeadline } from './request-deadline.js'
import { applyRecord } from './session-records.js'
import type { StreamPosition, StreamRegistry } from './stream-registry.js'

/** What another replica needs to open a stream's upstream again (kept in the shared store with the stream). */
export interface StreamDescriptor {
  readonly routePath: string
  /** sse and legacy-sse streams are their own session; streamable-http ones belong to an MCP session. */
  readonly endsWithItsStreams: boolean
  readonly upstreamUrl: string
  /** The client's end-to-end headers, for the reconnect (docs/scaling.md: they are stored in Redis). */
  readonly headers: HeaderMap
  /** An MCP POST stream: the JSON-RPC request ids it answers. */
  readonly answers?: readonly string[] | undefined
}

export interface LocatedStream {
  readonly sessionId: string
  readonly position: StreamPosition
  readonly descriptor: StreamDescriptor
}

/** Builds, for a route, the stream of a session taken over from another replica. */
export type StreamReviver = (session: ProxySession, descriptor: StreamDescriptor, origin: StreamOrigin, ownership: StreamOwnership) => SessionStream

/** How soon a client sent away from a stream this replica lost comes back. */
const LOST_STREAM_RETRY_HINT_MS = 100
const SWEEP_BATCH = 100

/**
 * Several replicas, one shared store (Redis): sessions, history and the ownership of
 * upstream streams are shared. This replica records the streams it leases, follows
 * the others' from the store for the clients that resume here, and takes over the
 * streams whose owner stopped renewing its lease.
 */
export class ReplicaCoordinator {
  readonly store: FencedHistoryStore
  readonly channels: LiveFeed
  readonly #shared: ClusterStore
  readonly #registry: StreamRegistry
  readonly #leases: LeaseKeeper
  readonly #options: ResolvedOptions
  readonly #metrics: StoreMetrics
  readonly #log: FastifyBaseLogger
  readonly #sessions: SessionRegistry
  readonly #revivers = new Map<string, StreamReviver>()
  #epoch = ''
  #sweepTimer: NodeJS.Timeout | undefined
  #sweeping = false

  constructor (options: ResolvedOptions, metrics: StoreMetrics, sessions: SessionRegistry, log: FastifyBaseLogger, createStore: ClusterStoreFactory) {
    this.#options = options
    this.#metrics = metrics
    this.#sessions = sessions
    this.#log = log
    this.#shared = createStore(() => this.#epoch)
    this.#registry = this.#shared.registry
    this.store = this.#shared.history
    this.channels = this.#shared.live
    this.#leases = new LeaseKeeper(this.#registry, {
      owner: randomBytes(9).toString('base64url'),
      ttlMs: options.store.leaseTtlMs,
      log,
      onCountChange: countInto(metrics.upstreamLeasesHeld)
    })
  }

  /** Connects to Redis and starts sweeping for orphaned streams. */
  async start (): Promise<void> {
    try {
      await this.#shared.open()
      this.#epoch = await this.#registry.ensureEpoch()
    } catch (error) {
      // A replica may start while Redis is away: it answers 503 until Redis is back (the sweep reads the epoch then).
      this.#log.error({ err: error }, 'cannot reach Redis; new sessions get 503 until it is back')
    }
    const everyMs = Math.max(50, Math.min(1000, Math.floor(this.#options.store.leaseTtlMs / 4)))
    this.#sweepTimer = setInterval(() => { this.sweep(Date.now()).catch(() => {}) }, everyMs).unref()
  }

  get epoch (): string {
    return this.#epoch
  }

  /** Whether Redis takes commands now; while it does not, no new session is opened. */
  get available (): boolean {
    return this.#epoch !== '' && this.#shared.ready
  }

  /** Routes say how to reopen their streams when this replica takes one over. */
  onTakeover (routePath: string, reviver: StreamReviver): void {
    this.#revivers.set(routePath, reviver)
  }

  /**
   * The ownership of a stream this replica opens: it is registered and leased
   * before its first event is recorded. Call bind() with the stream once built.
   */
  ownNewStream (session: ProxySession, streamId: string, descriptor: StreamDescriptor): { ownership: StreamOwnership, bind: (stream: SessionStream) => void } {
    let stream: SessionStream | undefined
    let token = 0
    const ready = (async () => {
      await this.#registry.register(session.id, streamId, JSON.stringify(descriptor), this.#epoch)
      const claimed = await this.#registry.claim(session.id, streamId, this.#leases.owner, this.#options.store.leaseTtlMs, Date.now())
      if (claimed === undefined) throw new Error('the new stream\'s lease is held already')
      token = claimed
      this.#hold(session.id, streamId, claimed, () => stream)
    })().catch((error: unknown) => {
      this.#log.error({ err: error, streamId }, 'could not register a stream in Redis; it is closed, and the client may retry')
      setImmediate(() => stream?.release(LOST_STREAM_RETRY_HINT_MS))
    })
    const ownership = this.#ownership(session.id, streamId, ready, () => token)
    return { ownership, bind: (built) => { stream = built } }
  }

  /** The session a stream belongs to, in Redis; undefined when Redis knows no such stream. */
  async sessionOf (streamId: string): Promise<string | undefined> {
    return await this.inTime(this.#registry.sessionOf(streamId))
  }

  /** Where a stream of a known session is now; undefined when it is gone. */
  async positionOf (sessionId: string, streamId: string): Promise<LocatedStream | undefined> {
    const position = await this.inTime(this.#registry.position(sessionId, streamId))
    const descriptor = parseDescriptor(position?.descriptor)
    return position === undefined || descriptor === undefined ? undefined : { sessionId, position, descriptor }
  }

  /** Rejects with 503 FST_MCP_SSE_STORE_UNAVAILABLE when Redis takes longer than store.requestTimeoutMs. */
  async inTime<T> (work: Promise<T>): Promise<T> {
    return await withinDeadline(work, this.#options.store.requestTimeoutMs)
  }

  liveChannelOf (sessionId: string, streamId: string): string {
    return this.#shared.liveChannelOf(sessionId, streamId)
  }

  /**
   * The session with this id, from this replica's registry or from Redis (it was
   * opened through another replica), brought up to date with its record.
   */
  async findSession (sessionId: string, routePath: string): Promise<ProxySession | undefined> {
    const record = await this.inTime(this.#shared.sessions.load(sessionId))
    const local = this.#sessions.find(sessionId, routePath)
    if (record === undefined || record.routePath !== routePath) {
      // A session that is its stream lives as long as the stream here; its record only tells the other replicas of it.
      if (local?.endsWithItsStreams === true && local.streams.size > 0) return local
      if (local !== undefined) this.#sessions.delete(local.id)
      return undefined
    }
    const session = local ?? this.#sessions.restore({ id: sessionId, routePath, endsWithItsStreams: record.endsWithItsStreams })
    applyRecord(session, record)
    return session
  }

  /** Records a session's state for the other replicas; a failure is logged. */
  saveSession (session: ProxySession): void {
    this.#shared.sessions.save(session).catch((error: unknown) => {
      this.#log.error({ err: error }, 'could not save a session to Redis')
    })
  }

  /**
   * Tells every replica that the client asked to end this session, before the upstream
   * hears of it; settles within store.requestTimeoutMs, and a failure is logged.
   */
  async markSessionEndRequested (sessionId: string): Promise<void> {
    await this.#settleInTime(this.#shared.sessions.markEndRequested(sessionId), 'could not mark a session as ending in Redis')
  }

  /** Settles once Redis forgot the session, or store.requestTimeoutMs later; a failure is logged. */
  async deleteSession (sessionId: string): Promise<void> {
    await this.#settleInTime(this.#shared.sessions.delete(sessionId), 'could not delete a session from Redis')
  }

  async #settleInTime (work: Promise<void>, failure: string): Promise<void> {
    try {
      await this.inTime(work)
    } catch (error) {
      this.#log.error({ err: error }, failure)
    }
  }

  /** Claims the streams whose lease ran out, and takes them over. */
  async sweep (now: number): Promise<void> {
    if (this.#sweeping || !this.#shared.ready) return
    this.#sweeping = true
    try {
      await this.#checkEpoch()
      const orphans = await this.#registry.expiredLeases(now, SWEEP_BATCH)
      for (const { sessionId, streamId } of orphans) {
        const token = await this.#registry.claim(sessionId, streamId, this.#leases.owner, this.#options.store.leaseTtlMs, Date.now())
        if (token !== undefined) await this.#takeOver(sessionId, streamId, token)
      }
    } catch (error) {
      this.#log.warn({ err: error }, 'could not sweep for orphaned upstream streams')
    } finally {
      this.#sweeping = false
    }
  }

  async close (): Promise<void> {
    clearInterval(this.#sweepTimer)
    this.#leases.close()
    await this.#shared.close()
  }

  /** A new epoch means Redis lost its data: what this replica records is refused from now on. */
  async #checkEpoch (): Promise<void> {
    const epoch = await this.#registry.ensureEpoch()
    if (epoch === this.#epoch) return
    if (this.#epoch === '') {
      this.#epoch = epoch
      return
    }
    this.#metrics.storeResets.inc()
    this.#log.error({ previous: this.#epoch, epoch }, 'Redis lost its data (new store epoch); resumes from before it are answered unrecoverable')
    this.#epoch = epoch
  }

  async #takeOver (sessionId: string, streamId: string, token: number): Promise<void> {
    const position = await this.#registry.position(sessionId, streamId)
    const descriptor = parseDescriptor(position?.descriptor)
    const reviver = descriptor === undefined ? undefined : this.#revivers.get(descriptor.routePath)
    const session = descriptor === undefined ? undefined : await this.#sessionToRevive(sessionId, descriptor)
    if (position === undefined || position.finished || position.epoch !== this.#epoch || descriptor === undefined || reviver === undefined || session === undefined) {
      await this.#registry.finish(sessionId, streamId, token)
      return
    }
    this.#metrics.upstreamTakeovers.inc()
    this.#log.info({ upstream: descriptor.upstreamUrl, streamId, lastSeq: position.lastSeq, cursor: position.cursor }, 'taking over an upstream stream whose owner stopped renewing its lease')
    const ownership = this.#ownership(sessionId, streamId, Promise.resolve(), () => token)
    const stream = reviver(session, descriptor, { id: streamId, lastSeq: position.lastSeq, lastUpstreamEventId: position.cursor }, ownership)
    this.#hold(sessionId, streamId, token, () => stream)
    this.#sessions.addStream(stream)
    stream.resumeUpstream()
  }

  /**
   * The local session a taken-over stream belongs to: its recorded MCP session, or one
   * of its own, with what its record holds (a legacy-sse session's handshake and endpoint).
   */
  async #sessionToRevive (sessionId: string, descriptor: StreamDescriptor): Promise<ProxySession | undefined> {
    const { routePath } = descriptor
    if (!descriptor.endsWithItsStreams) return await this.findSession(sessionId, routePath)
    const record = await this.#shared.sessions.load(sessionId)
    const session = this.#sessions.find(sessionId, routePath) ?? this.#sessions.restore({ id: sessionId, routePath, endsWithItsStreams: true })
    if (record?.routePath === routePath) applyRecord(session, record)
    return session
  }

  /** A client that followed a stream from here left: the owner keeps the upstream for a grace period more. */
  noteFollowerLeft (sessionId: string, streamId: string): void {
    this.#shared.followers.noteLeft(sessionId, streamId, Math.max(1, this.#options.sessions.detachGraceSeconds * 1000)).catch((error: unknown) => {
      this.#log.warn({ err: error, streamId }, 'could not note that a follower left')
    })
  }

  #hold (sessionId: string, streamId: string, token: number, streamOf: () => SessionStream | undefined): void {
    this.store.holdFence(streamId, token)
    this.#leases.hold({ sessionId, streamId, token, onLost: () => streamOf()?.release(LOST_STREAM_RETRY_HINT_MS) })
  }

  #ownership (sessionId: string, streamId: string, ready: Promise<void>, tokenOf: () => number): StreamOwnership {
    return {
      ready,
      finished: async () => {
        this.#leases.forget(streamId)
        this.store.releaseFence(streamId)
        await this.#registry.finish(sessionId, streamId, tokenOf()).catch((error: unknown) => {
          this.#log.warn({ err: error, streamId }, 'could not mark a stream finished in Redis')
        })
      },
      followedElsewhere: async () => await this.#shared.followers.followedElsewhere(sessionId, streamId),
      released: () => {
        this.store.releaseFence(streamId)
        this.#leases.release(streamId).catch((error: unknown) => {
          this.#log.warn({ err: error, streamId }, 'could not release an upstream lease')
        })
      }
    }
  }
}

function parseDescriptor (json: string | undefined): StreamDescriptor | undefined {
  if (json === undefined) return undefined
  try {
    const parsed = JSON.parse(json) as StreamDescriptor
    return typeof parsed.routePath === 'string' && typeof parsed.upstreamUrl === 'string' && typeof parsed.endsWithItsStreams === 'boolean' ? parsed : undefined
  } catch {
    return undefined
  }
}
