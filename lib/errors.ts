import createError from '@fastify/error'

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

// The messages below reach clients: they never name the upstream host or carry a cause.
export const UpstreamUnavailableError = createError(
  'FST_MCP_SSE_UPSTREAM_UNAVAILABLE',
  'The upstream server could not be reached',
  502
)

export const UpstreamTimeoutError = createError(
  'FST_MCP_SSE_UPSTREAM_TIMEOUT',
  'The upstream server did not answer in time',
  504
)

export const SessionNotFoundError = createError(
  'FST_MCP_SSE_SESSION_NOT_FOUND',
  'Session not found',
  404
)

export const SessionIdRequiredError = createError(
  'FST_MCP_SSE_SESSION_ID_REQUIRED',
  'A session id is required',
  400
)

export const TooManySessionsError = createError(
  'FST_MCP_SSE_TOO_MANY_SESSIONS',
  'Too many sessions; retry later',
  503
)
