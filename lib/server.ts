import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import { loadConfigFile } from './config/config-file.js'
import { mcpSseResilience } from './index.js'

export const CONFIG_ENV = 'MCP_SSE_RESILIENCE_CONFIG'

/** Server options for `fastify start --options`: a shutdown closes every client socket, idle or not. */
export const options = { forceCloseConnections: true }
export const DEFAULT_CONFIG_FILE = fileURLToPath(new URL('../config/default.yaml', import.meta.url))

/**
 * The standalone server, for `fastify start` (fastify-cli): the proxy, configured
 * by the YAML file that MCP_SSE_RESILIENCE_CONFIG names, or by config/default.yaml.
 */
export default async function standaloneServer (fastify: FastifyInstance, _options: unknown): Promise<void> {
  const configFile = process.env[CONFIG_ENV] ?? DEFAULT_CONFIG_FILE
  const options = await loadConfigFile(configFile)
  fastify.log.info({ configFile, routes: options.routes.map(({ kind, path }) => `${kind} ${path}`) }, 'fastify-mcp-sse-resilience configured')
  await fastify.register(mcpSseResilience, options)
}
