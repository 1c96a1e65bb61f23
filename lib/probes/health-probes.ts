import type { FastifyInstance } from 'fastify'
import type { ResolvedOptions } from '../config/schema.js'

/** Why the proxy takes no new clients right now. */
export type NotReadyReason = 'shutting-down' | 'store-unavailable'

/**
 * The liveness and readiness probes. Liveness says only that the process serves
 * requests, so that an orchestrator restarts it for nothing else: a restart would
 * not bring Redis back. Readiness says whether new clients should be sent here.
 * Neither is measured: probes every few seconds would drown the request histograms.
 */
export function registerHealthProbes (fastify: FastifyInstance, options: ResolvedOptions['probes'], storeAvailable: () => boolean): void {
  let closing = false
  // Added before the proxy's own preClose hook, which waits for client streams to drain:
  // readiness fails for the whole drain, whether or not Fastify answers 503 while closing.
  fastify.addHook('preClose', async () => { closing = true })
  const route = { config: { disableMetrics: true } }
  fastify.get(options.livenessPath, route, async (_request, reply) => {
    return await reply.header('cache-control', 'no-store').send({ status: 'ok' })
  })
  fastify.get(options.readinessPath, route, async (_request, reply) => {
    const reason: NotReadyReason | undefined = closing ? 'shutting-down' : storeAvailable() ? undefined : 'store-unavailable'
    reply.header('cache-control', 'no-store')
    if (reason === undefined) return await reply.send({ status: 'ready' })
    return await reply.code(503).send({ status: 'not-ready', reason })
  })
}
