import type { FastifyInstance } from 'fastify'
import type { ResolvedOptions } from '../config/schema.js'
import { sendOriginNotAllowed } from './json-rpc-errors.js'
import { isLocalhostName } from './loopback.js'

const ANY_ORIGIN = '*'

/** Whether a browser origin may call the proxy: the Origin check and the CORS answers ask the same. */
export type OriginPolicy = (origin: string) => boolean

/**
 * The origins security.allowedOrigins lists, and those of pages on this machine
 * as security.localhostOrigins says: `"auto"` follows the bind, as the MCP SDK
 * lets localhost pages reach a server bound to localhost.
 */
export function originPolicy (security: ResolvedOptions['security'], onLoopback: () => boolean): OriginPolicy {
  if (security.allowedOrigins.includes(ANY_ORIGIN)) return () => true
  const listed = new Set(security.allowedOrigins.map(normalizeOrigin))
  const { localhostOrigins } = security
  const localhostAllowed = localhostOrigins === 'auto' ? onLoopback : () => localhostOrigins
  return (origin) => listed.has(normalizeOrigin(origin)) || (localhostAllowed() && isLocalhostOrigin(origin))
}

/**
 * MCP servers must validate `Origin` to prevent DNS rebinding (MCP spec,
 * Streamable HTTP, "Security Warning"): a page on another site that resolves
 * its name to this host must not reach the proxy's routes. Only browsers send
 * `Origin`, so a request without one passes.
 */
export function checkOrigins (proxy: FastifyInstance, allowed: OriginPolicy): void {
  proxy.addHook('onRequest', (request, reply, done) => {
    const origin = request.headers.origin
    if (origin === undefined || allowed(origin)) {
      done()
      return
    }
    request.log.info({ origin: origin.slice(0, 200) }, 'Origin allowed by neither security.allowedOrigins nor security.localhostOrigins; refused')
    sendOriginNotAllowed(reply)
  })
}

/** `HTTP://Example.com:80` and `http://example.com` are one origin; anything unparsable stays as it is. */
function normalizeOrigin (origin: string): string {
  return URL.canParse(origin) ? new URL(origin).origin : origin
}

function isLocalhostOrigin (origin: string): boolean {
  if (!URL.canParse(origin)) return false
  const { protocol, hostname } = new URL(origin)
  return (protocol === 'http:' || protocol === 'https:') && isLocalhostName(hostname)
}
