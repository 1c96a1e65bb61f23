import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http'
import type { RunningProxy } from './proxy.js'

export const MCP_ACCEPT = 'application/json, text/event-stream'

export interface Exchange {
  label: string
  status: number
  headers: IncomingHttpHeaders
  body: string
}

/**
 * One request over its own socket. The body is read to its end, or, for an event
 * stream that stays open, up to its first chunk.
 */
export async function exchange (label: string, url: string, method: string, headers: OutgoingHttpHeaders, body?: string): Promise<Exchange> {
  // Node's client sends Trailer only with a chunked body.
  const { trailer, ...withoutTrailer } = headers
  const sent = body === undefined ? withoutTrailer : headers
  return await new Promise<Exchange>((resolve, reject) => {
    const request = httpRequest(url, { method, agent: false, headers: sent }, (response) => {
      let text = ''
      const done = (): void => resolve({ label, status: response.statusCode ?? 0, headers: response.headers, body: text })
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => {
        text += chunk
        if (String(response.headers['content-type']).startsWith('text/event-stream') && /\n\n/.test(text)) {
          response.destroy()
          done()
        }
      })
      response.once('end', done)
    })
    request.once('error', reject)
    // Sent chunked: the proxy must not pass the client's framing on.
    if (body !== undefined) {
      request.write(body.slice(0, 10))
      request.write(body.slice(10))
    }
    request.end()
  })
}

/** A whole session on every route kind, every request with `headers`: what the client got back. */
export async function walkEveryRoute (proxy: RunningProxy, headers: OutgoingHttpHeaders): Promise<Exchange[]> {
  const json = { ...headers, 'content-type': 'application/json', accept: MCP_ACCEPT }
  const exchanges: Exchange[] = []
  exchanges.push(await exchange('sse GET', proxy.url('/events'), 'GET', { ...headers, accept: 'text/event-stream' }))
  const initialize = await exchange('streamable-http initialize', proxy.url('/mcp'), 'POST', json,
    JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'security', version: '1' } } }))
  exchanges.push(initialize)
  const sessionId = String(initialize.headers['mcp-session-id'])
  exchanges.push(await exchange('streamable-http POST stream', proxy.url('/mcp'), 'POST', { ...json, 'mcp-session-id': sessionId },
    JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'anything' } })))
  exchanges.push(await exchange('streamable-http GET stream', proxy.url('/mcp'), 'GET', { ...headers, accept: 'text/event-stream', 'mcp-session-id': sessionId }))
  exchanges.push(await exchange('streamable-http DELETE', proxy.url('/mcp'), 'DELETE', { ...headers, 'mcp-session-id': sessionId }))
  const legacy = await exchange('legacy-sse GET', proxy.url('/sse'), 'GET', { ...headers, accept: 'text/event-stream' })
  exchanges.push(legacy)
  const endpoint = /^data: (.+)$/m.exec(legacy.body)?.[1] ?? ''
  exchanges.push(await exchange('legacy-sse POST', proxy.url(endpoint), 'POST', { ...headers, 'content-type': 'application/json' },
    JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/list' })))
  return exchanges
}
