import { Counter, Gauge, Histogram, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client'
import type { RouteKind } from './config/schema.js'
import type { HistoryStats } from './history/history-store.js'
import { StoreMetrics } from './metrics/store-metrics.js'

const ROUTE_LABELS = ['route_kind', 'route'] as const

/**
 * The proxy's own metrics, on a registry of their own so that several plugin
 * instances (tests, multi-tenant servers) never collide in prom-client's global one;
 * lib/metrics/metrics-export.ts adds them to a host's registry, or serves this one.
 * Plugin instances that export to the same place share one ProxyMetrics.
 * Labels name routes, never sessions, so cardinality stays bounded by the config.
 */
export class ProxyMetrics {
  readonly registry = new Registry()

  readonly mcpRequests = new Counter({
    name: 'sse_mcp_requests_total',
    help: 'JSON-RPC requests and notifications in the POSTs the proxy took in, by MCP method (methods MCP does not define count as other).',
    labelNames: [...ROUTE_LABELS, 'method'],
    registers: [this.registry]
  })

  readonly eventsForwarded = new Counter({
    name: 'sse_events_forwarded_total',
    help: 'SSE events written to clients.',
    labelNames: ROUTE_LABELS,
    registers: [this.registry]
  })

  readonly upstreamMalformed = new Counter({
    name: 'sse_upstream_malformed_total',
    help: 'Malformed upstream SSE input, by reason (ignored lines, invalid retry values, oversized events, legacy endpoints on another origin).',
    labelNames: [...ROUTE_LABELS, 'reason'],
    registers: [this.registry]
  })

  readonly upstreamErrors = new Counter({
    name: 'sse_upstream_errors_total',
    help: 'Upstream requests that failed before a response (unreachable or timed out).',
    labelNames: [...ROUTE_LABELS, 'reason'],
    registers: [this.registry]
  })

  readonly requestsCancelled = new Counter({
    name: 'sse_requests_cancelled_total',
    help: 'MCP 2026-07-28 requests whose client left before their answer ended, and whose upstream request the proxy aborted.',
    labelNames: ROUTE_LABELS,
    registers: [this.registry]
  })

  readonly slowConsumerDisconnects = new Counter({
    name: 'sse_slow_consumer_disconnects_total',
    help: 'Clients cut because they fell behind by more than limits.clientBufferBytes.',
    labelNames: ROUTE_LABELS,
    registers: [this.registry]
  })

  readonly clientReconnections = new Counter({
    name: 'sse_client_reconnections_total',
    help: 'Clients that came back with a Last-Event-ID.',
    labelNames: ROUTE_LABELS,
    registers: [this.registry]
  })

  readonly eventsReplayed = new Counter({
    name: 'sse_events_replayed_total',
    help: 'Events sent again from the history to resuming clients.',
    labelNames: ROUTE_LABELS,
    registers: [this.registry]
  })

  readonly lastEventIdHits = new Counter({
    name: 'sse_last_event_id_hits_total',
    help: 'Last-Event-IDs the history could serve in full.',
    labelNames: ROUTE_LABELS,
    registers: [this.registry]
  })

  readonly lastEventIdMisses = new Counter({
    name: 'sse_last_event_id_misses_total',
    help: 'Last-Event-IDs the proxy could not serve, by reason (evicted, unknown, malformed, not-replayable).',
    labelNames: [...ROUTE_LABELS, 'reason'],
    registers: [this.registry]
  })

  readonly lastEventIdHitRatio = new Gauge({
    name: 'sse_last_event_id_cache_hit_ratio',
    help: 'Share of Last-Event-IDs served in full from the history, over all routes since start; absent until a first resume.',
    registers: [this.registry],
    collect: async () => {
      const hits = sumOf(await this.lastEventIdHits.get())
      const misses = sumOf(await this.lastEventIdMisses.get())
      // No resume yet: no sample, rather than a ratio of 0 or 1 that nothing backs.
      if (hits + misses === 0) this.lastEventIdHitRatio.remove()
      else this.lastEventIdHitRatio.set(hits / (hits + misses))
    }
  })

  readonly reconnectionAttempts = new Counter({
    name: 'sse_reconnection_attempts_total',
    help: 'Attempts to reconnect a dropped upstream stream.',
    labelNames: ROUTE_LABELS,
    registers: [this.registry]
  })

  readonly reconnectionSuccesses = new Counter({
    name: 'sse_reconnection_success_total',
    help: 'Upstream streams reconnected.',
    labelNames: ROUTE_LABELS,
    registers: [this.registry]
  })

  readonly reconnectionFailures = new Counter({
    name: 'sse_reconnection_failure_total',
    help: 'Upstream streams given up on: out of retries, or an answer not worth retrying.',
    labelNames: ROUTE_LABELS,
    registers: [this.registry]
  })

  readonly sessionsReestablished = new Counter({
    name: 'sse_sessions_reestablished_total',
    help: 'Upstream MCP sessions opened again after the upstream lost them.',
    labelNames: ROUTE_LABELS,
    registers: [this.registry]
  })

  readonly upstreamConnectionDuration = new Histogram({
    name: 'sse_upstream_connection_duration_seconds',
    help: 'How long each upstream stream connection lasted.',
    labelNames: ROUTE_LABELS,
    buckets: [1, 10, 60, 300, 1800, 3600, 21600],
    registers: [this.registry]
  })

  readonly upstreamReconnectLatency = new Histogram({
    name: 'sse_upstream_reconnect_latency_seconds',
    help: 'From an upstream drop to the first event of the reconnected stream sent to the client.',
    labelNames: ROUTE_LABELS,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 30, 120],
    registers: [this.registry]
  })

  readonly upstreamStalls = new Counter({
    name: 'sse_upstream_stalls_total',
    help: 'Upstream streams that sent nothing for health.idleTimeoutSeconds, and were replaced.',
    labelNames: ROUTE_LABELS,
    registers: [this.registry]
  })

  readonly upstreamGaps = new Counter({
    name: 'sse_upstream_gaps_total',
    help: 'Upstream reconnects after which the upstream may not have sent again what it sent meanwhile, each told to the client in the stream, by cause (ended, failed, stalled, takeover, session-reestablished).',
    labelNames: [...ROUTE_LABELS, 'cause'],
    registers: [this.registry]
  })

  readonly eventsDeduplicated = new Counter({
    name: 'sse_events_deduplicated_total',
    help: 'Upstream events dropped because they were forwarded already (an upstream replaying after a reconnect).',
    labelNames: ROUTE_LABELS,
    registers: [this.registry]
  })

  readonly #histories = new Set<() => HistoryStats>()

  readonly historyEvents = new Gauge({
    name: 'sse_history_events',
    help: 'Events held in the history, over all sessions.',
    registers: [this.registry],
    collect: () => { this.historyEvents.set(this.#sumOfHistories('events')) }
  })

  readonly historyBytes = new Gauge({
    name: 'sse_history_bytes',
    help: 'Approximate bytes held in the history, over all sessions.',
    registers: [this.registry],
    collect: () => { this.historyBytes.set(this.#sumOfHistories('bytes')) }
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

  /** The Redis store's metrics, registered once a plugin instance that uses that store asks for them. */
  #store: StoreMetrics | undefined

  /**
   * A history whose `stats` are read when Prometheus scrapes (several plugin
   * instances may share these metrics); the returned function takes it out again.
   */
  addHistory (stats: () => HistoryStats): () => void {
    this.#histories.add(stats)
    return () => this.#histories.delete(stats)
  }

  storeMetrics (): StoreMetrics {
    this.#store ??= new StoreMetrics(this.registry)
    return this.#store
  }

  #sumOfHistories (key: keyof HistoryStats): number {
    let total = 0
    for (const stats of this.#histories) total += stats()[key]
    return total
  }
}

function sumOf (metric: MetricObjectWithValues<MetricValue<string>>): number {
  return metric.values.reduce((total, { value }) => total + value, 0)
}

export interface RouteLabels {
  route_kind: RouteKind
  route: string
}
