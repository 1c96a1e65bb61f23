import type { HistoryStore } from '../history/history-store.js'
import type { LiveFeed } from './live-feed.js'
import type { SessionRecords } from './session-records.js'
import type { StreamRegistry } from './stream-registry.js'

/** A history that the replicas share: appends carry the fencing token of the replica that owns the stream. */
export interface FencedHistoryStore extends HistoryStore {
  /** From now on, appends to this stream carry this fencing token: this replica owns it. */
  holdFence: (streamId: string, token: number) => void
  releaseFence: (streamId: string) => void
}

/** Whether clients follow a stream from replicas other than its owner. */
export interface Followers {
  /** One does now, or one left less than a grace period ago. */
  followedElsewhere: (sessionId: string, streamId: string) => Promise<boolean>
  /** A client that followed the stream from here left: remembered for `graceMs`. */
  noteLeft: (sessionId: string, streamId: string, graceMs: number) => Promise<void>
}

/**
 * Everything the replicas share, in one engine (lib/store/redis/ implements it):
 * the ReplicaCoordinator is written against this alone.
 */
export interface ClusterStore {
  readonly registry: StreamRegistry
  readonly history: FencedHistoryStore
  readonly sessions: SessionRecords
  readonly live: LiveFeed
  readonly followers: Followers
  /** Where the new events of a stream are published. */
  liveChannelOf: (sessionId: string, streamId: string) => string
  /** Connects; rejects when the store cannot be reached at start. */
  open: () => Promise<void>
  /** Whether the store takes commands now. */
  readonly ready: boolean
  close: () => Promise<void>
}

/** Builds the store; `epoch` gives the store epoch the coordinator last read, which every append carries. */
export type ClusterStoreFactory = (epoch: () => string) => ClusterStore
