/** A JSON-RPC message as the proxy inspects it: only the fields it needs are read. */
export type JsonRpcMessage = Record<string, unknown>

/** A request body as JSON-RPC: its messages, and whether it was a batch (an array). */
export interface JsonRpcBody {
  readonly messages: readonly JsonRpcMessage[]
  readonly batch: boolean
}

const NOT_JSON_RPC: JsonRpcBody = { messages: [], batch: false }

// Several steps of one POST read its messages (header checks, metrics, session state,
// the ids its stream owes): the body is parsed once, and forgotten with it.
const parsedBodies = new WeakMap<Buffer, JsonRpcBody>()

/** The JSON-RPC messages of a request body, parsed once per body Buffer; none when it is not JSON. */
export function jsonRpcBody (body: unknown): JsonRpcBody {
  if (!Buffer.isBuffer(body)) return NOT_JSON_RPC
  let parsed = parsedBodies.get(body)
  if (parsed === undefined) {
    parsed = parseBody(body.toString('utf8'))
    parsedBodies.set(body, parsed)
  }
  return parsed
}

/** The JSON-RPC messages of a request body, one or a batch; none when it is not JSON. */
export function jsonRpcMessages (body: unknown): readonly JsonRpcMessage[] {
  return jsonRpcBody(body).messages
}

/** The ids of the JSON-RPC requests in a POST body: the responses its stream owes. */
export function jsonRpcRequestIds (body: unknown): Set<string> {
  return new Set(jsonRpcMessages(body)
    .filter((message) => 'method' in message && 'id' in message)
    .map((message) => JSON.stringify(message.id)))
}

export function isInitialize (body: unknown): boolean {
  return jsonRpcMessages(body).some((message) => message.method === 'initialize')
}

/** The ids of the JSON-RPC responses an event's data carries (one, or a batch). */
export function answeredIds (data: string): string[] {
  // Cheap test first: most events on a stream are notifications.
  if (!data.includes('"result"') && !data.includes('"error"')) return []
  return parseMessages(data)
    .filter((message) => 'id' in message && ('result' in message || 'error' in message))
    .map((message) => JSON.stringify(message.id))
}

/** The JSON-RPC messages of a text, one or a batch; none when it is not JSON. */
export function parseMessages (text: string): readonly JsonRpcMessage[] {
  return parseBody(text).messages
}

function parseBody (text: string): JsonRpcBody {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return NOT_JSON_RPC
  }
  const batch = Array.isArray(parsed)
  const items: unknown[] = Array.isArray(parsed) ? parsed : [parsed]
  return { messages: items.filter((item): item is JsonRpcMessage => typeof item === 'object' && item !== null), batch }
}
