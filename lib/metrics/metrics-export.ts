import type { FastifyInstance } from 'fastify'
import type { Metric } from 'prom-client'
import type { ResolvedOptions } from '../config/schema.js'
import { isMetricsRegistry, type MetricsRegistry } from '../config/register-options.js'
import { MetricsConflictError } from '../errors.js'
import { ProxyMetrics } from '../metrics.js'
import { serveMetrics } from './metrics-endpoint.js'

export interface MetricsExport {
  readonly metrics: ProxyMetrics
  /** Set when this plugin instance serves the metrics itself: registers the endpoint in the context of its routes. */
  readonly serve: ((proxy: FastifyInstance) => Promise<void>) | undefined
}

/** The metrics of the plugin instances that add theirs to one host registry: one set, whatever the number of instances. */
const inHostRegistries = new WeakMap<MetricsRegistry, ProxyMetrics>()
/** The metrics of the plugin instances of one server that serve one URL. */
const servedPaths = new WeakMap<object, Map<string, ProxyMetrics>>()

/**
 * Where a plugin instance's metrics go.
 * - metrics.enabled false: nowhere.
 * - `metricsRegistry`, or else the registry of a fastify-metrics that the host
 *   registered before the plugin: the proxy's metrics join it, and the host's
 *   endpoint serves them. The plugin adds no route, no process or request metrics.
 * - Otherwise the plugin serves metrics.path itself, unless another instance on the
 *   same server already serves that path: then it adds its metrics there.
 */
export function exportMetrics (fastify: FastifyInstance, options: ResolvedOptions, metricsRegistry: MetricsRegistry | undefined): MetricsExport {
  const redis = options.store.kind === 'redis'
  if (!options.metrics.enabled) return { metrics: new ProxyMetrics(), serve: undefined }
  const hostRegistry = metricsRegistry ?? registryOfFastifyMetrics(fastify)
  if (hostRegistry !== undefined) return { metrics: joinHostRegistry(hostRegistry, redis, metricsRegistry === undefined), serve: undefined }

  const { path } = options.metrics
  const served = servedPaths.get(fastify.server) ?? new Map<string, ProxyMetrics>()
  servedPaths.set(fastify.server, served)
  const url = `${fastify.prefix}${path}`
  const shared = served.get(url)
  if (shared !== undefined) return { metrics: shared, serve: undefined }
  const metrics = new ProxyMetrics()
  served.set(url, metrics)
  return { metrics, serve: async (proxy) => await serveMetrics(fastify, proxy, metrics.registry, path) }
}

/** fastify-metrics decorates its instance as `metrics`; its endpoint serves `client.register`, prom-client's global registry. */
function registryOfFastifyMetrics (fastify: FastifyInstance): MetricsRegistry | undefined {
  if (!fastify.hasDecorator('metrics')) return undefined
  // Another plugin may have decorated `metrics` with anything, null included: Object() boxes it.
  const { client } = Object(fastify.metrics) as { client?: unknown }
  const { register } = Object(client) as { register?: unknown }
  return isMetricsRegistry(register) ? register : undefined
}

function joinHostRegistry (registry: MetricsRegistry, redis: boolean, detected: boolean): ProxyMetrics {
  let metrics = inHostRegistries.get(registry)
  // A registry cleared since (fastify-metrics' clearRegisterOnInit) gets a fresh set.
  if (metrics === undefined || registry.getSingleMetric('sse_events_forwarded_total') !== metrics.eventsForwarded) {
    metrics = new ProxyMetrics()
    inHostRegistries.set(registry, metrics)
  }
  if (redis) metrics.storeMetrics()
  // getMetricsAsArray() gives the metric objects themselves; prom-client declares a narrower type.
  const ours = metrics.registry.getMetricsAsArray() as unknown as Metric[]
  const missing = ours.filter((metric) => registry.getSingleMetric(nameOf(metric)) !== metric)
  const taken = missing.map(nameOf).filter((name) => registry.getSingleMetric(name) !== undefined)
  if (taken.length > 0) {
    throw new MetricsConflictError(detected ? 'the registry of the host\'s fastify-metrics' : 'metricsRegistry', taken.join(', '))
  }
  for (const metric of missing) registry.registerMetric(metric)
  return metrics
}

function nameOf (metric: Metric): string {
  // Every prom-client metric has its name; the declared type leaves it out.
  return (metric as unknown as { name: string }).name
}
