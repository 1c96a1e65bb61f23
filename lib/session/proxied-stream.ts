import type { Readable } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import type { HistoryRead, HistoryStore, RecordedEvent } from '../history/history-store.js'
import type { ProxyMetrics, RouteLabels } from '../metrics.js'
import { UpstreamStream, type UpstreamEndReason } from '../upstream/upstream-stream.js'
import type { SseEvent } from '../wire/sse-event.js'
import { serializeComment, serializeEvent, serializeRetry } from '../wire/sse-serializer.js'
import { formatEventId, mintStreamId } from './event-id.js'
import type { ProxySession } from './session-registry.js'
import { StreamSubscriber, type StreamItem } from './stream-subscriber.js'

export interface StreamEnvironment {
  readonly store: HistoryStore
  readonly metrics: ProxyMetrics
  readonly labels: RouteLabels
  readonly log: FastifyBaseLogger
  readonly upstreamUrl: string
  readonly maxEventBytes: number
  /** How long the upstream keeps running with no client. */
  readonly detachGraceMs: number
  /** How long a finished stream with no client stays resumable. */
  readonly retentionMs: number
  /** Bytes a client may have pending before it catches up from the history instead. */
  readonly maxBufferedChars: number
  /** How long a client may take in nothing while events wait for it. */
  readonly stallMs: number
  /** Lets the session forget the stream. */
  readonly onForget: (stream: ProxiedStream) => void
  /** Lets a route change an event before it gets its id and is recorded (legacy-sse's `endpoint`). */
  readonly rewriteEvent?: ((event: SseEvent) => SseEvent) | undefined
}

/**
 * One upstream SSE stream as the proxy relays it: every event gets a proxy id,
 * is stored in its session's history, then goes to the client attached at the
 * moment, if any. The client may leave and come back; the upstream keeps running,
 * and recording, for the grace period.
 */
export class ProxiedStream {
  readonly id = mintStreamId()
  readonly session: ProxySession
  readonly #env: StreamEnvironment
  #seq = 0
  #upstream: UpstreamStream | undefined
  #finished = false
  #forgotten = false
  #subscriber: StreamSubscriber | undefined
  #timer: NodeJS.Timeout | undefined
  // Appends run in order, and each batch reaches the client only once it is stored.
  #chain: Promise<void> = Promise.resolve()
  #batch: StreamItem[] = []
  #recorded: RecordedEvent[] = []

  constructor (session: ProxySession, env: StreamEnvironment) {
    this.session = session
    this.#env = env
  }

  get finished (): boolean {
    return this.#finished
  }

  /** Running upstream, or a client attached; a stream that is neither is only kept for resumption. */
  get isLive (): boolean {
    return !this.#finished || this.#subscriber !== undefined
  }

  /** Reads the upstream response from here on. */
  start (body: Readable): void {
    const { metrics, labels, log, upstreamUrl } = this.#env
    this.#upstream = new UpstreamStream(body, {
      onEvent: (event) => this.#record(event),
      onComment: (comment) => { this.#batch.push({ text: serializeComment(comment) }) },
      onRetry: (milliseconds) => { this.#batch.push({ text: serializeRetry(milliseconds) }) },
      onMalformedLine: (reason) => {
        metrics.upstreamMalformed.inc({ ...labels, reason })
        log.debug({ upstream: upstreamUrl, reason }, 'ignored a malformed upstream SSE line')
      },
      onChunkParsed: () => this.#commit(),
      onEnd: (reason, error) => this.#upstreamEnded(reason, error)
    }, this.#env.maxEventBytes)
  }

  /**
   * A client joins: live from now, or, resuming, from after `afterSeq`. A newer
   * client takes the stream over from an older one, whose connection is cut.
   */
  subscribe (afterSeq?: number): StreamSubscriber {
    this.#subscriber?.close()
    this.#clearTimer()
    const subscriber = new StreamSubscriber(
      this,
      { lastSentSeq: afterSeq ?? this.#seq, joinedAtSeq: this.#seq },
      { maxBufferedChars: this.#env.maxBufferedChars, stallMs: this.#env.stallMs }
    )
    this.#subscriber = subscriber
    if (this.#finished) this.#chain = this.#chain.then(() => subscriber.finish())
    return subscriber
  }

  unsubscribe (subscriber: StreamSubscriber): void {
    if (this.#subscriber !== subscriber || this.#forgotten) return
    this.#subscriber = undefined
    if (this.#finished) {
      this.#schedule(this.#env.retentionMs, () => this.forget())
    } else {
      this.#schedule(this.#env.detachGraceMs, () => this.#upstream?.abort())
    }
  }

  async readAfter (seq: number): Promise<HistoryRead> {
    return await this.#env.store.readAfter(this.session.id, this.id, seq)
  }

  /** Ends the stream for good: upstream, client and history. */
  forget (): void {
    if (this.#forgotten) return
    this.#forgotten = true
    this.#clearTimer()
    this.#upstream?.abort()
    this.#subscriber?.close()
    this.#subscriber = undefined
    this.#env.store.dropStream(this.session.id, this.id).catch((error: unknown) => {
      this.#env.log.error({ err: error, streamId: this.id }, 'could not drop a stream\'s history')
    })
    this.#env.onForget(this)
  }

  #record (upstreamEvent: SseEvent): void {
    const event = this.#env.rewriteEvent?.(upstreamEvent) ?? upstreamEvent
    const seq = ++this.#seq
    const text = serializeEvent({ id: formatEventId(this.id, seq), event: event.event, data: event.data })
    this.#batch.push({ seq, text })
    this.#recorded.push({ seq, upstreamId: upstreamEvent.id, text })
  }

  #commit (): void {
    const batch = this.#batch
    const recorded = this.#recorded
    if (batch.length === 0) return
    this.#batch = []
    this.#recorded = []
    const { store, log, metrics, labels } = this.#env
    this.#chain = this.#chain
      .then(async () => { if (recorded.length > 0) await store.append(this.session.id, this.id, recorded) })
      .catch((error: unknown) => { log.error({ err: error, streamId: this.id }, 'could not record events; they are sent, but cannot be replayed') })
      .then(() => {
        this.#subscriber?.deliver(batch)
        metrics.eventsForwarded.inc(labels, recorded.length)
      })
  }

  #upstreamEnded (reason: UpstreamEndReason, error?: Error): void {
    const { metrics, labels, log, upstreamUrl, maxEventBytes } = this.#env
    if (reason === 'oversized-event') {
      metrics.upstreamMalformed.inc({ ...labels, reason })
      log.warn({ upstream: upstreamUrl, maxEventBytes }, 'upstream event exceeds limits.maxEventBytes; closing the stream')
    } else if (reason === 'failed') {
      log.info({ upstream: upstreamUrl, err: error }, 'upstream stream failed')
    }
    this.#finished = true
    this.#chain = this.#chain.then(() => this.#subscriber?.finish())
    if (this.#subscriber === undefined && !this.#forgotten) this.#schedule(this.#env.retentionMs, () => this.forget())
  }

  #schedule (delayMs: number, action: () => void): void {
    this.#clearTimer()
    this.#timer = setTimeout(action, delayMs)
    this.#timer.unref()
  }

  #clearTimer (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }
}
