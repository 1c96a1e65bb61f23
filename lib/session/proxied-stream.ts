import type { Readable } from 'node:stream'
import type { HistoryRead, HistoryStore, RecordedEvent } from '../history/history-store.js'
import type { Counter } from 'prom-client'
import type { ReconnectPolicy } from '../config/schema.js'
import { reconnectDelayMs } from '../upstream/backoff.js'
import type { ConnectResult } from '../upstream/upstream-connector.js'
import { UpstreamStream, type UpstreamEndReason } from '../upstream/upstream-stream.js'
import { UpstreamDedupe } from './upstream-dedupe.js'
import { reportMalformedLine, reportUpstreamEnd, type UpstreamReportContext } from '../upstream/upstream-events-report.js'
import type { SseEvent } from '../wire/sse-event.js'
import { serializeComment, serializeRetry, serializeWithProxyId } from '../wire/sse-serializer.js'
import { eventIdPrefix, mintStreamId } from './event-id.js'
import type { ProxySession } from './session-registry.js'
import { StreamSubscriber, type StreamItem } from './stream-subscriber.js'
import { answeredIds } from '../wire/json-rpc.js'
import { gapNotice, type GapCause } from './resume-status.js'

/** What a stream needs besides what reporting its upstream's trouble needs (idleTimeoutMs: 0 for never). */
export interface StreamEnvironment extends UpstreamReportContext {
  readonly store: HistoryStore
  /** How long the upstream keeps running with no client. */
  readonly detachGraceMs: number
  /** How long a finished stream with no client stays resumable. */
  readonly retentionMs: number
  /** Bytes a client may have pending before it catches up from the history instead. */
  readonly maxBufferedChars: number
  /** Characters of events one append to a store that does I/O may gather while it waits its turn. */
  readonly maxAppendChars: number
  /** How long a client may take in nothing while events wait for it. */
  readonly stallMs: number
  /** Lets the session forget the stream. */
  readonly onForget: (stream: ProxiedStream) => void
  /**
   * Lets a route change an event before it gets its id and is recorded (legacy-sse's
   * `endpoint`), or keep it from the client altogether (undefined). What it learns
   * from the event may tell it of a gap (a new upstream session), which it notes.
   */
  readonly rewriteEvent?: ((event: SseEvent, gaps: GapReporter) => SseEvent | undefined) | undefined
  /**
   * What a client of this stream would otherwise never learn of a gap, in its
   * protocol's own terms (an MCP session's list_changed notifications): recorded
   * after the gap notice.
   */
  readonly gapNotifications?: (() => readonly SseEvent[]) | undefined
  /** How to open the upstream stream again when it drops; without it, a drop ends the stream. */
  readonly reconnect?: UpstreamReconnect | undefined
  /** The store's epoch, which every event id carries. */
  readonly epoch: string
  /** Set when the store is shared by several replicas: Redis (docs/scaling.md). */
  readonly ownership?: StreamOwnership | undefined
}

/**
 * How a stream is owned when several replicas share the store: exactly one of
 * them reads the upstream, under a lease (docs/scaling.md).
 */
export interface StreamOwnership {
  /** Recording waits for this: the stream is registered and its lease taken. */
  readonly ready: Promise<void>
  /** The upstream ended for good: other replicas end their clients too. */
  readonly finished: () => Promise<void>
  /** This replica let the stream go (another one owns it now, or the store lost it). */
  readonly released: () => void
  /** Whether clients on other replicas follow the stream, so that it must go on with none here. */
  readonly followedElsewhere: () => Promise<boolean>
}

/** Where a route notes that the upstream lost what the client was owed. */
export interface GapReporter {
  noteGap: (cause: GapCause) => void
}

/** A stream this replica takes over from another one: its id, last seq and upstream cursor. */
export interface StreamOrigin {
  readonly id: string
  readonly lastSeq: number
  readonly lastUpstreamEventId: string | undefined
}

// Steps waiting on an asynchronous store before the upstream is held back: bounded memory when Redis is slow.
const MAX_PENDING_APPENDS = 32

type HoldReason = 'client' | 'store'

interface WaitingAppend {
  readonly batch: StreamItem[]
  readonly recorded: RecordedEvent[]
  chars: number
}

export interface UpstreamReconnect {
  readonly policy: ReconnectPolicy
  /** The upstream sends again, after the Last-Event-ID of a reconnect, what it sent meanwhile (routes[].upstreamReplays). */
  readonly replays: boolean
  /** Opens the upstream stream again, resuming after the upstream's own last event id. */
  readonly connect: (lastUpstreamEventId: string | undefined) => Promise<ConnectResult>
  /** A stream the upstream resumes only by its ids (an MCP POST stream): none seen, no reconnect. */
  readonly needsUpstreamIds: boolean
  /**
   * The JSON-RPC request ids an MCP POST stream answers. Once a response to each has
   * passed, the stream is complete, and its close is its end, not a drop.
   */
  readonly answers?: ReadonlySet<string> | undefined
  /** Told when the upstream drops and reconnecting begins. */
  readonly onDrop?: (() => void) | undefined
}

/**
 * One upstream SSE stream as the proxy relays it: every event gets a proxy id,
 * is stored in its session's history, then goes to the client attached at the
 * moment, if any. The client may leave and come back; the upstream keeps running,
 * and recording, for the grace period.
 */
export class ProxiedStream implements GapReporter {
  readonly id: string
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
  /** Steps on #chain not yet run; 0 lets the next one run at once. */
  #queuedSteps = 0
  /** After a reconnect: the texts the history held of what earlier connections recorded. */
  #recentTexts = new Map<number, string>()
  readonly #forwardedCounter: Counter.Internal
  #batch: StreamItem[] = []
  #recorded: RecordedEvent[] = []
  /** Only a stream that reconnects can be sent the same events twice. */
  readonly #dedupe: UpstreamDedupe | undefined
  #lastUpstreamEventId: string | undefined
  /** The upstream's SSE `retry:` hint, in milliseconds. */
  #retryHintMs: number | undefined
  #reconnectTimer: NodeJS.Timeout | undefined
  /** Ends the wait before the next reconnection attempt early, when the stream stops. */
  #wakeReconnect: (() => void) | undefined
  /** JSON-RPC request ids still waiting for their response on this stream. */
  readonly #unanswered: Set<string> | undefined
  /** Every request of the stream has its response: the stream is over once they are sent. */
  #answered = false
  /** Set when the stream must not reconnect any more: grace over, or forgotten. */
  #stopped = false
  #connectedAt = 0
  /** When the upstream dropped, until the first event after the reconnect reaches the client. */
  #droppedAt: number | undefined
  readonly #idPrefix: string
  /** Set once the store refused an append: another replica records this stream now. */
  #released = false
  /** What holds the upstream back now; it is read while this is empty. */
  readonly #holds = new Set<HoldReason>()
  /** The append queued behind the store's work, which later chunks join. */
  #waitingAppend: WaitingAppend | undefined
  /** Set when this replica closes: the stream is not over, another replica goes on with it. */
  #handingOver = false
  /** Set while the upstream of a stream taken over from another replica is opened again. */
  #takingOver = false
  /** A gap is noted at most once per upstream connection. */
  #gapNoted = false

  constructor (session: ProxySession, env: StreamEnvironment, origin?: StreamOrigin) {
    this.session = session
    this.#env = env
    this.id = origin?.id ?? mintStreamId()
    this.#seq = origin?.lastSeq ?? 0
    this.#lastUpstreamEventId = origin?.lastUpstreamEventId
    this.#idPrefix = eventIdPrefix(this.id, env.epoch)
    const ready = env.ownership?.ready
    if (ready !== undefined) this.#inOrder(async () => await ready)
    const dedupeWindow = env.reconnect?.policy.dedupeWindow ?? 0
    this.#dedupe = dedupeWindow === 0 ? undefined : new UpstreamDedupe(dedupeWindow)
    this.#unanswered = env.reconnect?.answers === undefined ? undefined : new Set(env.reconnect.answers)
    this.#forwardedCounter = env.metrics.eventsForwarded.labels(env.labels)
  }

  /** The store epoch its event ids carry. */
  get epoch (): string {
    return this.#env.epoch
  }

  get finished (): boolean {
    return this.#finished
  }

  get hasClient (): boolean {
    return this.#subscriber !== undefined
  }

  /** Running upstream, or a client attached; a stream that is neither is only kept for resumption. */
  get isLive (): boolean {
    return !this.#finished || this.#subscriber !== undefined
  }

  /** Reads the upstream response from here on. */
  start (body: Readable): void {
    this.#connectedAt = performance.now()
    this.#upstream = new UpstreamStream(body, {
      onEvent: (event) => this.#record(event),
      onComment: (comment) => { this.#batch.push({ text: serializeComment(comment) }) },
      onRetry: (milliseconds) => {
        this.#retryHintMs = milliseconds
        this.#batch.push({ text: serializeRetry(milliseconds) })
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
    this.#clearTimer()
    const subscriber = new StreamSubscriber(
      this,
      { lastSentSeq: afterSeq ?? this.#seq, joinedAtSeq: this.#seq },
      { maxBufferedChars: this.#env.maxBufferedChars, stallMs: this.#env.stallMs }
    )
    this.#subscriber = subscriber
    if (this.#finished) this.#inOrder(() => subscriber.finish())
    return subscriber
  }

  unsubscribe (subscriber: StreamSubscriber): void {
    if (this.#subscriber !== subscriber || this.#forgotten) return
    this.#subscriber = undefined
    if (this.#finished) {
      this.#schedule(this.#env.retentionMs, () => this.forget())
    } else {
      this.#awaitClient()
    }
  }

  /**
   * No client: the upstream runs on for the grace period, then stops, unless clients
   * on other replicas still follow the stream (Redis store).
   */
  #awaitClient (): void {
    this.#schedule(this.#env.detachGraceMs, () => {
      const ownership = this.#env.ownership
      if (ownership === undefined) {
        this.#stopUpstream()
        return
      }
      ownership.followedElsewhere().then((followed) => {
        if (this.#subscriber !== undefined || this.#forgotten) return
        if (followed) {
          this.#awaitClient()
          return
        }
        this.#env.log.info({ upstream: this.#env.upstreamUrl, streamId: this.id }, 'no client followed the stream on any replica for sessions.detachGraceSeconds; it ends')
        this.#stopUpstream()
      }, () => this.#awaitClient())
    })
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
    if (this.#env.ownership !== undefined && !this.#finished) {
      this.#handingOver = true
      this.#env.ownership.released()
    }
    this.#stopUpstream()
    await subscriber?.gone()
  }

  /**
   * Opens the upstream of a stream taken over from another replica, resuming
   * after the upstream id that replica recorded last.
   */
  resumeUpstream (): void {
    const reconnect = this.#env.reconnect
    if (reconnect === undefined) {
      this.#finishUpstream()
      return
    }
    this.#connectedAt = performance.now()
    this.#takingOver = true
    this.#upstreamEnded('ended')
    if (this.#subscriber === undefined) this.#awaitClient()
  }

  /**
   * Another replica records this stream now, or the store lost it: stop reading
   * the upstream, keep the history, and send the client, with a `retry:` hint,
   * to resume wherever the stream is served now.
   */
  release (retryHintMs: number): void {
    if (this.#forgotten) return
    this.#forgotten = true
    this.#released = true
    // Not the stream's end: another replica goes on with it (set before abort(), which reports an end).
    this.#handingOver = true
    this.#finished = true
    this.#clearTimer()
    this.#stopped = true
    clearTimeout(this.#reconnectTimer)
    this.#wakeReconnect?.()
    this.#upstream?.abort()
    const subscriber = this.#subscriber
    this.#subscriber = undefined
    subscriber?.hintRetry(retryHintMs)
    subscriber?.finish()
    this.#env.ownership?.released()
    this.#env.onForget(this)
  }

  /** Ends the stream for good: upstream, client and history. */
  forget (): void {
    if (this.#forgotten) return
    this.#forgotten = true
    this.#clearTimer()
    this.#stopUpstream()
    this.#subscriber?.close()
    this.#subscriber = undefined
    this.#env.store.dropStream(this.session.id, this.id).catch((error: unknown) => {
      this.#env.log.error({ err: error, streamId: this.id }, 'could not drop a stream\'s history')
    })
    this.#env.onForget(this)
  }

  #record (upstreamEvent: SseEvent): void {
    const upstreamId = upstreamEvent.id
    if (upstreamId !== undefined && upstreamId !== '' && this.#dedupe?.isDuplicate(upstreamId, (seq) => this.#wasRecordedAs(seq, upstreamEvent)) === true) {
      this.#env.metrics.eventsDeduplicated.inc(this.#env.labels)
      return
    }
    // An empty id resets the last event id (WHATWG HTML, "Server-sent events").
    if (upstreamId !== undefined) this.#lastUpstreamEventId = upstreamId === '' ? undefined : upstreamId
    if (this.#unanswered !== undefined && this.#unanswered.size > 0) {
      for (const id of answeredIds(upstreamEvent.data)) this.#unanswered.delete(id)
      this.#answered = this.#unanswered.size === 0
    }
    const event = this.#env.rewriteEvent === undefined ? upstreamEvent : this.#env.rewriteEvent(upstreamEvent, this)
    if (event === undefined) return
    const seq = this.#recordAs(event, upstreamEvent.id)
    if (upstreamId !== undefined && upstreamId !== '') this.#dedupe?.remember(upstreamId, seq)
  }

  #recordAs (event: SseEvent, upstreamId: string | undefined): number {
    const seq = ++this.#seq
    const recorded: RecordedEvent = { seq, upstreamId, text: serializeWithProxyId(this.#idPrefix + seq, event) }
    this.#batch.push(recorded)
    this.#recorded.push(recorded)
    return seq
  }

  /**
   * The upstream may have sent events that never reached the proxy: a notice goes into
   * the stream at this point, recorded like any event, so that a resume from before it
   * replays it too; then what the route's protocol can say of it. Never a silent gap.
   */
  noteGap (cause: GapCause): void {
    if (this.#gapNoted) return
    this.#gapNoted = true
    const { metrics, labels, log, upstreamUrl } = this.#env
    metrics.upstreamGaps.inc({ ...labels, cause })
    log.info({ upstream: upstreamUrl, streamId: this.id, cause }, 'the upstream may have sent events the proxy never got; the client is told in the stream')
    this.#recordAs(gapNotice(cause), undefined)
    for (const notification of this.#env.gapNotifications?.() ?? []) this.#recordAs(notification, undefined)
  }

  /**
   * Whether the event recorded under `seq` is this upstream event again. Where the
   * history no longer holds its text (evicted, ids-only mode, history off), the
   * upstream id alone decides.
   */
  #wasRecordedAs (seq: number, upstreamEvent: SseEvent): boolean {
    const text = this.#recentTexts.get(seq)
    if (text === undefined || text === '') return true
    return text === serializeWithProxyId(this.#idPrefix + seq, upstreamEvent)
  }

  /**
   * Stores what one upstream chunk produced, then sends it. A store that answers
   * at once (the memory store) lets it go out in the same turn; one that does I/O
   * is waited for, in order.
   */
  #commit (): void {
    const batch = this.#batch
    const recorded = this.#recorded
    if (batch.length === 0) return
    this.#batch = []
    this.#recorded = []
    this.#store(batch, recorded)
    // "After the JSON-RPC response has been sent, the server SHOULD close the SSE stream"
    // (MCP Streamable HTTP): an upstream that keeps a resumed stream open does not hold the client's.
    if (this.#answered && !this.#stopped) this.#stopUpstream()
  }

  #store (batch: StreamItem[], recorded: RecordedEvent[]): void {
    if (this.#queuedSteps > 0) {
      this.#appendInTurn(batch, recorded)
      return
    }
    const stored = this.#append(recorded)
    if (stored === undefined) {
      this.#deliver(batch, recorded.length)
      return
    }
    this.#inOrder(async () => {
      await stored
      this.#deliver(batch, recorded.length)
    })
  }

  /**
   * Queues an append behind the store's work. Chunks that arrive while one waits join
   * it, so that a store that does I/O gets one larger append per round trip. Past
   * store.maxAppendBytes of waiting events, or MAX_PENDING_APPENDS steps, the
   * upstream is held back until the store has caught up: memory stays bounded, and
   * no append is long enough to hold Redis up.
   */
  #appendInTurn (batch: StreamItem[], recorded: RecordedEvent[]): void {
    let waiting = this.#waitingAppend
    if (waiting === undefined) {
      const next: WaitingAppend = { batch, recorded, chars: 0 }
      this.#inOrder(async () => {
        if (this.#waitingAppend === next) this.#waitingAppend = undefined
        await this.#append(next.recorded)
        this.#deliver(next.batch, next.recorded.length)
      })
      this.#waitingAppend = next
      waiting = next
    } else {
      for (const item of batch) waiting.batch.push(item)
      for (const event of recorded) waiting.recorded.push(event)
    }
    for (const item of batch) waiting.chars += item.text.length
    if (waiting.chars > this.#env.maxAppendChars || this.#queuedSteps >= MAX_PENDING_APPENDS) this.#hold('store')
  }

  /** undefined once stored; a promise while a store does I/O. A failure is logged, never thrown. */
  #append (recorded: readonly RecordedEvent[]): Promise<void> | undefined {
    if (recorded.length === 0) return undefined
    const { store, log } = this.#env
    const reportFailure = (error: unknown): void => {
      // With a shared store, an event that is not recorded must not go out: another replica would
      // go on from the recorded position, and give its seq to another event.
      if (isOwnershipLost(error) || this.#env.ownership !== undefined) {
        log.warn({ upstream: this.#env.upstreamUrl, streamId: this.id, err: error }, 'the store refused this replica\'s events; it stops reading the upstream')
        this.release(RELEASE_RETRY_HINT_MS)
        return
      }
      log.error({ err: error, streamId: this.id }, 'could not record events; they are sent, but cannot be replayed')
    }
    try {
      return store.append(this.session.id, this.id, recorded)?.catch(reportFailure)
    } catch (error) {
      reportFailure(error)
      return undefined
    }
  }

  #deliver (batch: readonly StreamItem[], events: number): void {
    // What the store refused was not recorded: sending it would be an event no one can resume after.
    if (this.#released) return
    const subscriber = this.#subscriber
    subscriber?.deliver(batch)
    if (subscriber?.catchingUp === true) this.#holdUpstreamFor(subscriber)
    if (events === 0) return
    this.#forwardedCounter.inc(events)
    if (this.#droppedAt !== undefined) {
      this.#env.metrics.upstreamReconnectLatency.observe(this.#env.labels, (performance.now() - this.#droppedAt) / 1000)
      this.#droppedAt = undefined
    }
  }

  /**
   * A client whose socket is full holds the upstream back until it has caught up,
   * as any proxy's backpressure would: an upstream at full speed would otherwise
   * outrun it past the end of the history, and it would be cut. A client that
   * takes in nothing for limits.clientStallSeconds is cut, and the upstream runs on.
   */
  #holdUpstreamFor (subscriber: StreamSubscriber): void {
    this.#hold('client')
    subscriber.afterCatchUp(() => this.#unhold('client'))
  }

  /** The upstream is read only while nothing holds it back: neither a catching-up client nor the store. */
  #hold (reason: HoldReason): void {
    this.#holds.add(reason)
    this.#upstream?.pause()
  }

  #unhold (reason: HoldReason): void {
    if (!this.#holds.delete(reason) || this.#holds.size > 0) return
    this.#upstream?.resume()
  }

  /** Runs `step` after every step queued before it: at once, when none is. */
  #inOrder (step: () => void | Promise<void>): void {
    // No later chunk may join an append queued before this step.
    this.#waitingAppend = undefined
    if (this.#queuedSteps === 0) {
      const done = step()
      if (done === undefined) return
      this.#queuedSteps++
      this.#chain = done.finally(() => this.#stepDone())
      return
    }
    this.#queuedSteps++
    this.#chain = this.#chain.then(step).finally(() => this.#stepDone())
  }

  #stepDone (): void {
    this.#queuedSteps--
    if (this.#queuedSteps === 0) this.#unhold('store')
  }

  #upstreamEnded (reason: UpstreamEndReason, error?: Error): void {
    const { metrics, labels, log, upstreamUrl } = this.#env
    metrics.upstreamConnectionDuration.observe(labels, (performance.now() - this.#connectedAt) / 1000)
    reportUpstreamEnd(this.#env, reason, error)
    const reconnect = this.#env.reconnect
    const complete = this.#unanswered !== undefined && this.#unanswered.size === 0
    if ((reason === 'ended' || reason === 'failed' || reason === 'stalled') && reconnect !== undefined && !this.#stopped && !complete &&
        !(reconnect.needsUpstreamIds && this.#lastUpstreamEventId === undefined)) {
      this.#droppedAt = performance.now()
      reconnect.onDrop?.()
      this.#reconnect(reconnect, reason).catch((reconnectError: unknown) => {
        log.error({ upstream: upstreamUrl, err: reconnectError }, 'upstream reconnection failed')
        this.#finishUpstream()
      })
      return
    }
    this.#finishUpstream()
  }

  /** Ends the upstream side: no more events will come. */
  #finishUpstream (): void {
    if (this.#finished) return
    this.#finished = true
    const ownership = this.#env.ownership
    if (ownership !== undefined && !this.#handingOver) this.#inOrder(() => ownership.finished())
    this.#inOrder(() => this.#subscriber?.finish())
    if (this.#subscriber === undefined && !this.#forgotten) this.#schedule(this.#env.retentionMs, () => this.forget())
  }

  /** Reconnects after a drop, with backoff, until it works or the policy gives up. */
  async #reconnect (reconnect: UpstreamReconnect, drop: Extract<GapCause, UpstreamEndReason>): Promise<void> {
    const { metrics, labels, log, upstreamUrl } = this.#env
    const { policy } = reconnect
    const cleanClose = drop === 'ended'
    const gapCause: GapCause = this.#takingOver ? 'takeover' : drop
    this.#takingOver = false
    let reason: string = drop
    let hintMs = this.#retryHintMs
    for (let attempt = 1; ; attempt++) {
      if (this.#endedWithItsSession()) return
      if (policy.maxRetries > 0 && attempt > policy.maxRetries) {
        this.#giveUp(`${policy.maxRetries} attempts failed; last: ${reason}`)
        return
      }
      const delayMs = reconnectDelayMs(policy, attempt, cleanClose, hintMs)
      log.info({ upstream: upstreamUrl, attempt, delayMs, reason }, 'reconnecting to the upstream')
      metrics.reconnectionAttempts.inc(labels)
      await new Promise<void>((resolve) => {
        this.#wakeReconnect = resolve
        this.#reconnectTimer = setTimeout(resolve, delayMs)
      })
      if (this.#stopped || this.#endedWithItsSession()) return
      const result = await reconnect.connect(this.#lastUpstreamEventId)
      if (this.#stopped) {
        if (result.kind === 'connected') result.body.destroy()
        return
      }
      if (result.kind === 'connected') {
        metrics.reconnectionSuccesses.inc(labels)
        log.info({ upstream: upstreamUrl, attempt }, 'reconnected to the upstream')
        if (this.#dedupe !== undefined) await this.#prepareDedupe(this.#dedupe)
        if (this.#stopped) {
          result.body.destroy()
          return
        }
        this.#gapNoted = false
        if (result.freshSession === true) {
          this.noteGap('session-reestablished')
        } else if (!reconnect.replays) {
          this.noteGap(gapCause)
        }
        this.#commit()
        this.start(result.body)
        return
      }
      if (result.kind === 'give-up') {
        this.#giveUp(result.reason)
        return
      }
      reason = result.reason
      hintMs = result.retryAfterMs ?? this.#retryHintMs
    }
  }

  /** Its client sent DELETE: the upstream ends the session's streams, and that is their end, not a drop. */
  #endedWithItsSession (): boolean {
    if (this.session.endRequested !== true) return false
    this.#env.log.info({ upstream: this.#env.upstreamUrl }, 'the upstream ended a stream of a session its client is ending; not reconnecting')
    this.#finishUpstream()
    return true
  }

  /** Loads what the history holds of the events a reconnect may send again. */
  async #prepareDedupe (dedupe: UpstreamDedupe): Promise<void> {
    await this.#chain
    const from = dedupe.oldestRememberedSeq
    const read = from === 0 ? undefined : await this.readAfter(from - 1).catch(() => undefined)
    this.#recentTexts = new Map(read?.status === 'found' ? read.events.map((event) => [event.seq, event.text]) : [])
    dedupe.reconnected()
  }

  #giveUp (reason: string): void {
    const { metrics, labels, log, upstreamUrl } = this.#env
    metrics.reconnectionFailures.inc(labels)
    log.warn({ upstream: upstreamUrl, reason }, 'gave up reconnecting to the upstream; closing the client stream')
    this.#finishUpstream()
  }

  /** No more reconnects; the upstream connection, if any, is closed. */
  #stopUpstream (): void {
    this.#stopped = true
    clearTimeout(this.#reconnectTimer)
    this.#wakeReconnect?.()
    this.#upstream?.abort()
    this.#finishUpstream()
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

// How soon a client sent away by release() comes back: at once, to the replica that records the stream now.
const RELEASE_RETRY_HINT_MS = 100

function isOwnershipLost (error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code
  return code === 'FST_MCP_SSE_STALE_OWNER' || code === 'FST_MCP_SSE_STORE_RESET'
}
