import type { ProxiedStream } from './proxied-stream.js'
import type { LegacyEndpoint } from './legacy-endpoint.js'
import { mintSessionId } from './session-id.js'
import type { ServerCapabilities } from '../wire/mcp-initialize.js'

/** What the proxy knows of one client-facing session. */
export interface ProxySession {
  /** The id the client sees. The upstream's own id never leaves the proxy. */
  readonly id: string
  /** The route path that minted it: a session is valid on that route only. */
  readonly routePath: string
  /**
   * sse and legacy-sse sessions are their stream: they end when it is forgotten.
   * streamable-http sessions outlive their streams, until DELETE or idleness.
   */
  readonly endsWithItsStreams: boolean
  /** streamable-http: the upstream's `Mcp-Session-Id`. */
  upstreamSessionId?: string
  /** legacy-sse, on the replica that reads its stream: where the upstream's `endpoint` event said to POST messages. */
  legacyEndpoint?: LegacyEndpoint
  /**
   * legacy-sse: that endpoint once its upstream session is ready for messages, as the
   * shared record tells the replicas that do not read the stream.
   */
  upstreamEndpoint?: string
  /** The client's initialize request, to open the session again upstream. */
  initializeRequest?: Buffer
  /** The client's notifications/initialized, to send again with it. */
  initializedNotification?: Buffer
  /**
   * The client sent DELETE: the upstream session is never opened again for it, even
   * when a stream of it finds it gone before the DELETE is answered.
   */
  endRequested?: boolean
  /** What the upstream's initialize result announced: which list changes it notifies of. */
  serverCapabilities?: ServerCapabilities
  /** The resource URIs the client subscribed to, to subscribe again. */
  readonly subscriptions: Set<string>
  /** streamable-http: the standalone stream a GET opens (one per session, as the SDK allows). */
  standaloneStream?: SessionStream
  /** The streams this session holds, live or kept for resumption. */
  readonly streams: Map<string, SessionStream>
  lastActiveAt: number
}

/** A stream of a session, which knows the session it belongs to. */
export type SessionStream = ProxiedStream<ProxySession>

export interface SessionRegistryOptions {
  maxSessions: number
  maxStreamsPerSession: number
  idleTimeoutMs: number
  onCountChange: (count: number) => void
}

export type NewSession = Pick<ProxySession, 'routePath' | 'endsWithItsStreams' | 'upstreamSessionId'>

/**
 * A place held for a session, or for a stream of a session, across the upstream
 * round trip that may lead to it: requests that arrive together cannot all pass
 * a check made before the wait and then all be admitted after it.
 */
export interface Reservation {
  /** Gives the place back; a no-op once it was given back or used. */
  release: () => void
}

function reservation (onRelease: () => void): Reservation {
  let held = true
  return {
    release: () => {
      if (!held) return
      held = false
      onRelease()
    }
  }
}

/** The proxy's sessions and their streams, bounded in number and forgotten when idle. */
export class SessionRegistry {
  readonly #sessions = new Map<string, ProxySession>()
  readonly #streams = new Map<string, SessionStream>()
  readonly #options: SessionRegistryOptions
  readonly #sweepTimer: NodeJS.Timeout
  #reservedSessions = 0
  readonly #reservedStreams = new WeakMap<ProxySession, number>()

  constructor (options: SessionRegistryOptions) {
    this.#options = options
    const sweepEveryMs = Math.min(60_000, Math.max(1000, options.idleTimeoutMs / 4))
    this.#sweepTimer = setInterval(() => this.sweepIdle(Date.now()), sweepEveryMs).unref()
  }

  /** Whether one more session fits now, counting the places held for sessions on their way. */
  hasCapacity (): boolean {
    return this.#sessions.size + this.#reservedSessions < this.#options.maxSessions
  }

  /** Holds a place for a session before the upstream round trip that may open it; undefined when none is left. */
  reserveSession (): Reservation | undefined {
    if (!this.hasCapacity()) return undefined
    this.#reservedSessions++
    return reservation(() => { this.#reservedSessions-- })
  }

  /**
   * A new session, in the place `held` for it, or in one callers found free with
   * hasCapacity() in the same turn.
   */
  create (fields: NewSession, held?: Reservation): ProxySession {
    held?.release()
    const session = this.restore({ ...fields, id: mintSessionId() })
    if (fields.upstreamSessionId !== undefined) session.upstreamSessionId = fields.upstreamSessionId
    return session
  }

  /**
   * A session this replica did not open, under the id another replica minted
   * (Redis store). Past maxSessions it is still restored: its client holds it already.
   */
  restore (fields: Pick<ProxySession, 'id' | 'routePath' | 'endsWithItsStreams'>): ProxySession {
    const session: ProxySession = { ...fields, streams: new Map(), subscriptions: new Set(), lastActiveAt: Date.now() }
    this.#sessions.set(session.id, session)
    this.#options.onCountChange(this.#sessions.size)
    return session
  }

  /** The session with this id on this route, marked active; undefined when unknown there. */
  find (id: string, routePath: string): ProxySession | undefined {
    const session = this.#sessions.get(id)
    if (session === undefined || session.routePath !== routePath) return undefined
    session.lastActiveAt = Date.now()
    return session
  }

  /** A stream by its id. Callers check that it belongs to the session that asks. */
  findStream (streamId: string): SessionStream | undefined {
    return this.#streams.get(streamId)
  }

  /**
   * Holds a place for one more stream of the session, after forgetting its oldest
   * finished one if need be; undefined when every place is taken by a live stream
   * or held for one on its way.
   */
  reserveStream (session: ProxySession): Reservation | undefined {
    const reserved = this.#reservedStreams.get(session) ?? 0
    while (session.streams.size + reserved >= this.#options.maxStreamsPerSession) {
      const kept = [...session.streams.values()].find((stream) => !stream.isLive)
      if (kept === undefined) return undefined
      kept.forget()
    }
    this.#reservedStreams.set(session, reserved + 1)
    return reservation(() => { this.#reservedStreams.set(session, (this.#reservedStreams.get(session) ?? 1) - 1) })
  }

  /** Adds a stream in the place `held` for it (a session's first stream needs none). */
  addStream (stream: SessionStream, held?: Reservation): void {
    held?.release()
    stream.session.streams.set(stream.id, stream)
    this.#streams.set(stream.id, stream)
  }

  /** Called once a stream is forgotten; a session that is its stream goes with it. */
  removeStream (stream: SessionStream): void {
    const { session } = stream
    session.streams.delete(stream.id)
    this.#streams.delete(stream.id)
    if (session.standaloneStream === stream) delete session.standaloneStream
    session.lastActiveAt = Date.now()
    if (session.endsWithItsStreams && session.streams.size === 0) this.delete(session.id)
  }

  /** Ends a session and every stream it holds, history included. */
  delete (id: string): void {
    const session = this.#sessions.get(id)
    if (session === undefined) return
    this.#sessions.delete(id)
    for (const stream of [...session.streams.values()]) stream.forget()
    this.#options.onCountChange(this.#sessions.size)
  }

  sweepIdle (now: number): void {
    const cutoff = now - this.#options.idleTimeoutMs
    for (const session of this.#sessions.values()) {
      if (session.lastActiveAt <= cutoff && !hasLiveStream(session)) this.delete(session.id)
    }
  }

  /**
   * Ends every stream with a `retry:` hint, waits for the clients to take in what
   * they were sent, at most `drainTimeoutMs`, then forgets every session.
   */
  async shutdown (retryHintMs: number, drainTimeoutMs: number): Promise<void> {
    const ended = Promise.all([...this.#streams.values()].map(async (stream) => await stream.endForShutdown(retryHintMs)))
    let timer: NodeJS.Timeout | undefined
    await Promise.race([ended, new Promise((resolve) => { timer = setTimeout(resolve, drainTimeoutMs) })])
    clearTimeout(timer)
    this.close()
  }

  close (): void {
    clearInterval(this.#sweepTimer)
    for (const id of [...this.#sessions.keys()]) this.delete(id)
  }
}

function hasLiveStream (session: ProxySession): boolean {
  for (const stream of session.streams.values()) {
    if (stream.isLive) return true
  }
  return false
}
