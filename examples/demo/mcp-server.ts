import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { z } from 'zod'
import { serveCountingStream } from './counting-stream.js'

/**
 * An example MCP server built with the official TypeScript SDK. It keeps no
 * event store, like most MCP servers: it cannot replay anything itself.
 * It serves both transports, and a plain SSE stream:
 *   - Streamable HTTP on /mcp (with sessions)
 *   - HTTP+SSE (2024-11-05) on /sse, with messages POSTed to /messages
 *   - a counting SSE stream on /events
 */
export function createDemoMcpServer (): McpServer {
  const server = new McpServer({ name: 'fastify-mcp-sse-resilience-demo', version: '1.0.0' })

  server.registerTool('echo', {
    description: 'Returns its text.',
    inputSchema: { text: z.string() }
  }, async ({ text }) => ({ content: [{ type: 'text', text }] }))

  server.registerTool('countdown', {
    description: 'Counts down, sending one progress notification per step, then answers "liftoff".',
    inputSchema: { steps: z.number().int().min(1).max(10000), intervalMs: z.number().int().min(0).max(10000) }
  }, async ({ steps, intervalMs }, extra) => {
    const progressToken = extra._meta?.progressToken
    for (let step = 1; step <= steps; step++) {
      if (progressToken !== undefined) {
        await extra.sendNotification({
          method: 'notifications/progress',
          params: { progressToken, progress: step, total: steps, message: `step ${step}` }
        })
      }
      if (intervalMs > 0) await new Promise((resolve) => setTimeout(resolve, intervalMs))
    }
    return { content: [{ type: 'text', text: 'liftoff' }] }
  })

  server.registerTool('announce', {
    description: 'Sends a notifications/tools/list_changed on the standalone GET stream.',
    inputSchema: {}
  }, async () => {
    server.sendToolListChanged()
    return { content: [{ type: 'text', text: 'announced' }] }
  })

  return server
}

export interface DemoUpstream {
  readonly server: Server
  readonly origin: string
  /** Upstream session ids the server has issued, newest last. */
  readonly sessionIds: string[]
  close: () => Promise<void>
}

export async function startDemoUpstream (port = 0, host = '127.0.0.1', eventIntervalMs = 200): Promise<DemoUpstream> {
  const streamable = new Map<string, StreamableHTTPServerTransport>()
  const legacy = new Map<string, SSEServerTransport>()
  const sessionIds: string[] = []

  async function handleStreamable (request: IncomingMessage, response: ServerResponse): Promise<void> {
    const sessionId = request.headers['mcp-session-id']
    const existing = typeof sessionId === 'string' ? streamable.get(sessionId) : undefined
    if (existing !== undefined) {
      await existing.handleRequest(request, response)
      return
    }
    if (request.method !== 'POST' || sessionId !== undefined) {
      response.writeHead(sessionId === undefined ? 400 : 404, { 'content-type': 'application/json' })
      response.end(JSON.stringify({ jsonrpc: '2.0', error: { code: sessionId === undefined ? -32000 : -32001, message: sessionId === undefined ? 'Bad Request: Mcp-Session-Id header is required' : 'Session not found' }, id: null }))
      return
    }
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        streamable.set(id, transport)
        sessionIds.push(id)
      },
      onsessionclosed: (id) => { streamable.delete(id) }
    })
    await createDemoMcpServer().connect(transport)
    await transport.handleRequest(request, response)
  }

  async function handleLegacy (request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    if (request.method === 'GET' && url.pathname === '/sse') {
      const transport = new SSEServerTransport('/messages', response)
      legacy.set(transport.sessionId, transport)
      sessionIds.push(transport.sessionId)
      response.on('close', () => legacy.delete(transport.sessionId))
      await createDemoMcpServer().connect(transport)
      return
    }
    const transport = legacy.get(url.searchParams.get('sessionId') ?? '')
    if (transport === undefined) {
      response.writeHead(404).end('Session not found')
      return
    }
    await transport.handlePostMessage(request, response)
  }

  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://upstream')
    if (url.pathname === '/events' && request.method === 'GET') {
      serveCountingStream(request, response, eventIntervalMs)
      return
    }
    if (url.pathname !== '/mcp' && url.pathname !== '/sse' && url.pathname !== '/messages') {
      response.writeHead(404).end()
      return
    }
    const handled = url.pathname === '/mcp' ? handleStreamable(request, response) : handleLegacy(request, response, url)
    handled.catch((error: unknown) => {
      if (!response.headersSent) response.writeHead(500)
      response.end(String(error))
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, resolve)
  })
  const address = server.address() as AddressInfo
  return {
    server,
    origin: `http://${host}:${address.port}`,
    sessionIds,
    async close () {
      await Promise.all([...streamable.values(), ...legacy.values()].map(async (transport) => await transport.close()))
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
