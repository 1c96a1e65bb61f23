import type { FastifyReply } from 'fastify'
import type { HeaderMismatch } from '../wire/mcp-standard-headers.js'
import { SessionIdRequiredError, SessionNotFoundError, TooManySessionsError, TooManyStreamsError, UpstreamReconnectingError, OriginNotAllowedError, HostNotAllowedError, StandaloneStreamTakenError, StoreUnavailableError, HeaderMismatchError, type ProxyError } from '../errors.js'

// JSON-RPC "server error" codes, as the MCP TypeScript SDK's servers answer them.
const SESSION_NOT_FOUND = -32001
const SERVER_ERROR = -32000
// HeaderMismatch, MCP 2026-07-28 (basic/transports/streamable-http, Server Validation).
const HEADER_MISMATCH = -32020

/** Seconds a client is asked to wait before it tries to open a session again. */
const SESSION_RETRY_AFTER_SECONDS = 5

/** MCP clients read JSON-RPC error bodies; the proxy's error code rides in `data`. */
function sendJsonRpcError (reply: FastifyReply, error: ProxyError, jsonRpcCode: number, id: string | number | null = null): FastifyReply {
  // The reply may already carry the upstream's headers (an event stream refused after the fact).
  return reply.code(error.statusCode).type('application/json; charset=utf-8').send({
    jsonrpc: '2.0',
    error: { code: jsonRpcCode, message: error.message, data: { code: error.code } },
    id
  })
}

/** MCP standard headers that disagree with the body: 400, answering the request's id, before the upstream sees it. */
export function sendHeaderMismatch (reply: FastifyReply, mismatch: HeaderMismatch): FastifyReply {
  return sendJsonRpcError(reply, new HeaderMismatchError(mismatch.detail), HEADER_MISMATCH, mismatch.id)
}

/** A session the proxy does not know on this route: 404, so that the client initializes again (MCP spec). */
export function sendSessionNotFound (reply: FastifyReply): FastifyReply {
  return sendJsonRpcError(reply, new SessionNotFoundError(), SESSION_NOT_FOUND)
}

export function sendSessionIdRequired (reply: FastifyReply): FastifyReply {
  return sendJsonRpcError(reply, new SessionIdRequiredError(), SERVER_ERROR)
}

export function sendTooManySessions (reply: FastifyReply): FastifyReply {
  reply.header('retry-after', String(SESSION_RETRY_AFTER_SECONDS))
  return sendJsonRpcError(reply, new TooManySessionsError(), SERVER_ERROR)
}

/** Redis cannot be reached: a new session cannot be recorded, so none is opened (docs/scaling.md). */
export function sendStoreUnavailable (reply: FastifyReply): FastifyReply {
  reply.header('retry-after', String(SESSION_RETRY_AFTER_SECONDS))
  return sendJsonRpcError(reply, new StoreUnavailableError(), SERVER_ERROR)
}

/** One stream more than sessions.maxStreamsPerSession allows. */
export function sendTooManyStreams (reply: FastifyReply): FastifyReply {
  return sendJsonRpcError(reply, new TooManyStreamsError(), SERVER_ERROR)
}

/** A second GET for a standalone stream that has its client: 409, as the MCP SDK's server answers. */
export function sendStandaloneStreamTaken (reply: FastifyReply): FastifyReply {
  return sendJsonRpcError(reply, new StandaloneStreamTakenError(), SERVER_ERROR)
}

/** A browser origin that security.allowedOrigins and security.localhostOrigins do not allow. */
export function sendOriginNotAllowed (reply: FastifyReply): FastifyReply {
  return sendJsonRpcError(reply, new OriginNotAllowedError(), SERVER_ERROR)
}

/** A Host header that security.allowedHosts does not allow. */
export function sendHostNotAllowed (reply: FastifyReply): FastifyReply {
  return sendJsonRpcError(reply, new HostNotAllowedError(), SERVER_ERROR)
}

/** A legacy-sse POST whose upstream endpoint did not come back within health.connectTimeoutMs. */
export function sendUpstreamReconnecting (reply: FastifyReply): FastifyReply {
  reply.header('retry-after', '1')
  return sendJsonRpcError(reply, new UpstreamReconnectingError(), SERVER_ERROR)
}
