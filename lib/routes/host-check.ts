import type { FastifyInstance } from 'fastify'
import type { ResolvedOptions } from '../config/schema.js'
import { sendHostNotAllowed } from './json-rpc-errors.js'
import { isLocalhostName } from './loopback.js'

const ANY_HOST = '*'

/**
 * A page on a name rebound to this machine (DNS rebinding) reaches the proxy with
 * its own name in `Host`; the MCP SDK refuses such a Host when bound to localhost
 * (`localhostHostValidation`, GHSA-w48q-cv73-mx4w). The port does not count: only
 * the name tells a rebound page apart.
 */
export function checkHosts (proxy: FastifyInstance, allowedHosts: ResolvedOptions['security']['allowedHosts'], onLoopback: () => boolean): void {
  if (allowedHosts !== 'auto' && allowedHosts.includes(ANY_HOST)) return
  const listed = allowedHosts === 'auto' ? undefined : new Set(allowedHosts.map((host) => host.toLowerCase()))
  const allowed = listed === undefined ? isLocalhostName : (hostname: string) => listed.has(hostname)
  proxy.addHook('onRequest', (request, reply, done) => {
    const host = request.headers.host
    if ((listed === undefined && !onLoopback()) || allowed(hostnameOf(host))) {
      done()
      return
    }
    request.log.info({ host: host?.slice(0, 200) }, 'Host not allowed by security.allowedHosts (behind a reverse proxy on this machine, list the name it passes on); refused')
    sendHostNotAllowed(reply)
  })
}

/** The name in a Host header, as `URL` spells it; '' for none, or for one that names no host. */
function hostnameOf (host: string | undefined): string {
  const url = `http://${host ?? ''}`
  return URL.canParse(url) ? new URL(url).hostname : ''
}
