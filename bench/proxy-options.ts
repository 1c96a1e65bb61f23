import type { McpSseResilienceOptions } from '../lib/index.js'

/** The plugin configurations the scenarios run. Metrics are off: the peers export none either. */

export const STREAM_PATH = '/stream'
export const MCP_PATH = '/mcp'

function sseRoute (upstreamOrigin: string): McpSseResilienceOptions['routes'] {
  return [{ kind: 'sse', path: STREAM_PATH, upstream: `${upstreamOrigin}${STREAM_PATH}` }]
}

/**
 * `plugin` in the throughput runs: history and dedupe on, as by default. A client
 * that leaves ends its upstream at once, so that one run leaves no stream behind
 * to load the next.
 */
export function pluginOptions (upstreamOrigin: string): McpSseResilienceOptions {
  return { routes: sseRoute(upstreamOrigin), metrics: { enabled: false }, sessions: { detachGraceSeconds: 0 } }
}

/**
 * `plugin-redis`: `plugin` with the Redis store (docs/scaling.md), everything else
 * alike. Each launch gets a key prefix of its own, deleted once it stops.
 */
export function redisStoreOptions (base: McpSseResilienceOptions, redisUrl: string, keyPrefix: string): McpSseResilienceOptions {
  return { ...base, store: { kind: 'redis', url: redisUrl, keyPrefix } }
}

/** `plugin-bare`: the same without history and dedupe, to price them. */
export function bareOptions (upstreamOrigin: string): McpSseResilienceOptions {
  return { ...pluginOptions(upstreamOrigin), history: { enabled: false }, reconnect: { dedupeWindow: 0 } }
}

/** The reconnection scenario: the defaults, so streams outlive their clients for resumes. */
export function resilienceOptions (upstreamOrigin: string): McpSseResilienceOptions {
  return { routes: sseRoute(upstreamOrigin), metrics: { enabled: false } }
}

/** The load scenario: a history deep enough for a client's time away and its catch-up. */
export const LOAD_HISTORY = { maxEvents: 5000, maxBytes: 8 * 1024 * 1024 } as const

export function loadOptions (upstreamOrigin: string): McpSseResilienceOptions {
  return { routes: sseRoute(upstreamOrigin), metrics: { enabled: false }, history: { ...LOAD_HISTORY } }
}

/** The idle-sessions measurement: a streamable-http route, room for more than 10000 sessions. */
export function sessionsOptions (upstreamOrigin: string): McpSseResilienceOptions {
  return {
    routes: [{ kind: 'streamable-http', path: MCP_PATH, upstream: `${upstreamOrigin}${MCP_PATH}` }],
    metrics: { enabled: false },
    sessions: { maxSessions: 20_000 }
  }
}
