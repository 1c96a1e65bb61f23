import type { HistoryRead } from '../history/history-store.js'
import type { SseEvent } from '../wire/sse-event.js'
import { answeredIdsInEvent, eventData, eventLines, hasLines } from '../wire/sse-event-bytes.js'
import { eventIdPrefix } from './event-id.js'
import { gapNotice, type GapCause } from './resume-status.js'
import type { AppendQueue } from './append-queue.js'
import type { GapReporter, StreamEnvironment, StreamOrigin } from './stream-environment.js'
import { BatchBuilder } from './batch-builder.js'
import { UpstreamDedupe } from './upstream-dedupe.js'

const NO_LINES = Buffer.alloc(0)

export type RecorderEnvironment = Pick<StreamEnvironment, 'epoch' | 'reconnect' | 'rewriteEvent' | 'gapNotifications' | 'metrics' | 'labels' | 'log' | 'upstreamUrl'>

/**
 * Gives each upstream event of a stream its proxy id and its place in the history
 * (the one place an event's recorded form is made), notes gaps in it, gathers what
 * one upstream chunk produced, and drops what a reconnected upstream sends again.
 * It follows the upstream's cursor (its last event id) and, for an MCP POST stream,
 * which requests are answered.
 */
export class StreamRecorder implements GapReporter {
  readonly #streamId: string
  readonly #env: RecorderEnvironment
  readonly #batch: BatchBuilder
  #seq: number
  /** Only a stream that reconnects can be sent the same events twice. */
  readonly #dedupe: UpstreamDedupe | undefined
  /** After a reconnect: the events the history held of what earlier connections recorded. */
  #recentEvents = new Map<number, Buffer>()
  /** The lines of the upstream event being recorded, which the dedupe compares: no closure per event. */
  #lines: Buffer = NO_LINES
  readonly #recordedAsLines = (seq: number): boolean => this.#wasRecordedAs(seq, this.#lines)
  #lastUpstreamEventId: string | undefined
  /** JSON-RPC request ids still waiting for their response on this stream. */
  readonly #unanswered: Set<string> | undefined
  #answered = false
  /** A gap is noted at most once per upstream connection. */
  #gapNoted = false

  constructor (streamId: string, env: RecorderEnvironment, origin: StreamOrigin | undefined) {
    this.#streamId = streamId
    this.#env = env
    this.#batch = new BatchBuilder(eventIdPrefix(streamId, env.epoch))
    this.#seq = origin?.lastSeq ?? 0
    this.#lastUpstreamEventId = origin?.lastUpstreamEventId
    const { reconnect } = env
    const dedupeWindow = reconnect?.policy.dedupeWindow ?? 0
    this.#dedupe = dedupeWindow === 0 ? undefined : new UpstreamDedupe(dedupeWindow)
    this.#unanswered = reconnect?.answers === undefined ? undefined : new Set(reconnect.answers)
  }

  /** The seq of the last event recorded. */
  get seq (): number {
    return this.#seq
  }

  /** Where a reconnect resumes the upstream: its own last event id. */
  get lastUpstreamEventId (): string | undefined {
    return this.#lastUpstreamEventId
  }

  /** Every request of the stream has its response: the stream is over once they are sent. */
  get answered (): boolean {
    return this.#answered
  }

  /** An MCP POST stream whose requests all have their response: its close is its end, not a drop. */
  get complete (): boolean {
    return this.#unanswered !== undefined && this.#unanswered.size === 0
  }

  /** One upstream event: its lines as the scanner gives them, a view of the chunk that goes no further than this call. */
  record (lines: Buffer, upstreamId: string | undefined, type: string | undefined): void {
    this.#lines = lines
    const duplicate = upstreamId !== undefined && upstreamId !== '' && this.#dedupe?.isDuplicate(upstreamId, this.#recordedAsLines) === true
    // Not kept past this call: a view holds its whole upstream chunk.
    this.#lines = NO_LINES
    if (duplicate) {
      this.#env.metrics.eventsDeduplicated.inc(this.#env.labels)
      return
    }
    // An empty id resets the last event id (WHATWG HTML, "Server-sent events").
    if (upstreamId !== undefined) this.#lastUpstreamEventId = upstreamId === '' ? undefined : upstreamId
    if (this.#unanswered !== undefined && this.#unanswered.size > 0) {
      for (const id of answeredIdsInEvent(lines)) this.#unanswered.delete(id)
      this.#answered = this.#unanswered.size === 0
    }
    const rewrite = this.#env.rewriteEvent
    const recorded = rewrite === undefined ? lines : this.#rewrite(rewrite, lines, upstreamId, type)
    if (recorded === undefined) return
    const seq = this.recordAs(recorded, upstreamId)
    if (upstreamId !== undefined && upstreamId !== '') this.#dedupe?.remember(upstreamId, seq)
  }

  /** The route's rewrite reads the event decoded; an event it leaves as it was keeps its bytes. */
  #rewrite (rewrite: NonNullable<RecorderEnvironment['rewriteEvent']>, lines: Buffer, id: string | undefined, type: string | undefined): Buffer | undefined {
    const upstreamEvent: SseEvent = { id, event: type, data: eventData(lines) }
    const event = rewrite(upstreamEvent, this)
    if (event === undefined) return undefined
    return event === upstreamEvent ? lines : eventLines(event)
  }

  /**
   * Records an event the proxy itself puts in the stream (`upstreamId` undefined), or an
   * upstream one: its lines, copied under the proxy id into the chunk's batch (`lines` may be a view of a chunk).
   */
  recordAs (lines: Buffer, upstreamId: string | undefined): number {
    const seq = ++this.#seq
    this.#batch.event(seq, lines, upstreamId)
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
    log.info({ upstream: upstreamUrl, streamId: this.#streamId, cause }, 'the upstream may have sent events the proxy never got; the client is told in the stream')
    this.recordAs(gapNotice(cause), undefined)
    for (const notification of this.#env.gapNotifications?.() ?? []) this.recordAs(notification, undefined)
  }

  /** What goes out with the events but is not recorded: a comment, a `retry:`. */
  pass (bytes: Buffer): void {
    this.#batch.raw(bytes)
  }

  /** Hands what was gathered since the last time to `queue`; false when there was nothing. */
  flushTo (queue: AppendQueue): boolean {
    const batch = this.#batch.take()
    if (batch === undefined) return false
    queue.store(batch)
    return true
  }

  /**
   * The upstream was opened again: a gap of the new connection may be noted, and, once
   * what is queued is stored, what the history holds of the events it may send again is
   * loaded. Undefined when it drops nothing (no dedupeWindow).
   */
  reconnected (queue: AppendQueue, readAfter: (seq: number) => Promise<HistoryRead>): Promise<void> | undefined {
    this.#gapNoted = false
    const dedupe = this.#dedupe
    return dedupe === undefined ? undefined : this.#loadRecent(dedupe, queue, readAfter)
  }

  async #loadRecent (dedupe: UpstreamDedupe, queue: AppendQueue, readAfter: (seq: number) => Promise<HistoryRead>): Promise<void> {
    await queue.settled()
    const from = dedupe.oldestRememberedSeq
    const read = from === 0 ? undefined : await readAfter(from - 1).catch(() => undefined)
    this.#recentEvents = new Map(read?.status === 'found' ? read.events.map((event) => [event.seq, event.bytes]) : [])
    dedupe.reconnected()
  }

  /**
   * Whether the event recorded under `seq` is this upstream event again. Where the
   * history no longer holds its text (evicted, ids-only mode, history off), the
   * upstream id alone decides.
   */
  #wasRecordedAs (seq: number, lines: Buffer): boolean {
    const recorded = this.#recentEvents.get(seq)
    if (recorded === undefined || recorded.length === 0) return true
    return hasLines(recorded, lines)
  }
}
