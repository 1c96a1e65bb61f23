import type { FastifyBaseLogger } from 'fastify'
import type { Agent } from 'undici'
import type { ResolvedOptions } from './config/schema.js'
import type { SessionDirectory } from './directory/session-directory.js'
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
  /**
   * Where sessions are found and recorded, with their streams' history: this
   * process's own, or shared by the replicas (`store.kind: redis`).
   */
  readonly directory: SessionDirectory
  /** The HTTP client of every upstream request, reply-from's and reconnects' alike. */
  readonly dispatcher: Agent
  /** Streams relayed without a history (MCP 2026-07-28 requests). */
  readonly openStreams: Set<OpenStream>
  /** For what happens outside any request: takeovers, lease and store trouble. */
  readonly log: FastifyBaseLogger
}
