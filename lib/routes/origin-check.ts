import type { FastifyInstance } from 'fastify'
import { sendOriginNotAllowed } from './json-rpc-errors.js'

const ANY_ORIGIN = '*'

/**
 * MCP servers must validate `Origin` to prevent DNS rebinding (MCP spec,
 * Streamable HTTP, "Security Warning"): a page on another site that resolves
 * its name to this host must not reach the proxy's routes. Only browsers send
 * `Origin`, so a request without one passes.
 */
export function checkOrigins (proxy: FastifyInstance, allowedOrigins: readonly string[]): void {
  if (allowedOrigins.includes(ANY_ORIGIN)) return
  const allowed = new Set(allowedOrigins.map(normalizeOrigin))
  proxy.addHook('onRequest', (request, reply, done) => {
    const origin = request.headers.origin
    if (origin === undefined || allowed.has(normalizeOrigin(origin))) {
      done()
      return
    }
    request.log.info({ origin: origin.slice(0, 200) }, 'Origin not in security.allowedOrigins; refused')
    sendOriginNotAllowed(reply)
  })
}

/** `HTTP://Example.com:80` and `http://example.com` are one origin; anything unparsable stays as it is. */
function normalizeOrigin (origin: string): string {
  return URL.canParse(origin) ? new URL(origin).origin : origin
}
