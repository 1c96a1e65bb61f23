import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'

/**
 * Just enough of an MCP server for idle sessions: a POST `initialize` gets a JSON
 * answer and a fresh Mcp-Session-Id; any other POST gets 202.
 */
export function answerMcpPost (request: IncomingMessage, response: ServerResponse): void {
  const parts: Buffer[] = []
  request.on('data', (part: Buffer) => parts.push(part))
  request.once('end', () => {
    const message = parseMessage(Buffer.concat(parts).toString('utf8'))
    if (message?.method !== 'initialize') {
      response.writeHead(202).end()
      return
    }
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: message.id ?? null,
      result: { protocolVersion: '2025-06-18', capabilities: {}, serverInfo: { name: 'bench-upstream', version: '1.0.0' } }
    })
    response.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': randomUUID() }).end(body)
  })
}

function parseMessage (text: string): { method?: unknown, id?: unknown } | undefined {
  try {
    const parsed: unknown = JSON.parse(text)
    return typeof parsed === 'object' && parsed !== null ? parsed : undefined
  } catch {
    return undefined
  }
}
