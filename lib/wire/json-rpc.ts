/** A JSON-RPC message as the proxy inspects it: only the fields it needs are read. */
export type JsonRpcMessage = Record<string, unknown>

/** The JSON-RPC messages of a request body, one or a batch; none when it is not JSON. */
export function jsonRpcMessages (body: unknown): JsonRpcMessage[] {
  if (!Buffer.isBuffer(body)) return []
  return parseMessages(body.toString('utf8'))
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
export function parseMessages (text: string): JsonRpcMessage[] {
  try {
    const parsed: unknown = JSON.parse(text)
    return (Array.isArray(parsed) ? parsed : [parsed]).filter((item): item is JsonRpcMessage => typeof item === 'object' && item !== null)
  } catch {
    return []
  }
}
