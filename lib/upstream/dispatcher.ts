import { Agent } from 'undici'
import type { ResolvedOptions } from '../config/schema.js'

/**
 * The HTTP client for every upstream request. SSE streams hold a connection for
 * their whole life, so the pool is unbounded by default (undici's 128 would queue
 * the 129th stream), and no body timeout applies: a quiet stream is the health
 * monitor's business, not the HTTP client's.
 */
export function createUpstreamDispatcher (options: ResolvedOptions): Agent {
  const { connectTimeoutMs } = options.health
  return new Agent({
    connections: options.upstream.maxConnections === 0 ? null : options.upstream.maxConnections,
    pipelining: 1,
    connectTimeout: connectTimeoutMs,
    headersTimeout: connectTimeoutMs,
    bodyTimeout: 0
  })
}
