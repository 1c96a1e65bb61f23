import type { Readable } from 'node:stream'
import type { Counter } from 'prom-client'
import type { HistoryRead } from '../history/history-store.js'
import { reportMalformedLine, reportUpstreamEnd } from '../upstream/upstream-events-report.js'
import { UpstreamStream, type UpstreamEndReason } from '../upstream/upstream-stream.js'
import { serializeComment, serializeRetry } from '../wire/sse-serializer.js'
import { AppendQueue } from './append-queue.js'
import { DetachTimer } from './detach-timer.js'
import { mintStreamId } from './event-id.js'
import type { StreamEnvironment, StreamOrigin, StreamSession } from './stream-environment.js'
import { StreamLifecycle } from './stream-lifecycle.js'
import { StreamReconnect } from './stream-reconnect.js'
import { StreamRecorder } from './stream-recorder.js'
import { storeWriter } from './store-writer.js'
import { StreamSubscriber, type StreamItem } from './stream-subscriber.js'
import { UpstreamHolds } from './upstream-holds.js'

/**
 * One upstream SSE stream as the proxy relays it: every event gets a proxy id,
 * is stored in its session's history, then goes to the client attached at the
 * moment, if any. The client may leave and come back; the upstream keeps running,
 * and recording, for the grace period.
 */
export class ProxiedStream<Session extends StreamSession = StreamSession> {
  readonly id: string
  readonly session: Session
  readonly #env: StreamEnvironment
  readonly #lifecycle = new StreamLifecycle()
  readonly #recorder: StreamRecorder
  readonly #queue: AppendQueue
  readonly #holds = new UpstreamHolds(() => this.#upstream)
  readonly #detachTimer: DetachTimer
  readonly #reconnect: StreamReconnect | undefined
  readonly #forwardedCounter: Counter.Internal
  readonly #releaseClientHold = (): void => this.#holds.release('client')
  #upstream: UpstreamStream | undefined
  #subscriber: StreamSubscriber | undefined
  /** The upstream's SSE `retry:` hint, in milliseconds. */
  #retryHintMs: number | undefined
  #connectedAt = 0

  constructor (session: Session, env: StreamEnvironment, origin?: StreamOrigin) {
    this.session = session
    this.#env = env
    this.id = origin?.id ?? mintStreamId()
    this.#recorder = new StreamRecorder(this.id, env, origin)
    this.#detachTimer = new DetachTimer({
      id: this.id,
      hasClient: () => this.hasClient,
      gone: () => this.#lifecycle.gone,
      stopUpstream: () => this.#stopUpstream(false),
      forget: () => this.forget()
    }, env)
    this.#queue = new AppendQueue({
      append: storeWriter(env, session.id, this.id, () => this.release(RELEASE_RETRY_HINT_MS)),
      deliver: (batch, events) => this.#deliver(batch, events),
      hold: () => this.#holds.hold('store'),
      release: () => this.#holds.release('store')
    }, env.maxAppendChars, env.ownership?.ready)
    this.#forwardedCounter = env.metrics.eventsForwarded.labels(env.labels)
    this.#reconnect = env.reconnect === undefined
      ? undefined
      : new StreamReconnect(env.reconnect, {
        session,
        lifecycle: this.#lifecycle,
        recorder: this.#recorder,
        queue: this.#queue,
        readAfter: async (seq) => await this.readAfter(seq),
        start: (body) => this.start(body),
        finishUpstream: () => this.#finishUpstream()
      }, env)
  }

  /** The store epoch its event ids carry. */
  get epoch (): string {
    return this.#env.epoch
  }

  get finished (): boolean {
    return this.#lifecycle.upstreamOver
  }

  get hasClient (): boolean {
    return this.#subscriber !== undefined
  }

  /** Running upstream, or a client attached; a stream that is neither is only kept for resumption. */
  get isLive (): boolean {
    return !this.#lifecycle.upstreamOver || this.#subscriber !== undefined
  }

  /** Reads the upstream response from here on. */
  start (body: Readable): void {
    this.#connectedAt = performance.now()
    this.#upstream = new UpstreamStream(body, {
      onEvent: (event) => this.#recorder.record(event),
      onEventLines: this.#recorder.takesLines ? (lines, id) => this.#recorder.recordLines(lines, id) : undefined,
      onComment: (comment) => this.#recorder.pass(serializeComment(comment)),
      onRetry: (milliseconds) => {
        this.#retryHintMs = milliseconds
        this.#recorder.pass(serializeRetry(milliseconds))
      },
      onMalformedLine: (reason) => reportMalformedLine(this.#env, reason),
      onChunkParsed: () => this.#commit(),
      onEnd: (reason, error) => this.#upstreamEnded(reason, error)
    }, { maxEventBytes: this.#env.maxEventBytes, idleTimeoutMs: this.#env.idleTimeoutMs })
  }

  /**
   * A client joins: live from now, or, resuming, from after `afterSeq`. A newer
   * client takes the stream over from an older one, whose connection is cut.
   */
  subscribe (afterSeq?: number): StreamSubscriber {
    this.#subscriber?.close()
    this.#detachTimer.clear()
    const seq = this.#recorder.seq
    const subscriber = new StreamSubscriber(this, { lastSentSeq: afterSeq ?? seq, joinedAtSeq: seq }, { maxBufferedChars: this.#env.maxBufferedChars, stallMs: this.#env.stallMs })
    this.#subscriber = subscriber
    if (this.#lifecycle.upstreamOver) this.#queue.inOrder(() => subscriber.finish())
    return subscriber
  }

  unsubscribe (subscriber: StreamSubscriber): void {
    if (this.#subscriber !== subscriber || this.#lifecycle.gone) return
    this.#subscriber = undefined
    if (this.#lifecycle.upstreamOver) this.#detachTimer.retain()
    else this.#detachTimer.awaitClient()
  }

  async readAfter (seq: number): Promise<HistoryRead> {
    return await this.#env.store.readAfter(this.session.id, this.id, seq)
  }

  /**
   * The server is closing: the client is told to come back after `retryHintMs`,
   * its stream ends cleanly once it has what was recorded, and the upstream is
   * closed. Resolves once the client's response is gone.
   */
  async endForShutdown (retryHintMs: number): Promise<void> {
    const subscriber = this.#subscriber
    subscriber?.hintRetry(retryHintMs)
    // With a shared store the stream is not over: another replica goes on with it.
    const ownership = this.#env.ownership
    const handOver = ownership !== undefined && !this.#lifecycle.upstreamOver
    if (handOver) ownership.released()
    this.#stopUpstream(handOver)
    await subscriber?.gone()
  }

  /** Opens the upstream of a stream taken over from another replica, resuming after the upstream id that replica recorded last. */
  resumeUpstream (): void {
    if (this.#reconnect === undefined) {
      this.#finishUpstream()
      return
    }
    this.#connectedAt = performance.now()
    this.#upstreamEnded('ended', undefined, true)
    if (this.#subscriber === undefined) this.#detachTimer.awaitClient()
  }

  /**
   * Another replica records this stream now, or the store lost it: stop reading
   * the upstream, keep the history, and send the client, with a `retry:` hint,
   * to resume wherever the stream is served now.
   */
  release (retryHintMs: number): void {
    // Released first: not the stream's end, which abort() would otherwise report.
    if (!this.#lifecycle.release()) return
    this.#detachTimer.clear()
    this.#reconnect?.stop()
    this.#upstream?.abort()
    const subscriber = this.#subscriber
    this.#subscriber = undefined
    subscriber?.hintRetry(retryHintMs)
    subscriber?.finish()
    this.#env.ownership?.released()
    this.#env.onForget()
  }

  /** Ends the stream for good: upstream, client and history. */
  forget (): void {
    if (this.#lifecycle.gone) return
    const subscriber = this.#subscriber
    // Forgotten once the upstream side has finished (which tells the client and the other replicas), not before.
    this.#stopUpstream(false)
    this.#lifecycle.forget()
    this.#detachTimer.clear()
    subscriber?.close()
    this.#subscriber = undefined
    this.#env.store.dropStream(this.session.id, this.id).catch((error: unknown) => {
      this.#env.log.error({ err: error, streamId: this.id }, 'could not drop a stream\'s history')
    })
    this.#env.onForget()
  }

  /** Stores what one upstream chunk produced, then sends it (append-queue.ts). */
  #commit (): void {
    if (!this.#recorder.flushTo(this.#queue)) return
    // "After the JSON-RPC response has been sent, the server SHOULD close the SSE stream"
    // (MCP Streamable HTTP): an upstream that keeps a resumed stream open does not hold the client's.
    if (this.#recorder.answered && !this.#lifecycle.upstreamOver) this.#stopUpstream(false)
  }

  #deliver (batch: readonly StreamItem[], events: number): void {
    // What the store refused was not recorded: sending it would be an event no one can resume after.
    if (this.#lifecycle.state === 'released') return
    const subscriber = this.#subscriber
    subscriber?.deliver(batch)
    // A client catching up holds the upstream back: at full speed it would outrun the client past the end of the history.
    if (subscriber?.catchingUp === true) {
      this.#holds.hold('client')
      subscriber.afterCatchUp(this.#releaseClientHold)
    }
    if (events === 0) return
    this.#forwardedCounter.inc(events)
    this.#reconnect?.delivered()
  }

  /** `takeover`: not a drop, but a stream taken over from another replica, whose upstream is opened again. */
  #upstreamEnded (reason: UpstreamEndReason, error?: Error, takeover = false): void {
    this.#env.metrics.upstreamConnectionDuration.observe(this.#env.labels, (performance.now() - this.#connectedAt) / 1000)
    reportUpstreamEnd(this.#env, reason, error)
    if (this.#reconnect?.dropped(reason, this.#retryHintMs, takeover) !== true) this.#finishUpstream()
  }

  /** Ends the upstream side: no more events will come. */
  #finishUpstream (): void {
    const end = this.#lifecycle.finish()
    if (end === undefined) return
    const ownership = this.#env.ownership
    if (ownership !== undefined && end === 'ended') this.#queue.inOrder(() => ownership.finished())
    this.#queue.inOrder(() => this.#subscriber?.finish())
    if (this.#subscriber === undefined) this.#detachTimer.retain()
  }

  /** No more reconnects; the upstream connection, if any, is closed. `handOver`: another replica goes on with the stream. */
  #stopUpstream (handOver: boolean): void {
    this.#lifecycle.stop(handOver)
    this.#reconnect?.stop()
    this.#upstream?.abort()
    this.#finishUpstream()
  }
}

// How soon a client sent away by release() comes back: at once, to the replica that records the stream now.
const RELEASE_RETRY_HINT_MS = 100
