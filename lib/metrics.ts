import type { FastifyInstance } from 'fastify'
import fastifyMetrics from 'fastify-metrics'
import { Counter, Gauge, Registry } from 'prom-client'
import type { ResolvedOptions, RouteKind } from './config/schema.js'

const ROUTE_LABELS = ['route_kind', 'route'] as const

/**
 * The proxy's own metrics, on a registry of their own so that several plugin
 * instances (tests, multi-tenant servers) never collide in prom-client's global one.
 * Labels name routes, never sessions, so cardinality stays bounded by the config.
 */
export class ProxyMetrics {
  readonly registry = new Registry()

  readonly eventsForwarded = new Counter({
    name: 'sse_events_forwarded_total',
    help: 'SSE events written to clients.',
    labelNames: ROUTE_LABELS,
    registers: [this.registry]
  })

  readonly upstreamMalformed = new Counter({
    name: 'sse_upstream_malformed_total',
    help: 'Malformed upstream SSE input, by reason (ignored lines, oversized events, wrong content type).',
    labelNames: [...ROUTE_LABELS, 'reason'],
    registers: [this.registry]
  })

  readonly upstreamErrors = new Counter({
    name: 'sse_upstream_errors_total',
    help: 'Upstream requests that failed before a response (unreachable or timed out).',
    labelNames: [...ROUTE_LABELS, 'reason'],
    registers: [this.registry]
  })

  readonly sessionsActive = new Gauge({
    name: 'sse_sessions_active',
    help: 'Proxy sessions held.',
    registers: [this.registry]
  })

  readonly streamsActive = new Gauge({
    name: 'sse_streams_active',
    help: 'Client SSE streams open.',
    labelNames: ROUTE_LABELS,
    registers: [this.registry]
  })
}

export interface RouteLabels {
  route_kind: RouteKind
  route: string
}

/** Serves the proxy's registry, with fastify-metrics' route timings, at `metrics.path`. */
export async function exposeMetrics (
  fastify: FastifyInstance,
  metrics: ProxyMetrics,
  options: ResolvedOptions['metrics']
): Promise<void> {
  const registers = [metrics.registry]
  // fastify-metrics 13 is CommonJS with only `exports.default`.
  await fastify.register(fastifyMetrics.default, {
    endpoint: options.path,
    defaultMetrics: { enabled: true, register: metrics.registry },
    routeMetrics: {
      enabled: true,
      overrides: { histogram: { registers }, summary: { registers } }
    }
  })
}
