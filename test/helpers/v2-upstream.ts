import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { createMcpHandler, McpServer, type McpHttpHandler } from '@modelcontextprotocol/server'
import { z } from 'zod'
import { serveWebHandler } from './web-request.js'

/** When the slow tool started, and when (if ever) its abort signal fired: what a cancellation test reads. */
export interface SlowCall {
  startedAt: number
  abortedAt?: number
  finished: boolean
}

export const COUNTER_URI = 'demo://counter'

/**
 * An MCP server built with the official SDK v2 (`createMcpHandler`), served over node:http
 * on /mcp. It speaks 2026-07-28, and answers 2025-era clients statelessly (no session,
 * no event store), as the SDK's default does. Its tools:
 *   - `echo` {text}: answers the text;
 *   - `progress` {steps, delayMs}: one progress notification per step, then `done <steps>`
 *     (each call recorded in `progressCalls`, as `slow` records its own);
 *   - `slow` {ms}: waits, and records in `slowCalls` when its abort signal fires.
 * One resource, `demo://counter`, whose updates `notify.resourceUpdated` announces.
 * `restart()` kills every connection and listens again on the same port with a fresh handler.
 */
export class V2Upstream {
  readonly slowCalls: SlowCall[] = []
  /** The same record for each `progress` call: `finished` once it answered without being aborted. */
  readonly progressCalls: SlowCall[] = []
  handler: McpHttpHandler
  server: Server
  port = 0
  /** Requests seen, by method (`subscriptions/listen` among them): what a re-listen test counts. */
  readonly methods: string[] = []
  /**
   * Every JSON-RPC message of every POST body, by its method (and tool name): a 2025-era
   * client sends no `Mcp-Method` header, so this is what a no-re-run test counts.
   */
  readonly received: Array<{ method: string, name?: string }> = []

  private constructor () {
    this.handler = this.#newHandler()
    this.server = this.#newServer()
  }

  static async start (port = 0): Promise<V2Upstream> {
    const upstream = new V2Upstream()
    upstream.server.listen(port, '127.0.0.1')
    await once(upstream.server, 'listening')
    upstream.port = (upstream.server.address() as AddressInfo).port
    return upstream
  }

  get url (): string {
    return `http://127.0.0.1:${this.port}/mcp`
  }

  get notify (): McpHttpHandler['notify'] {
    return this.handler.notify
  }

  /** Every open stream cut, the process gone: nothing answers until `start()`. */
  async kill (): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
    await this.handler.close()
  }

  /** Back on the same port, with nothing of before (open listens included). */
  async start (): Promise<void> {
    this.handler = this.#newHandler()
    this.server = this.#newServer()
    this.server.listen(this.port, '127.0.0.1')
    await once(this.server, 'listening')
  }

  async restart (): Promise<void> {
    await this.kill()
    await this.start()
  }

  async close (): Promise<void> {
    if (this.server.listening) await this.kill()
  }

  #newServer (): Server {
    const serve = serveWebHandler(async (request) => {
      const method = request.headers.get('mcp-method')
      if (method !== null) this.methods.push(method)
      if (request.method === 'POST') this.#record(await request.clone().text())
      return await this.handler.fetch(request)
    })
    return createServer((request, response) => {
      if (new URL(request.url ?? '/', 'http://upstream').pathname !== '/mcp') {
        response.writeHead(404).end()
        return
      }
      serve(request, response)
    })
  }

  #record (body: string): void {
    let parsed: unknown
    try {
      parsed = JSON.parse(body)
    } catch {
      return
    }
    for (const message of Array.isArray(parsed) ? parsed : [parsed]) {
      const { method, params } = (message ?? {}) as { method?: unknown, params?: { name?: unknown } }
      if (typeof method !== 'string') continue
      this.received.push(typeof params?.name === 'string' ? { method, name: params.name } : { method })
    }
  }

  #newHandler (): McpHttpHandler {
    return createMcpHandler(() => this.#newServerInstance(), { keepAliveMs: 0 })
  }

  #newServerInstance (): McpServer {
    const server = new McpServer({ name: 'v2-upstream', version: '1.0.0' }, {
      capabilities: { tools: { listChanged: true }, resources: { subscribe: true, listChanged: true } }
    })
    server.registerTool('echo', { inputSchema: z.object({ text: z.string() }) }, async ({ text }) => ({
      content: [{ type: 'text', text }]
    }))
    server.registerTool('progress', { inputSchema: z.object({ steps: z.number(), delayMs: z.number() }) }, async ({ steps, delayMs }, ctx) => {
      const token = ctx.mcpReq._meta?.progressToken
      const call: SlowCall = { startedAt: Date.now(), finished: false }
      this.progressCalls.push(call)
      ctx.mcpReq.signal.addEventListener('abort', () => { call.abortedAt = Date.now() }, { once: true })
      for (let step = 1; step <= steps; step++) {
        await sleep(delayMs)
        if (token !== undefined) {
          await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken: token, progress: step, total: steps } })
        }
      }
      call.finished = !ctx.mcpReq.signal.aborted
      return { content: [{ type: 'text', text: `done ${steps}` }] }
    })
    server.registerTool('slow', { inputSchema: z.object({ ms: z.number() }) }, async ({ ms }, ctx) => {
      const call: SlowCall = { startedAt: Date.now(), finished: false }
      this.slowCalls.push(call)
      const signal = ctx.mcpReq.signal
      signal.addEventListener('abort', () => { call.abortedAt = Date.now() }, { once: true })
      await sleep(ms, undefined, { signal }).catch(() => undefined)
      call.finished = !signal.aborted
      return { content: [{ type: 'text', text: signal.aborted ? 'aborted' : 'slept' }] }
    })
    server.registerResource('counter', COUNTER_URI, { mimeType: 'text/plain' }, async (uri) => ({
      contents: [{ uri: uri.href, text: '1' }]
    }))
    return server
  }
}
