import type { FastifyBaseLogger } from 'fastify'
import type { Agent } from 'undici'
import type { ReplicaCoordinator } from './cluster/replica-coordinator.js'
import type { ResolvedOptions } from './config/schema.js'
import type { HistoryStore } from './history/history-store.js'
import type { ProxyMetrics } from './metrics.js'
import type { SessionRegistry } from './session/session-registry.js'

/** A stream the proxy is relaying, so that closing the server can end it. */
export interface OpenStream {
  close: () => void
}

/** What every route of one plugin instance shares. */
export interface ProxyContext {
  readonly options: ResolvedOptions
  readonly metrics: ProxyMetrics
  readonly sessions: SessionRegistry
  readonly history: HistoryStore
  /** The store's epoch now: event ids carry it, so that ids from before a store lost its data are told apart. */
  readonly epoch: () => string
  /** Set with `store.kind: redis`: the replicas that share sessions, history and upstream streams. */
  readonly coordinator?: ReplicaCoordinator | undefined
  /** The HTTP client of every upstream request, reply-from's and reconnects' alike. */
  readonly dispatcher: Agent
  /** Streams relayed without a history (MCP 2026-07-28 requests). */
  readonly openStreams: Set<OpenStream>
  /** For what happens outside any request: takeovers, lease and store trouble. */
  readonly log: FastifyBaseLogger
}
