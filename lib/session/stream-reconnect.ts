import type { Readable } from 'node:stream'
import type { HistoryRead } from '../history/history-store.js'
import { discard, ReconnectLoop, type Connected } from '../upstream/reconnect-loop.js'
import type { UpstreamEndReason } from '../upstream/upstream-stream.js'
import type { AppendQueue } from './append-queue.js'
import type { GapCause } from './resume-status.js'
import type { StreamEnvironment, StreamSession, UpstreamReconnect } from './stream-environment.js'
import type { StreamLifecycle } from './stream-lifecycle.js'
import type { StreamRecorder } from './stream-recorder.js'

/** What reconnecting needs of its stream. */
export interface ReconnectingStream {
  readonly session: StreamSession
  readonly lifecycle: StreamLifecycle
  readonly recorder: StreamRecorder
  readonly queue: AppendQueue
  readonly readAfter: (seq: number) => Promise<HistoryRead>
  /** Reads a new upstream connection. */
  readonly start: (body: Readable) => void
  /** No more events will come. */
  readonly finishUpstream: () => void
}

/**
 * What a stream does when its upstream drops: whether it reconnects at all, the
 * loop that does, and, once it has, the gap the outage may have left (told in the
 * stream, or dropped as duplicates) before the new connection is read.
 */
export class StreamReconnect {
  readonly #options: UpstreamReconnect
  readonly #stream: ReconnectingStream
  readonly #env: StreamEnvironment
  readonly #loop: ReconnectLoop
  /** What the gap of the current outage is told as. */
  #dropCause: GapCause = 'ended'
  /** When the upstream dropped, until the first event after the reconnect reaches the client. */
  #droppedAt: number | undefined

  constructor (options: UpstreamReconnect, stream: ReconnectingStream, env: StreamEnvironment) {
    this.#options = options
    this.#stream = stream
    this.#env = env
    this.#loop = new ReconnectLoop(options.policy, {
      context: env,
      attempting: 'reconnecting to the upstream',
      succeeded: 'reconnected to the upstream',
      gaveUp: 'gave up reconnecting to the upstream; closing the client stream'
    }, {
      connect: async () => await options.connect(stream.recorder.lastUpstreamEventId),
      wanted: () => stream.lifecycle.state === 'reconnecting',
      endedMeanwhile: () => this.#endedWithItsSession(),
      onConnected: async (result) => await this.#reconnected(result),
      onGiveUp: () => stream.finishUpstream()
    })
  }

  /**
   * The upstream connection ended: true when it is opened again. `takeover`: not a
   * drop, but a stream taken over from another replica.
   */
  dropped (reason: UpstreamEndReason, retryHintMs: number | undefined, takeover: boolean): boolean {
    const { lifecycle, recorder } = this.#stream
    if ((reason !== 'ended' && reason !== 'failed' && reason !== 'stalled') || lifecycle.state !== 'live' || recorder.complete ||
        (this.#options.needsUpstreamIds && recorder.lastUpstreamEventId === undefined)) return false
    lifecycle.dropped()
    this.#droppedAt = performance.now()
    this.#options.onDrop?.()
    this.#dropCause = takeover ? 'takeover' : reason
    this.#loop.run(reason, reason === 'ended', retryHintMs).catch((error: unknown) => {
      this.#env.log.error({ upstream: this.#env.upstreamUrl, err: error }, 'upstream reconnection failed')
      this.#stream.finishUpstream()
    })
    return true
  }

  /** Ends a wait for the next attempt: the stream stopped. */
  stop (): void {
    this.#loop.stop()
  }

  /** Events reached the client: the first ones after a reconnect tell how long the outage was for it. */
  delivered (): void {
    if (this.#droppedAt === undefined) return
    this.#env.metrics.upstreamReconnectLatency.observe(this.#env.labels, (performance.now() - this.#droppedAt) / 1000)
    this.#droppedAt = undefined
  }

  async #reconnected (result: Connected): Promise<void> {
    this.#loop.succeeded()
    const { lifecycle, recorder, queue, readAfter } = this.#stream
    const loading = recorder.reconnected(queue, readAfter)
    if (loading !== undefined) await loading
    if (lifecycle.state !== 'reconnecting') {
      discard(result.body)
      return
    }
    lifecycle.reconnected()
    if (result.freshSession === true) recorder.noteGap('session-reestablished')
    else if (!this.#options.replays) recorder.noteGap(this.#dropCause)
    recorder.flushTo(queue)
    this.#stream.start(result.body)
  }

  /** Its client sent DELETE: the upstream ends the session's streams, and that is their end, not a drop. */
  #endedWithItsSession (): boolean {
    if (this.#stream.session.endRequested !== true) return false
    this.#env.log.info({ upstream: this.#env.upstreamUrl }, 'the upstream ended a stream of a session its client is ending; not reconnecting')
    this.#stream.finishUpstream()
    return true
  }
}
