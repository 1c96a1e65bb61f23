import type { StreamDescriptor, StreamReviver } from '../cluster/replica-coordinator.js'
import type { HistoryStore } from '../history/history-store.js'
import type { ResumeMiss } from '../session/resume-status.js'
import type { ProxySession, SessionStream } from '../session/session-registry.js'
import type { StreamOwnership } from '../session/stream-environment.js'
import type { ResumeSource } from './resume-source.js'

/** Whose a stream is: what a route checks before it lets a request resume it. */
export interface StreamOwnerRef {
  readonly sessionId: string
  readonly routePath: string
  readonly endsWithItsStreams: boolean
}

/** What a directory knows of a session id: the session, none, or nothing for now (the shared store is away). */
export type SessionLookup = ProxySession | 'unknown' | 'store-unavailable'

/** A new stream's place in the directory: `bind` it to the stream once built. */
export interface NewStreamOwnership {
  readonly ownership: StreamOwnership | undefined
  readonly bind: (stream: SessionStream) => void
}

/**
 * Where the routes find and record sessions, and the history of their streams.
 * Chosen once at registration, as @fastify/rate-limit chooses its store: local
 * (one process, the memory store) or shared (several replicas, through the
 * ReplicaCoordinator). Routes never ask which one they have.
 */
export interface SessionDirectory {
  readonly history: HistoryStore
  /** The epoch event ids carry now: ids from before the store lost its data are told apart. */
  readonly epoch: () => string
  /** Whether new sessions may be opened now: the shared store takes commands. */
  readonly available: boolean
  /** The session with this id on this route, opened here or, shared, through another replica. */
  find: (sessionId: string, routePath: string) => Promise<SessionLookup>
  /**
   * The session as every replica knows it now (another may have changed it); the
   * caller's own view while the shared store cannot say; undefined once it is gone.
   */
  reload: (session: ProxySession) => Promise<ProxySession | undefined>
  /** Records what other replicas need of the session; a failure is logged. */
  save: (session: ProxySession) => void
  /** Tells every replica that the client asked to end the session, before the upstream hears of it. */
  markEndRequested: (sessionId: string) => Promise<void>
  /**
   * Forgets the session. A directory that needs I/O settles once no replica can find
   * it any more; one that does not returns nothing, so that the answer goes out in the same turn.
   */
  delete: (sessionId: string) => Promise<void> | undefined
  /**
   * A stream another replica records, to resume, if `owns` accepts its owner; undefined
   * when none is known or it is not the requester's. Rejects when the store cannot answer in time.
   */
  locateStream: (streamId: string, owns: (owner: StreamOwnerRef) => boolean) => Promise<ResumeSource | undefined>
  /** Registers a stream this replica opens, described (only if the directory needs it) by `describe`. */
  ownNewStream: (session: ProxySession, streamId: string, describe: () => StreamDescriptor) => NewStreamOwnership
  /** How a route reopens the streams this replica takes over from one that died. */
  onTakeover: (routePath: string, reviver: StreamReviver) => void
  /** Counts a Last-Event-ID that could not be served, where the store has a count for it. */
  noteMiss: (miss: ResumeMiss) => void
  close: () => Promise<void>
}
