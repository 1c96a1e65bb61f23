import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fastifyMetrics from 'fastify-metrics'
import type { Registry } from 'prom-client'
import { MetricsPathTakenError } from '../errors.js'

/**
 * The plugin's own Prometheus endpoint: `registry` at `path`, with fastify-metrics'
 * process metrics and the request durations of the proxy's routes added to it.
 * `proxy` is the encapsulated context of those routes, so that fastify-metrics'
 * `metrics` decorator and hooks stay out of the host application (which may
 * register fastify-metrics of its own).
 */
export async function serveMetrics (host: FastifyInstance, proxy: FastifyInstance, registry: Registry, path: string): Promise<void> {
  const registers = [registry]
  // fastify-metrics 13 is CommonJS with only `exports.default`.
  await proxy.register(fastifyMetrics.default, {
    endpoint: null,
    defaultMetrics: { enabled: true, register: registry },
    routeMetrics: { enabled: true, overrides: { histogram: { registers }, summary: { registers } } }
  })
  const scrape = async (_request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> =>
    await reply.type(registry.contentType).send(await registry.metrics())
  const urls = new Set<string>()
  proxy.addHook('onRoute', (route) => { if (route.handler === scrape) urls.add(route.url) })
  proxy.get(path, { logLevel: 'fatal', exposeHeadRoute: false }, scrape)

  // A host that registers fastify-metrics after the plugin would clash on this path with
  // an error that does not say what to do; this one does.
  host.addHook('onRoute', (route) => {
    if (urls.has(route.url) && [route.method].flat().includes('GET')) throw new MetricsPathTakenError('GET', route.url)
  })
}
