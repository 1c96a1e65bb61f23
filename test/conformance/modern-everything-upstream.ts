import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { createMcpHandler } from '@modelcontextprotocol/server'
import { serveWebHandler } from '../helpers/web-request.js'
import { admitted } from './everything-upstream.js'
import { createModernEverythingState, createModernServer } from './modern-everything-server.js'

/**
 * An MCP server for the 2026-07-28 revision (SDK v2, `createMcpHandler`: no sessions, one
 * server instance per request, subscriptions/listen streams), with every tool, resource and
 * prompt the conformance suite's 2026-07-28 server scenarios call, on `/mcp`. 2025-era
 * requests are answered statelessly, as the SDK does by default.
 *
 * - DNS rebinding (spec: basic/security_best_practices): a Host or Origin that is not a
 *   loopback name gets 403, whatever the port, as the 2025 upstream does.
 * - At most `maxSubscriptions` listen streams at once (the SDK answers one more with -32603).
 *
 * Runnable on its own: `node --import ./node_modules/@tapjs/typescript/dist/esm/import.mjs
 * test/conformance/modern-everything-upstream.ts [port]` prints its URL.
 */

export interface ModernEverythingUpstreamOptions {
  port: number
  host: string
  maxSubscriptions: number
  /** The SDK's `responseMode`: `auto` (its default) answers JSON unless a handler sends something first; `sse` always streams. */
  responseMode: 'auto' | 'sse'
}

export interface ModernEverythingUpstream {
  /** The MCP endpoint, http://127.0.0.1:<port>/mcp. */
  readonly url: string
  close: () => Promise<void>
}

const DEFAULTS: ModernEverythingUpstreamOptions = { port: 0, host: '127.0.0.1', maxSubscriptions: 64, responseMode: 'auto' }

export async function startModernEverythingUpstream (overrides: Partial<ModernEverythingUpstreamOptions> = {}): Promise<ModernEverythingUpstream> {
  const options = { ...DEFAULTS, ...overrides }
  const state = createModernEverythingState()
  const handler = createMcpHandler(() => createModernServer(state), { maxSubscriptions: options.maxSubscriptions, responseMode: options.responseMode })
  state.notify = handler.notify
  const serve = serveWebHandler(handler.fetch)

  const server = createServer((request, response) => {
    if (!admitted(request, response)) return
    serve(request, response)
  })
  server.listen(options.port, options.host)
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `http://${options.host}:${port}/mcp`,
    async close () {
      await handler.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const upstream = await startModernEverythingUpstream({ port: Number(process.argv[2] ?? 3000) })
  process.stdout.write(`conformance upstream (2026-07-28): ${upstream.url}\n`)
  const stop = (): void => { upstream.close().then(() => process.exit(0), () => process.exit(1)) }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}
