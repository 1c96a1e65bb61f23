import type { HistoryStore } from '../history/history-store.js'
import type { ReconnectPolicy } from '../config/schema.js'
import type { ConnectResult } from '../upstream/upstream-connector.js'
import type { UpstreamReportContext } from '../upstream/upstream-events-report.js'
import type { SseEvent } from '../wire/sse-event.js'
import type { GapCause } from './resume-status.js'

/**
 * What a stream needs of the session it belongs to, and no more: the session holds
 * its streams, so a stream that knew the whole session would tie the two together.
 */
export interface StreamSession {
  readonly id: string
  /**
   * The client sent DELETE: the upstream ends the session's streams, and that is
   * their end, not a drop.
   */
  readonly endRequested?: boolean | undefined
}

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
  readonly onForget: () => void
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
