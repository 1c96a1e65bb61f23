import type { FastifyInstance } from 'fastify'
import type { ResolvedOptions } from '../config/schema.js'
import { answerPreflights } from './cors.js'
import { checkHosts } from './host-check.js'
import { loopbackBind } from './loopback.js'
import { checkOrigins, originPolicy } from './origin-check.js'

/**
 * What a browser may do with the proxy's routes, in the order it is judged: the
 * Host (DNS rebinding), the Origin, then CORS for the origins that pass. Every
 * route of `proxy`, declared after this, is covered; the host application's are not.
 */
export async function guardBrowserAccess (proxy: FastifyInstance, options: ResolvedOptions): Promise<void> {
  const onLoopback = loopbackBind(proxy)
  checkHosts(proxy, options.security.allowedHosts, onLoopback)
  const allowed = originPolicy(options.security, onLoopback)
  checkOrigins(proxy, allowed)
  await answerPreflights(proxy, options.routes, allowed)
}
