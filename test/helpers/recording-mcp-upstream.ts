import { randomUUID } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { once } from 'node:events'
import type { Test } from 'tap'
import type { McpSseResilienceOptions } from '../../lib/index.js'
import { startProxy, type RunningProxy } from './proxy.js'

export interface RecordedRequest {
  method: string
  url: string
  headers: IncomingHttpHeaders
  body: Buffer
}

interface JsonRpcMessage {
  id?: string | number
  method?: string
  params?: unknown
}

/**
 * A small MCP upstream over node:http that records every request it gets, byte for
 * byte, and lets a test add headers to every response. It serves:
 *   - Streamable HTTP on /mcp: initialize answers JSON with an `upstream-session-*` id;
 *     any other request answers an SSE stream (a notification, then the response,
 *     both with upstream ids, echoing the request's params); GET opens a standalone
 *     stream; DELETE ends the session: its GET streams first, then the answer, after
 *     `deleteAnswerDelayMs` (as the MCP SDK's server closes its streams before it answers);
 *   - HTTP+SSE on /sse and /messages: the endpoint event, then one answer per POST;
 *   - plain SSE on /events.
 */
export class RecordingMcpUpstream {
  readonly server: Server
  readonly requests: RecordedRequest[] = []
  readonly sessionIds: string[] = []
  readonly streams = new Set<ServerResponse>()
  /** Added to every response the upstream sends. */
  responseHeaders: Record<string, string> = {}
  deleteAnswerDelayMs = 0
  initializeAnswerDelayMs = 0
  /** What initialize answers with as the server's capabilities. */
  capabilities: Record<string, unknown> = {}
  /** Each open session's GET streams. */
  readonly #sessions = new Map<string, Set<ServerResponse>>()
  readonly #legacyStreams = new Map<string, ServerResponse>()

  private constructor () {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = []
      request.on('data', (chunk: Buffer) => chunks.push(chunk))
      request.once('end', () => {
        const recorded = { method: request.method ?? '', url: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks) }
        this.requests.push(recorded)
        this.#handle(request, response, recorded)
      })
    })
  }

  static async start (): Promise<RecordingMcpUpstream> {
    const upstream = new RecordingMcpUpstream()
    upstream.server.listen(0, '127.0.0.1')
    await once(upstream.server, 'listening')
    return upstream
  }

  get origin (): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }

  /** What a restart does to the sessions: every one is unknown from now on (their streams stay open). */
  forgetSessions (): void {
    this.#sessions.clear()
  }

  /** Sends a JSON-RPC notification on every open session's standalone (GET) streams, with an upstream id. */
  notifyStandaloneStreams (method: string, params?: unknown): void {
    for (const streams of this.#sessions.values()) {
      for (const stream of streams) stream.write(`id: n-${randomUUID()}\ndata: ${JSON.stringify({ jsonrpc: '2.0', method, params })}\n\n`)
    }
  }

  async close (): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  #handle (request: IncomingMessage, response: ServerResponse, recorded: RecordedRequest): void {
    const url = new URL(recorded.url, 'http://upstream')
    if (url.pathname === '/mcp') {
      this.#streamableHttp(request, response, recorded)
    } else if (url.pathname === '/sse' && recorded.method === 'GET') {
      const sessionId = `upstream-legacy-${randomUUID()}`
      this.sessionIds.push(sessionId)
      this.#openStream(response)
      this.#legacyStreams.set(sessionId, response)
      response.write(`event: endpoint\ndata: /messages?sessionId=${sessionId}\n\n`)
    } else if (url.pathname === '/messages' && recorded.method === 'POST') {
      const stream = this.#legacyStreams.get(url.searchParams.get('sessionId') ?? '')
      if (stream === undefined) {
        this.#json(response, 404, { error: 'unknown session' })
        return
      }
      const message = parse(recorded.body)
      this.#send(response, 202, {}, 'Accepted')
      const result = message?.method === 'initialize' ? this.#initializeResult() : { echo: message?.params }
      if (message?.id !== undefined) stream.write(`id: l-${String(message.id)}\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: message.id, result })}\n\n`)
    } else if (url.pathname === '/events' && recorded.method === 'GET') {
      this.#openStream(response)
      response.write('id: e-1\ndata: hello\n\n')
    } else {
      this.#json(response, 404, { error: 'not found' })
    }
  }

  #streamableHttp (request: IncomingMessage, response: ServerResponse, recorded: RecordedRequest): void {
    const sessionHeader = request.headers['mcp-session-id']
    const sessionId = typeof sessionHeader === 'string' ? sessionHeader : undefined
    const message = parse(recorded.body)
    if (recorded.method === 'POST' && message?.method === 'initialize') {
      const newSession = `upstream-session-${randomUUID()}`
      this.#sessions.set(newSession, new Set())
      this.sessionIds.push(newSession)
      const result = this.#initializeResult()
      setTimeout(() => this.#json(response, 200, { jsonrpc: '2.0', id: message.id, result }, { 'mcp-session-id': newSession }), this.initializeAnswerDelayMs)
      return
    }
    if (sessionId === undefined || !this.#sessions.has(sessionId)) {
      this.#json(response, sessionId === undefined ? 400 : 404, { jsonrpc: '2.0', error: { code: sessionId === undefined ? -32000 : -32001, message: 'Session not found' }, id: null })
      return
    }
    if (recorded.method === 'DELETE') {
      for (const stream of this.#sessions.get(sessionId) ?? []) stream.end()
      this.#sessions.delete(sessionId)
      setTimeout(() => this.#send(response, 200, {}, ''), this.deleteAnswerDelayMs)
      return
    }
    if (recorded.method === 'GET') {
      this.#openStream(response)
      const sessionStreams = this.#sessions.get(sessionId)
      sessionStreams?.add(response)
      response.once('close', () => sessionStreams?.delete(response))
      response.write('id: g-0\ndata: \n\n')
      return
    }
    if (message?.id === undefined) {
      this.#send(response, 202, {}, '')
      return
    }
    this.#openStream(response)
    response.write(`id: p-1\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: message.params } })}\n\n`)
    response.end(`id: p-2\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: message.id, result: { echo: message.params } })}\n\n`)
  }

  #initializeResult (): unknown {
    return { protocolVersion: '2025-11-25', capabilities: this.capabilities, serverInfo: { name: 'recording', version: '1' } }
  }

  #openStream (response: ServerResponse): void {
    response.writeHead(200, { ...this.responseHeaders, 'content-type': 'text/event-stream' })
    response.flushHeaders()
    this.streams.add(response)
    response.once('close', () => this.streams.delete(response))
  }

  #json (response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    this.#send(response, status, { ...headers, 'content-type': 'application/json' }, JSON.stringify(body))
  }

  /** Chunked, as a streaming server sends it, so that any header a test adds (Trailer too) is valid. */
  #send (response: ServerResponse, status: number, headers: Record<string, string>, body: string): void {
    response.writeHead(status, { ...this.responseHeaders, ...headers })
    response.write(body)
    response.end()
  }
}

function parse (body: Buffer): JsonRpcMessage | undefined {
  try {
    const value: unknown = JSON.parse(body.toString('utf8'))
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as JsonRpcMessage : undefined
  } catch {
    return undefined
  }
}

/** Options with one route of every kind in front of `upstream`: /mcp, /sse with /messages, and /events. */
export function everyRouteKind (upstream: RecordingMcpUpstream): McpSseResilienceOptions {
  return {
    routes: [
      { kind: 'streamable-http', path: '/mcp', upstream: `${upstream.origin}/mcp` },
      { kind: 'legacy-sse', path: '/sse', messagesPath: '/messages', upstream: `${upstream.origin}/sse` },
      { kind: 'sse', path: '/events', upstream: `${upstream.origin}/events` }
    ],
    health: { heartbeatSeconds: 0 }
  }
}

/** A RecordingMcpUpstream behind a proxy with one route of every kind, listening on `host` (127.0.0.1 unless told). */
export async function proxyOnEveryRouteKind (test: Test, extra: Omit<McpSseResilienceOptions, 'routes'> = {}, host?: string): Promise<{ upstream: RecordingMcpUpstream, proxy: RunningProxy }> {
  const upstream = await RecordingMcpUpstream.start()
  test.teardown(async () => await upstream.close())
  const proxy = await startProxy(test, { ...everyRouteKind(upstream), ...extra }, host)
  return { upstream, proxy }
}
