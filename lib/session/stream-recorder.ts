import type { HistoryRead, RecordedEvent } from '../history/history-store.js'
import { answeredIds } from '../wire/json-rpc.js'
import type { SseEvent } from '../wire/sse-event.js'
import { serializeWithProxyId } from '../wire/sse-serializer.js'
import { sameEventText } from '../wire/sse-event-text.js'
import { eventIdPrefix } from './event-id.js'
import { gapNotice, type GapCause } from './resume-status.js'
import type { AppendQueue } from './append-queue.js'
import type { GapReporter, StreamEnvironment, StreamOrigin } from './stream-environment.js'
import type { StreamItem } from './stream-subscriber.js'
import { UpstreamDedupe } from './upstream-dedupe.js'

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
  readonly #idPrefix: string
  #seq: number
  #batch: StreamItem[] = []
  #recorded: RecordedEvent[] = []
  /** Only a stream that reconnects can be sent the same events twice. */
  readonly #dedupe: UpstreamDedupe | undefined
  /** After a reconnect: the texts the history held of what earlier connections recorded. */
  #recentTexts = new Map<number, string>()
  #lastUpstreamEventId: string | undefined
  /** JSON-RPC request ids still waiting for their response on this stream. */
  readonly #unanswered: Set<string> | undefined
  #answered = false
  /** A gap is noted at most once per upstream connection. */
  #gapNoted = false

  constructor (streamId: string, env: RecorderEnvironment, origin: StreamOrigin | undefined) {
    this.#streamId = streamId
    this.#env = env
    this.#idPrefix = eventIdPrefix(streamId, env.epoch)
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

  /**
   * Whether record() may be given an event's lines (recordLines()) instead of the
   * event: when nothing reads its fields, neither a rewrite nor the search for
   * JSON-RPC responses.
   */
  get takesLines (): boolean {
    return this.#env.rewriteEvent === undefined && this.#unanswered === undefined
  }

  /**
   * An upstream event as its `data:` and `event:` lines (sse-line-splitter.ts): it is
   * recorded as the proxy's `id:` line followed by those lines, with no field read.
   */
  recordLines (lines: string, upstreamId: string | undefined): void {
    if (this.#isReplay(upstreamId, lines)) return
    const seq = this.#seq + 1
    this.#keep(seq, `id: ${this.#idPrefix}${seq}\n${lines}\n`, upstreamId)
  }

  record (upstreamEvent: SseEvent): void {
    const upstreamId = upstreamEvent.id
    if (this.#isReplay(upstreamId, upstreamEvent)) return
    if (this.#unanswered !== undefined && this.#unanswered.size > 0) {
      for (const id of answeredIds(upstreamEvent.data)) this.#unanswered.delete(id)
      this.#answered = this.#unanswered.size === 0
    }
    const rewrite = this.#env.rewriteEvent
    const event = rewrite === undefined ? upstreamEvent : rewrite(upstreamEvent, this)
    if (event === undefined) return
    this.#recordAs(event, upstreamId)
  }

  /** Records an event the proxy itself puts in the stream (`upstreamId` undefined), or an upstream one. */
  #recordAs (event: SseEvent, upstreamId: string | undefined): void {
    const seq = this.#seq + 1
    this.#keep(seq, serializeWithProxyId(this.#idPrefix + seq, event), upstreamId)
  }

  /**
   * True, and counted, for an event an earlier upstream connection already recorded.
   * Otherwise its id, if any, is the upstream's cursor from now on.
   */
  #isReplay (upstreamId: string | undefined, upstream: SseEvent | string): boolean {
    if (upstreamId === undefined) return false
    const dedupe = this.#dedupe
    if (upstreamId !== '' && dedupe?.comparing === true && dedupe.isDuplicate(upstreamId, (seq) => this.#wasRecordedAs(seq, upstream))) {
      this.#env.metrics.eventsDeduplicated.inc(this.#env.labels)
      return true
    }
    // An empty id resets the last event id (WHATWG HTML, "Server-sent events").
    this.#lastUpstreamEventId = upstreamId === '' ? undefined : upstreamId
    return false
  }

  /** The event under `seq`, the next one, into the batch and the history; its upstream id into the dedupe. */
  #keep (seq: number, text: string, upstreamId: string | undefined): void {
    this.#seq = seq
    const recorded: RecordedEvent = { seq, upstreamId, text }
    this.#batch.push(recorded)
    this.#recorded.push(recorded)
    if (upstreamId !== undefined && upstreamId !== '') this.#dedupe?.remember(upstreamId, seq)
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
    this.#recordAs(gapNotice(cause), undefined)
    for (const notification of this.#env.gapNotifications?.() ?? []) this.#recordAs(notification, undefined)
  }

  /** A line that goes out with the events but is not recorded: a comment, a `retry:`. */
  pass (text: string): void {
    this.#batch.push({ text })
  }

  /** Hands what was gathered since the last time to `queue`; false when there was nothing. */
  flushTo (queue: AppendQueue): boolean {
    const batch = this.#batch
    const recorded = this.#recorded
    if (batch.length === 0) return false
    this.#batch = []
    this.#recorded = []
    queue.store(batch, recorded)
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
    this.#recentTexts = new Map(read?.status === 'found' ? read.events.map((event) => [event.seq, event.text]) : [])
    dedupe.reconnected()
  }

  /**
   * Whether the event recorded under `seq` is this upstream event (or these lines of
   * one) again. Where the history no longer holds its text (evicted, ids-only mode,
   * history off), the upstream id alone decides. Texts are compared as what a client
   * reads of them, since one may have come by the fast path and the other not.
   */
  #wasRecordedAs (seq: number, upstream: SseEvent | string): boolean {
    const text = this.#recentTexts.get(seq)
    if (text === undefined || text === '') return true
    const proxyId = this.#idPrefix + seq
    const again = typeof upstream === 'string' ? `id: ${proxyId}\n${upstream}\n` : serializeWithProxyId(proxyId, upstream)
    return text === again || sameEventText(text, again)
  }
}
