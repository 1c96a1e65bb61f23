import type { FastifyRequest } from 'fastify'
import { parseJsonRpcBody, type JsonRpcBody } from '../wire/json-rpc.js'

/**
 * The request body's JSON-RPC messages, parsed the first time a step asks and kept on the
 * request: a POST's header check, metrics, session state and stream all read the one parse.
 */
export function jsonRpcBodyOf (request: FastifyRequest): JsonRpcBody {
  request.mcpSseBody ??= parseJsonRpcBody(request.body)
  return request.mcpSseBody
}
