import { isEventStream } from './content-type.js'
import { parseMessages } from './json-rpc.js'
import { createSseParser } from './sse-parser.js'

/** The lists an MCP server may say changed (`notifications/<list>/list_changed`). */
export type ChangeableList = 'tools' | 'prompts' | 'resources'

const LISTS: readonly ChangeableList[] = ['tools', 'prompts', 'resources']

export function isChangeableList (name: string): name is ChangeableList {
  return (LISTS as readonly string[]).includes(name)
}

/** What the proxy needs of an MCP server's capabilities: the lists it announces changes of. */
export interface ServerCapabilities {
  readonly listChanged: readonly ChangeableList[]
}

/**
 * The capabilities in an initialize result, when `text` (a JSON-RPC message or
 * batch, as an SSE event's data or a JSON body) carries one.
 */
export function serverCapabilitiesIn (text: string): ServerCapabilities | undefined {
  // Cheap test first: this runs on the events of a stream until the answer comes.
  if (!text.includes('"capabilities"')) return undefined
  for (const message of parseMessages(text)) {
    const result = message.result as { protocolVersion?: unknown, capabilities?: unknown } | undefined
    if (typeof result?.protocolVersion !== 'string' || !isRecord(result.capabilities)) continue
    const capabilities = result.capabilities
    return { listChanged: LISTS.filter((list) => isRecord(capabilities[list]) && capabilities[list].listChanged === true) }
  }
  return undefined
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * The capabilities in an initialize response's body: JSON, or an SSE stream whose
 * events carry the result (MCP Streamable HTTP lets the server choose).
 */
export function serverCapabilitiesInBody (body: Buffer, contentType: string | undefined, maxEventBytes: number): ServerCapabilities | undefined {
  if (!isEventStream(contentType)) return serverCapabilitiesIn(body.toString('utf8'))
  let found: ServerCapabilities | undefined
  const parser = createSseParser({
    onEvent: (event) => { found ??= serverCapabilitiesIn(event.data) },
    onComment: () => {},
    onRetry: () => {},
    onMalformedLine: () => {},
    onOversizedEvent: () => {}
  }, maxEventBytes)
  parser.feed(body)
  return found
}
