import type { Readable } from 'node:stream'
import type { ReconnectPolicy } from '../config/schema.js'
import { reconnectDelayMs } from './backoff.js'
import type { ConnectResult } from './upstream-connector.js'
import type { UpstreamReportContext } from './upstream-events-report.js'

export type Connected = Extract<ConnectResult, { kind: 'connected' }>

/** What the log says of an attempt, a success and giving up: the same counts and fields, in the caller's words. */
export interface ReconnectReport {
  readonly context: Pick<UpstreamReportContext, 'log' | 'metrics' | 'labels' | 'upstreamUrl'>
  readonly attempting: string
  readonly succeeded: string
  readonly gaveUp: string
}

export interface ReconnectHooks {
  /** Opens the upstream again. */
  readonly connect: () => Promise<ConnectResult>
  /** Whether a reconnection is still wanted: asked after each wait and each connect. */
  readonly wanted: () => boolean
  /** Asked before each attempt and after each wait: true when the stream ended otherwise meanwhile, which it says itself. */
  readonly endedMeanwhile?: (() => boolean) | undefined
  readonly onConnected: (result: Connected) => void | Promise<void>
  /** The policy's attempts are spent, or the upstream answered with something no retry mends (counted and logged already). */
  readonly onGiveUp: () => void
}

/**
 * Reconnects to an upstream after a drop: waits with backoff (or the upstream's
 * own Retry-After / `retry:` hint), tries, and gives up when the policy says so.
 * It knows nothing of what the connection carries. Attempts count from the first
 * drop until succeeded(), so that a connection that drops again before it proved
 * itself does not start the count over.
 */
export class ReconnectLoop {
  readonly #policy: ReconnectPolicy
  readonly #hooks: ReconnectHooks
  readonly #report: ReconnectReport
  #attempt = 0
  #timer: NodeJS.Timeout | undefined
  #wake: (() => void) | undefined

  constructor (policy: ReconnectPolicy, report: ReconnectReport, hooks: ReconnectHooks) {
    this.#policy = policy
    this.#report = report
    this.#hooks = hooks
  }

  /** The outage is over: it is counted and logged, and the next drop starts a new count. */
  succeeded (): void {
    const { context: { log, metrics, labels, upstreamUrl }, succeeded } = this.#report
    metrics.reconnectionSuccesses.inc(labels)
    log.info({ upstream: upstreamUrl, attempt: this.#attempt }, succeeded)
    this.#attempt = 0
  }

  /** Ends a wait before the next attempt at once; wanted() then says whether to go on. */
  stop (): void {
    clearTimeout(this.#timer)
    this.#wake?.()
  }

  /**
   * Runs until connected, given up, or no longer wanted. `cleanClose`: the upstream
   * closed the stream itself, so the first attempt need not wait (backoff.ts).
   */
  async run (reason: string, cleanClose: boolean, hintMs: number | undefined): Promise<void> {
    const { connect, wanted, endedMeanwhile, onConnected } = this.#hooks
    const { context: { log, metrics, labels, upstreamUrl }, attempting } = this.#report
    const { maxRetries } = this.#policy
    let last = reason
    let delayHintMs = hintMs
    for (;;) {
      if (endedMeanwhile?.() === true) return
      const attempt = ++this.#attempt
      if (maxRetries > 0 && attempt > maxRetries) {
        this.#giveUp(`${maxRetries} attempts failed; last: ${last}`)
        return
      }
      const delayMs = reconnectDelayMs(this.#policy, attempt, cleanClose, delayHintMs)
      log.info({ upstream: upstreamUrl, attempt, delayMs, reason: last }, attempting)
      metrics.reconnectionAttempts.inc(labels)
      await this.#wait(delayMs)
      if (!wanted() || endedMeanwhile?.() === true) return
      const result = await connect()
      /* c8 ignore next 4 -- the stream stopped between the answer's head and this line: no test can
         place a stop there reliably; the body must still be let go of (discard). */
      if (!wanted()) {
        if (result.kind === 'connected') discard(result.body)
        return
      }
      if (result.kind === 'connected') {
        await onConnected(result)
        return
      }
      if (result.kind === 'give-up') {
        this.#giveUp(result.reason)
        return
      }
      last = result.reason
      delayHintMs = result.retryAfterMs ?? hintMs
    }
  }

  #giveUp (reason: string): void {
    const { context: { log, metrics, labels, upstreamUrl }, gaveUp } = this.#report
    metrics.reconnectionFailures.inc(labels)
    log.warn({ upstream: upstreamUrl, reason }, gaveUp)
    this.#hooks.onGiveUp()
  }

  async #wait (delayMs: number): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#wake = resolve
      this.#timer = setTimeout(resolve, delayMs)
    })
  }
}

/** A body that arrived after the stream stopped: an abort may destroy it with an error, which must find a listener (reply-from#328). */
export function discard (body: Readable): void {
  body.on('error', /* c8 ignore next -- only an aborted request's body errors, and only by chance of timing */ () => {}).destroy()
}
