import type { FastifyInstance } from 'fastify'

/** The names a browser uses for this machine, as `URL` spells their hostnames (MCP SDK's `localhostHostValidation`). */
const LOCALHOST_NAMES: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '[::1]'])

export function isLocalhostName (hostname: string): boolean {
  return LOCALHOST_NAMES.has(hostname)
}

/**
 * Whether the server listens on loopback addresses only, as the MCP SDK decides from
 * the host it binds (`createMcpExpressApp`). The bind, not each connection's local
 * address, is what counts: a proxy on 0.0.0.0 is meant for other machines, and a
 * load balancer or sidecar on the same host may well reach it over 127.0.0.1 with a
 * public Host. Read on the first request, when the addresses are known; a server
 * that does not listen itself (`inject()`, a server of the application's own) has
 * no bind to judge, and counts as not loopback.
 */
export function loopbackBind (fastify: FastifyInstance): () => boolean {
  let known: boolean | undefined
  return () => {
    if (known !== undefined) return known
    const addresses = fastify.addresses()
    if (addresses.length === 0) return false
    // A Unix socket (a string) is no network address: whatever fronts it sets Host.
    known = addresses.every((address) => typeof address !== 'string' && isLoopbackAddress(address.address))
    return known
  }
}

function isLoopbackAddress (address: string): boolean {
  return address === '::1' || /^(::ffff:)?127\./i.test(address)
}
