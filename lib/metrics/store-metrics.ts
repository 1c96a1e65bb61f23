import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

/**
 * The Redis store's metrics (store.kind: redis). They exist only where that store
 * runs: a proxy on the memory store has nothing to report in them.
 */
export class StoreMetrics {
  readonly storeOperations: Counter
  readonly storeLatency: Histogram
  readonly storeConnectionsUp: Gauge
  readonly storeConnectionsLost: Counter
  readonly upstreamLeasesHeld: Gauge
  readonly upstreamTakeovers: Counter
  readonly storeResets: Counter
  readonly storeUnrecoverableResumes: Counter

  constructor (registry: Registry) {
    this.storeOperations = new Counter({
      name: 'sse_store_operations_total',
      help: 'Redis store operations, by operation and result (ok, error).',
      labelNames: ['op', 'result'],
      registers: [registry]
    })
    this.storeLatency = new Histogram({
      name: 'sse_store_latency_seconds',
      help: 'Latency of Redis store operations.',
      labelNames: ['op'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
      registers: [registry]
    })
    this.storeConnectionsUp = new Gauge({
      name: 'sse_store_connections_up',
      help: 'Redis connections of this replica that are up (2, or 3 with store.durable).',
      registers: [registry]
    })
    this.storeConnectionsLost = new Counter({
      name: 'sse_store_connections_lost_total',
      help: 'Times a Redis connection of this replica went down, by connection (commands, live, history).',
      labelNames: ['connection'],
      registers: [registry]
    })
    this.upstreamLeasesHeld = new Gauge({
      name: 'sse_upstream_leases_held',
      help: 'Upstream streams this replica owns, by lease (Redis store).',
      registers: [registry]
    })
    this.upstreamTakeovers = new Counter({
      name: 'sse_upstream_takeovers_total',
      help: 'Upstream streams this replica took over after their owner stopped renewing its lease.',
      registers: [registry]
    })
    this.storeResets = new Counter({
      name: 'sse_store_resets_total',
      help: 'Times this replica found that Redis had lost its data (a new store epoch).',
      registers: [registry]
    })
    this.storeUnrecoverableResumes = new Counter({
      name: 'sse_store_unrecoverable_resumes_total',
      help: 'Resumes the store could not serve, by reason (store-reset: the store lost its data; evicted: the events are gone from it).',
      labelNames: ['reason'],
      registers: [registry]
    })
  }
}
