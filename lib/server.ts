import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import { loadConfigFile } from './config/config-file.js'
import { mcpSseResilience } from './index.js'
import { exitOnConfigError } from './standalone/config-errors.js'

export const CONFIG_ENV = 'MCP_SSE_RESILIENCE_CONFIG'

/** Server options for `fastify start --options`: a shutdown closes every client socket, idle or not. */
export const options = { forceCloseConnections: true }
export const DEFAULT_CONFIG_FILE = fileURLToPath(new URL('../config/default.yaml', import.meta.url))

export interface StandaloneServerOptions {
  /** The YAML file; without it, the one MCP_SSE_RESILIENCE_CONFIG names, or config/default.yaml. */
  configFile?: string | undefined
}

/**
 * The standalone server, for `fastify start` (fastify-cli) and the
 * fastify-mcp-sse-resilience command: the proxy, configured by a YAML file.
 * A file that cannot be used ends the process with its problems on stderr.
 */
export default async function standaloneServer (fastify: FastifyInstance, serverOptions: StandaloneServerOptions): Promise<void> {
  const configFile = serverOptions.configFile ?? process.env[CONFIG_ENV] ?? DEFAULT_CONFIG_FILE
  const options = await loadConfigFile(configFile).catch(exitOnConfigError)
  fastify.log.info({ configFile, routes: options.routes.map(({ kind, path }) => `${kind} ${path}`) }, 'fastify-mcp-sse-resilience configured')
  await fastify.register(mcpSseResilience, options)
}
