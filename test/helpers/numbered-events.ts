import { SseClient } from './sse-client.js'

/** The numbers a CountingUpstream sent, as a client received them. */
export const numbersOf = (client: SseClient): number[] => client.events.map((event) => Number(event.data))

/** Resolves once the client has received number `atLeast` or a later one. */
export async function waitForNumber (client: SseClient, atLeast: number, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while ((numbersOf(client).at(-1) ?? 0) < atLeast) {
    if (Date.now() > deadline) throw new Error(`client reached ${numbersOf(client).at(-1) ?? 0}, expected ${atLeast}`)
    await client.waitForEvents(client.events.length + 1, deadline - Date.now())
  }
}

/** Every number from 1 to the last one, each once, in order. */
export function exactSequence (numbers: readonly number[]): boolean {
  return numbers.every((n, index) => n === index + 1)
}

const MCP_ACCEPT = 'application/json, text/event-stream'

/**
 * Opens an MCP session by hand (not with the SDK client, which would hold the
 * standalone stream itself); the headers its requests need, and the initialize
 * response's text.
 */
export async function openMcpSession (url: string): Promise<{ sessionId: string, headers: Record<string, string>, text: string }> {
  const initialized = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: MCP_ACCEPT },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } })
  })
  const text = await initialized.text()
  const sessionId = initialized.headers.get('mcp-session-id') ?? ''
  return { sessionId, headers: { 'content-type': 'application/json', accept: MCP_ACCEPT, 'mcp-session-id': sessionId }, text }
}

/**
 * An MCP session opened and initialized by hand through `url`, with its standalone
 * stream open there (closed when the test ends) and its first event in.
 */
export async function openMcpSessionWithStream (test: { teardown: (fn: () => void) => void }, url: string): Promise<{ sessionId: string, headers: Record<string, string>, standalone: SseClient }> {
  const { sessionId, headers } = await openMcpSession(url)
  await fetch(url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })
  const standalone = await SseClient.open(url, { 'mcp-session-id': sessionId })
  test.teardown(() => standalone.close())
  await standalone.waitForEvents(1)
  return { sessionId, headers, standalone }
}
