import type { FastifyRequest } from 'fastify'
import { firstHeaderValue } from '../upstream/headers.js'

// MCP 2026-07-28 removed sessions and resumption: a POST's stream belongs to its
// request, and closing it means cancel (basic/transports/streamable-http).
const REQUEST_SCOPED_SINCE = '2026-07-28'
const PROTOCOL_VERSION = /^\d{4}-\d{2}-\d{2}$/

/** True for requests of MCP 2026-07-28 or later, whose streams are never kept or resumed. */
export function isRequestScoped (request: FastifyRequest): boolean {
  const version = firstHeaderValue(request.headers['mcp-protocol-version'])
  return version !== undefined && PROTOCOL_VERSION.test(version) && version >= REQUEST_SCOPED_SINCE
}
