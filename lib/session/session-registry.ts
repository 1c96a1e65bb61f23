import { mintSessionId } from './session-id.js'

/** What the proxy knows of one client-facing session. */
export interface ProxySession {
  /** The id the client sees. The upstream's own id never leaves the proxy. */
  readonly id: string
  /** The route path that minted it: a session is valid on that route only. */
  readonly routePath: string
  /** streamable-http: the upstream's `Mcp-Session-Id`. */
  upstreamSessionId?: string
  /** legacy-sse: where the upstream's `endpoint` event said to POST messages. */
  upstreamMessagesUrl?: string
  /** Client streams open on this session; an open stream keeps it alive. */
  openStreams: number
  lastActiveAt: number
}

export interface SessionRegistryOptions {
  maxSessions: number
  idleTimeoutMs: number
  onCountChange: (count: number) => void
}

export type NewSession = Pick<ProxySession, 'routePath' | 'upstreamSessionId' | 'upstreamMessagesUrl'>

/** The proxy's sessions, bounded in number and forgotten when idle. */
export class SessionRegistry {
  readonly #sessions = new Map<string, ProxySession>()
  readonly #options: SessionRegistryOptions
  readonly #sweepTimer: NodeJS.Timeout

  constructor (options: SessionRegistryOptions) {
    this.#options = options
    const sweepEveryMs = Math.min(60_000, Math.max(1000, options.idleTimeoutMs / 4))
    this.#sweepTimer = setInterval(() => this.sweepIdle(Date.now()), sweepEveryMs).unref()
  }

  hasCapacity (): boolean {
    return this.#sessions.size < this.#options.maxSessions
  }

  /** Callers check hasCapacity() before the upstream round trip that leads here. */
  create (fields: NewSession): ProxySession {
    const session: ProxySession = { ...fields, id: mintSessionId(), openStreams: 0, lastActiveAt: Date.now() }
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

  delete (id: string): void {
    if (this.#sessions.delete(id)) this.#options.onCountChange(this.#sessions.size)
  }

  sweepIdle (now: number): void {
    const cutoff = now - this.#options.idleTimeoutMs
    for (const session of this.#sessions.values()) {
      if (session.openStreams === 0 && session.lastActiveAt <= cutoff) this.delete(session.id)
    }
  }

  close (): void {
    clearInterval(this.#sweepTimer)
    this.#sessions.clear()
    this.#options.onCountChange(0)
  }
}
