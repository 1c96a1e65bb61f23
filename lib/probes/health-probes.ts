import type { FastifyInstance } from 'fastify'
import type { ResolvedOptions } from '../config/schema.js'

/** Why the proxy takes no new clients right now. */
export type NotReadyReason = 'shutting-down' | 'store-unavailable'

type ReadinessCheck = () => NotReadyReason | undefined

// The readiness checks of every plugin instance that serves probes at one path of one server:
// instances registered side by side (one route set per prefix) answer together.
const checksByServer = new WeakMap<object, Map<string, Set<ReadinessCheck>>>()

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
  const check: ReadinessCheck = () => closing ? 'shutting-down' : storeAvailable() ? undefined : 'store-unavailable'
  const byPath = checksByServer.get(fastify.server) ?? new Map<string, Set<ReadinessCheck>>()
  checksByServer.set(fastify.server, byPath)
  const checks = byPath.get(options.readinessPath)
  if (checks !== undefined) {
    checks.add(check)
    return
  }
  const registered = new Set([check])
  byPath.set(options.readinessPath, registered)
  const route = { config: { disableMetrics: true } }
  if (!fastify.hasRoute({ method: 'GET', url: options.livenessPath })) {
    fastify.get(options.livenessPath, route, async (_request, reply) => {
      return await reply.header('cache-control', 'no-store').send({ status: 'ok' })
    })
  }
  fastify.get(options.readinessPath, route, async (_request, reply) => {
    let reason: NotReadyReason | undefined
    for (const isReady of registered) reason ??= isReady()
    reply.header('cache-control', 'no-store')
    if (reason === undefined) return await reply.send({ status: 'ready' })
    return await reply.code(503).send({ status: 'not-ready', reason })
  })
}
