import createError, { type FastifyError } from '@fastify/error'

/** An error the proxy answers with itself: its status code is always set. */
export type ProxyError = FastifyError & { statusCode: number }
type ProxyErrorClass = new () => ProxyError

function defineClientError (code: string, message: string, statusCode: number): ProxyErrorClass {
  // createError sets statusCode on every instance when given one; its type marks it optional.
  return createError(code, message, statusCode) as unknown as ProxyErrorClass
}

export const InvalidConfigError = createError<[source: string, problems: string]>(
  'FST_MCP_SSE_INVALID_CONFIG',
  'Invalid fastify-mcp-sse-resilience %s:\n%s',
  500
)

export const ConfigFileError = createError<[path: string, reason: string]>(
  'FST_MCP_SSE_CONFIG_FILE',
  'Cannot read config file %s: %s',
  500
)

export const MetricsConflictError = createError<[registry: string, names: string]>(
  'FST_MCP_SSE_METRICS_CONFLICT',
  'Cannot add fastify-mcp-sse-resilience\'s metrics to %s: it already holds other metrics named %s. Pass another registry as `metricsRegistry`, or set metrics.enabled: false',
  500
)

export const MetricsPathTakenError = createError<[method: string, url: string]>(
  'FST_MCP_SSE_METRICS_PATH_TAKEN',
  'Cannot add route %s %s: fastify-mcp-sse-resilience serves its metrics there (metrics.path). To serve the proxy\'s metrics on fastify-metrics\' endpoint, register fastify-metrics before the plugin, or pass the registry it serves as `metricsRegistry`; else give the plugin another metrics.path',
  500
)

// The messages below reach clients: they never name the upstream host or carry a cause.
export const UpstreamUnavailableError = defineClientError(
  'FST_MCP_SSE_UPSTREAM_UNAVAILABLE',
  'The upstream server could not be reached',
  502
)

export const UpstreamTimeoutError = defineClientError(
  'FST_MCP_SSE_UPSTREAM_TIMEOUT',
  'The upstream server did not answer in time',
  504
)

export const SessionNotFoundError = defineClientError(
  'FST_MCP_SSE_SESSION_NOT_FOUND',
  'Session not found',
  404
)

export const SessionIdRequiredError = defineClientError(
  'FST_MCP_SSE_SESSION_ID_REQUIRED',
  'A session id is required',
  400
)

export const TooManySessionsError = defineClientError(
  'FST_MCP_SSE_TOO_MANY_SESSIONS',
  'Too many sessions; retry later',
  503
)

export const TooManyStreamsError = defineClientError(
  'FST_MCP_SSE_TOO_MANY_STREAMS',
  'Too many streams in this session',
  429
)

export const OriginNotAllowedError = defineClientError(
  'FST_MCP_SSE_ORIGIN_NOT_ALLOWED',
  'Origin not allowed',
  403
)

export const HostNotAllowedError = defineClientError(
  'FST_MCP_SSE_HOST_NOT_ALLOWED',
  'Host not allowed',
  403
)

export const StandaloneStreamTakenError = defineClientError(
  'FST_MCP_SSE_STANDALONE_STREAM_TAKEN',
  'Conflict: this session\'s standalone stream is already open',
  409
)

export const UpstreamReconnectingError = defineClientError(
  'FST_MCP_SSE_UPSTREAM_RECONNECTING',
  'The upstream stream is reconnecting; retry shortly',
  503
)

export const StoreUnavailableError = defineClientError(
  'FST_MCP_SSE_STORE_UNAVAILABLE',
  'The session store is unavailable; retry shortly',
  503
)

/** A 2026-07-28 POST whose MCP standard headers disagree with its body (the detail says which). */
export const HeaderMismatchError = createError<[detail: string]>(
  'FST_MCP_SSE_HEADER_MISMATCH',
  'Header mismatch: %s',
  400
) as unknown as new (detail: string) => ProxyError

/** Internal: a replica's append was refused because another replica has taken its stream over. */
export const StaleOwnerError = createError<[streamId: string, reason: 'fenced' | 'conflict' | 'gap']>(
  'FST_MCP_SSE_STALE_OWNER',
  'Stream %s is owned by another replica now (%s)',
  500
)

/** Internal: Redis no longer holds a stream this replica was recording: it lost its data. */
export const StoreResetError = createError<[streamId: string]>(
  'FST_MCP_SSE_STORE_RESET',
  'The store lost the record of stream %s',
  500
)
