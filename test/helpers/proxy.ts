import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { AddressInfo } from 'node:net'
import { mcpSseResilience, type McpSseResilienceOptions } from '../../lib/index.js'

export interface RunningProxy {
  app: FastifyInstance
  origin: string
  url: (path: string) => string
}

interface Teardown { teardown: (fn: () => unknown) => void }

/** The plugin in a fresh Fastify instance, listening on `host` (127.0.0.1 unless told), closed when the test ends. */
export async function startProxy (t: Teardown, options: McpSseResilienceOptions, host = '127.0.0.1'): Promise<RunningProxy> {
  return await startHost(t, async (app) => await app.register(mcpSseResilience, options), {}, host)
}

/**
 * A host application: a fresh Fastify instance that `build` fills in (the plugin, and
 * whatever else the test puts beside it), listening on `host`, closed when the test ends.
 */
export async function startHost (t: Teardown, build: (app: FastifyInstance) => Promise<unknown>, serverOptions: FastifyServerOptions = {}, host = '127.0.0.1'): Promise<RunningProxy> {
  // As the standalone server does: close() does not wait for clients' keep-alive sockets.
  const app = Fastify({ logger: { level: process.env.TEST_LOG_LEVEL ?? 'silent' }, forceCloseConnections: true, ...serverOptions })
  await build(app)
  await app.listen({ port: 0, host })
  t.teardown(async () => await app.close())
  // A wildcard bind is reached over loopback.
  const reachedAt = host === '0.0.0.0' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host
  const origin = `http://${reachedAt}:${(app.server.address() as AddressInfo).port}`
  return { app, origin, url: (path) => `${origin}${path}` }
}
