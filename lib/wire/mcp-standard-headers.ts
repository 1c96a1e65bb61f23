import type { IncomingHttpHeaders } from 'node:http'
import { firstHeaderValue } from '../upstream/headers.js'
import type { JsonRpcBody, JsonRpcMessage } from './json-rpc.js'

/** A POST whose MCP standard headers disagree with its body: answered 400 with JSON-RPC error -32020. */
export interface HeaderMismatch {
  /** The request's id, or null for a notification (or an id that is not one). */
  id: string | number | null
  detail: string
}

const PROTOCOL_VERSION_META_KEY = 'io.modelcontextprotocol/protocolVersion'

// The body field Mcp-Name mirrors, by method: the spec's table (tools/call, resources/read,
// prompts/get), and the tasks methods of SEP-2663's HTTP binding, which the SDK v2 server checks too.
const NAME_SOURCES: ReadonlyMap<string, string> = new Map([
  ['tools/call', 'name'],
  ['prompts/get', 'name'],
  ['resources/read', 'uri'],
  ['tasks/get', 'taskId'],
  ['tasks/update', 'taskId'],
  ['tasks/cancel', 'taskId']
])

const BASE64_PREFIX = '=?base64?'
const BASE64_SUFFIX = '?='
const CANONICAL_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Checks the `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers of a
 * 2026-07-28 POST against its body, as the spec's Server Validation asks and the
 * SDK v2 server does (basic/transports/streamable-http, Request Metadata):
 * - the version header must equal the body's `_meta` protocol version when the body
 *   names one; an `initialize` (a 2025-era handshake) that names none disagrees with it;
 * - a request must carry `Mcp-Method`, equal to its method; a notification's, when
 *   present, must equal its method (the spec leaves notifications' headers undefined);
 * - a request whose method has an `Mcp-Name` source must carry `Mcp-Name` when the body
 *   has that string, equal to it once a `=?base64?…?=` value is decoded.
 * Values compare case-sensitively; Node's parser already strips the whitespace around them.
 * A batch, a response, or a body that is not JSON-RPC is left to the upstream: 2026-07-28
 * POSTs carry one message, and the upstream answers the rest as it does without the proxy.
 */
export function standardHeaderMismatch (headers: IncomingHttpHeaders, body: JsonRpcBody): HeaderMismatch | undefined {
  const message = body.messages[0]
  if (body.batch || message === undefined || typeof message.method !== 'string') return undefined
  const method = message.method
  const isRequest = 'id' in message
  const id = isRequest && (typeof message.id === 'string' || typeof message.id === 'number') ? message.id : null
  const mismatch = (detail: string): HeaderMismatch => ({ id, detail })

  const claimed = claimedVersion(message)
  if (claimed !== undefined && claimed !== firstHeaderValue(headers['mcp-protocol-version'])) {
    return mismatch('the MCP-Protocol-Version header does not match the protocol version in the body\'s _meta')
  }
  if (isRequest && method === 'initialize' && claimed === undefined) {
    return mismatch('an initialize request (the 2025-era handshake) was sent with a 2026-07-28 MCP-Protocol-Version header')
  }
  const methodHeader = firstHeaderValue(headers['mcp-method'])
  if (methodHeader === undefined) return isRequest ? mismatch('the required Mcp-Method header is missing') : undefined
  if (methodHeader !== method) return mismatch('the Mcp-Method header does not match the body\'s method')
  return isRequest ? nameMismatch(firstHeaderValue(headers['mcp-name']), method, message, mismatch) : undefined
}

function nameMismatch (header: string | undefined, method: string, message: JsonRpcMessage, mismatch: (detail: string) => HeaderMismatch): HeaderMismatch | undefined {
  const field = NAME_SOURCES.get(method)
  if (field === undefined) return undefined
  const params = message.params
  const value = typeof params === 'object' && params !== null ? (params as Record<string, unknown>)[field] : undefined
  // A body without the string the header mirrors is the upstream's to refuse (invalid params).
  const bodyValue = typeof value === 'string' ? value : undefined
  if (header === undefined) return bodyValue === undefined ? undefined : mismatch(`the required Mcp-Name header is missing (params.${field} is set)`)
  const decoded = decodeHeaderValue(header)
  if (decoded === undefined) return mismatch('the Mcp-Name header carries an invalid Base64 value')
  return bodyValue !== undefined && decoded !== bodyValue ? mismatch(`the Mcp-Name header does not match params.${field}`) : undefined
}

/** The protocol version a message's `_meta` names, if it names one as a string. */
function claimedVersion (message: JsonRpcMessage): string | undefined {
  const params = message.params
  const meta = typeof params === 'object' && params !== null ? (params as Record<string, unknown>)._meta : undefined
  const version = typeof meta === 'object' && meta !== null ? (meta as Record<string, unknown>)[PROTOCOL_VERSION_META_KEY] : undefined
  return typeof version === 'string' ? version : undefined
}

/** A header value as the client meant it: `=?base64?…?=` decoded from UTF-8; undefined when that is not valid. */
function decodeHeaderValue (value: string): string | undefined {
  if (!value.startsWith(BASE64_PREFIX) || !value.endsWith(BASE64_SUFFIX)) return value
  const encoded = value.slice(BASE64_PREFIX.length, value.length - BASE64_SUFFIX.length)
  if (!CANONICAL_BASE64.test(encoded)) return undefined
  try {
    return utf8.decode(Buffer.from(encoded, 'base64'))
  } catch {
    return undefined
  }
}
