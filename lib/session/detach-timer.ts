import type { FastifyBaseLogger } from 'fastify'
import type { StreamOwnership } from './stream-environment.js'

export interface DetachedStream {
  readonly id: string
  readonly hasClient: () => boolean
  /** Forgotten or released: nothing is to be timed any more. */
  readonly gone: () => boolean
  /** The grace is over: the upstream stops. */
  readonly stopUpstream: () => void
  /** The retention is over: the stream and its history go. */
  readonly forget: () => void
}

export interface DetachLimits {
  /** sessions.detachGraceSeconds */
  readonly detachGraceMs: number
  /** history.ttlSeconds */
  readonly retentionMs: number
  readonly ownership?: StreamOwnership | undefined
  readonly log: FastifyBaseLogger
  readonly upstreamUrl: string
}

/**
 * The one timer a stream runs while no client follows it: the grace before its
 * upstream stops, or the retention before a finished stream is forgotten. A new
 * one replaces the last, and a client that comes back clears it.
 */
export class DetachTimer {
  readonly #stream: DetachedStream
  readonly #limits: DetachLimits
  #timer: NodeJS.Timeout | undefined

  constructor (stream: DetachedStream, limits: DetachLimits) {
    this.#stream = stream
    this.#limits = limits
  }

  /**
   * No client: the upstream runs on for the grace period, then stops, unless clients
   * on other replicas still follow the stream (Redis store).
   */
  awaitClient (): void {
    this.#schedule(this.#limits.detachGraceMs, () => {
      const { ownership, log, upstreamUrl } = this.#limits
      if (ownership === undefined) {
        this.#stream.stopUpstream()
        return
      }
      ownership.followedElsewhere().then((followed) => {
        if (this.#stream.hasClient() || this.#stream.gone()) return
        if (followed) {
          this.awaitClient()
          return
        }
        log.info({ upstream: upstreamUrl, streamId: this.#stream.id }, 'no client followed the stream on any replica for sessions.detachGraceSeconds; it ends')
        this.#stream.stopUpstream()
      }, () => this.awaitClient())
    })
  }

  /** A finished stream with no client stays resumable for the retention period. */
  retain (): void {
    this.#schedule(this.#limits.retentionMs, () => this.#stream.forget())
  }

  clear (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #schedule (delayMs: number, action: () => void): void {
    this.clear()
    this.#timer = setTimeout(action, delayMs)
    this.#timer.unref()
  }
}
