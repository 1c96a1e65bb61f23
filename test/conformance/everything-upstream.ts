import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { BoundedEventStore } from './bounded-event-store.js'
import { createEverythingServer } from './everything-server.js'

/**
 * An MCP server (SDK v1, Streamable HTTP with sessions, spec 2025-11-25) with every tool,
 * resource and prompt the conformance suite's server scenarios call, on `/mcp`.
 *
 * - Each session has its own McpServer and its own bounded event store, so a client can
 *   resume a stream (GET with Last-Event-ID), and the priming events carry `retry:`.
 * - DNS rebinding (spec: basic/security_best_practices): a Host or Origin that is not a
 *   loopback name gets 403, whatever the port; the proxy in front of it sends its own.
 * - At most `maxSessions` sessions: one more initialize gets 503. A DELETE ends one, and
 *   so do `sessionIdleMs` without a request (not every scenario deletes its session).
 *
 * Runnable on its own: `node --import ./node_modules/@tapjs/typescript/dist/esm/import.mjs
 * test/conformance/everything-upstream.ts [port]` prints its URL.
 */

export interface EverythingUpstreamOptions {
  port: number
  host: string
  maxSessions: number
  sessionIdleMs: number
  maxEventsPerSession: number
  maxSubscriptions: number
  /** The `retry:` of every priming event, in ms: how soon a client should come back. */
  retryIntervalMs: number
  reconnectionAnswerDelayMs: number
}

export interface EverythingUpstream {
  /** The MCP endpoint, http://127.0.0.1:<port>/mcp. */
  readonly url: string
  readonly sessionCount: number
  close: () => Promise<void>
}

const DEFAULTS: EverythingUpstreamOptions = {
  port: 0,
  host: '127.0.0.1',
  maxSessions: 64,
  sessionIdleMs: 300_000,
  maxEventsPerSession: 1000,
  maxSubscriptions: 16,
  retryIntervalMs: 500,
  reconnectionAnswerDelayMs: 100
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]'])

export async function startEverythingUpstream (overrides: Partial<EverythingUpstreamOptions> = {}): Promise<EverythingUpstream> {
  const options = { ...DEFAULTS, ...overrides }
  const sessions = new Map<string, { transport: StreamableHTTPServerTransport, idle: NodeJS.Timeout }>()

  async function openSession (request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (sessions.size >= options.maxSessions) {
      refuse(response, 503, -32000, `At most ${options.maxSessions} sessions at once`)
      return
    }
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: randomUUID,
      eventStore: new BoundedEventStore(options.maxEventsPerSession),
      retryInterval: options.retryIntervalMs,
      onsessioninitialized: (id) => {
        const idle = setTimeout(() => { transport.close().catch(() => {}) }, options.sessionIdleMs).unref()
        sessions.set(id, { transport, idle })
      }
    })
    const server = createEverythingServer(options)
    // Ends with the transport: a DELETE, the idle timer, or close() below.
    server.server.onclose = () => {
      const id = transport.sessionId ?? ''
      clearTimeout(sessions.get(id)?.idle)
      sessions.delete(id)
    }
    await server.connect(transport)
    // Anything but an initialize is refused by the transport (400), and no session is kept.
    await transport.handleRequest(request, response)
  }

  async function handle (request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (!admitted(request, response)) return
    const sessionId = request.headers['mcp-session-id']
    if (typeof sessionId === 'string') {
      const session = sessions.get(sessionId)
      if (session === undefined) {
        refuse(response, 404, -32001, 'Session not found')
      } else {
        session.idle.refresh()
        await session.transport.handleRequest(request, response)
      }
    } else if (request.method === 'POST') {
      await openSession(request, response)
    } else {
      refuse(response, 400, -32000, 'Bad Request: Mcp-Session-Id header is required')
    }
  }

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (response.headersSent) response.destroy()
      else refuse(response, 500, -32603, `Internal error: ${String(error)}`)
    })
  })
  server.listen(options.port, options.host)
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `http://${options.host}:${port}/mcp`,
    get sessionCount () { return sessions.size },
    async close () {
      await Promise.all([...sessions.values()].map(async ({ transport }) => await transport.close()))
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

/** What is wrong with the request's Host or Origin, if either names something other than this machine. */
/** A request for /mcp from an allowed host and origin; anything else is answered here (404, 403): false. */
export function admitted (request: IncomingMessage, response: ServerResponse): boolean {
  if (new URL(request.url ?? '/', 'http://upstream').pathname !== '/mcp') {
    refuse(response, 404, -32000, 'Not found: the MCP endpoint is /mcp')
    return false
  }
  const foreign = foreignHostOrOrigin(request)
  if (foreign !== undefined) {
    refuse(response, 403, -32000, `Forbidden: ${foreign}`)
    return false
  }
  return true
}

export function foreignHostOrOrigin (request: IncomingMessage): string | undefined {
  const host = request.headers.host
  if (host === undefined || !LOOPBACK_NAMES.has(hostnameOf(`http://${host}`))) return `Host ${String(host)} is not a loopback name`
  const origin = request.headers.origin
  if (origin !== undefined && !LOOPBACK_NAMES.has(hostnameOf(origin))) return `Origin ${origin} is not a loopback origin`
  return undefined
}

function hostnameOf (url: string): string {
  try {
    return new URL(url).hostname
  } catch {
    return ''
  }
}

export function refuse (response: ServerResponse, status: number, code: number, message: string): void {
  response.writeHead(status, { 'content-type': 'application/json' })
  response.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }))
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const upstream = await startEverythingUpstream({ port: Number(process.argv[2] ?? 3000) })
  process.stdout.write(`conformance upstream: ${upstream.url}\n`)
  const stop = (): void => { upstream.close().then(() => process.exit(0), () => process.exit(1)) }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}
