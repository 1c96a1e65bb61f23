/** A JSON-RPC message as the proxy inspects it: only the fields it needs are read. */
export type JsonRpcMessage = Record<string, unknown>

/** A request body as JSON-RPC: its messages, and whether it was a batch (an array). */
export interface JsonRpcBody {
  readonly messages: readonly JsonRpcMessage[]
  readonly batch: boolean
}

const NOT_JSON_RPC: JsonRpcBody = { messages: [], batch: false }

/** A request body's JSON-RPC messages, one or a batch; none when it is not JSON. Routes read it once per request (routes/json-rpc-body.ts). */
export function parseJsonRpcBody (body: unknown): JsonRpcBody {
  return Buffer.isBuffer(body) ? parseBody(body.toString('utf8')) : NOT_JSON_RPC
}

/** The ids of the JSON-RPC requests in a POST body: the responses its stream owes. */
export function jsonRpcRequestIds (messages: readonly JsonRpcMessage[]): Set<string> {
  return new Set(messages
    .filter((message) => 'method' in message && 'id' in message)
    .map((message) => JSON.stringify(message.id)))
}

export function isInitialize (messages: readonly JsonRpcMessage[]): boolean {
  return messages.some((message) => message.method === 'initialize')
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
