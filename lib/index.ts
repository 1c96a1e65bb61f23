import type { FastifyBaseLogger, FastifyInstance, FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import replyFrom from '@fastify/reply-from'
import type { ResolvedOptions } from './config/schema.js'
import { checkLogLevel, resolvePluginOptions, type McpSseResiliencePluginOptions } from './config/register-options.js'
import { exportMetrics } from './metrics/metrics-export.js'
import { countInto } from './metrics/shared-count.js'
import { claimStore } from './cluster/store-claims.js'
import type { ProxyContext } from './proxy-context.js'
import { registerLegacySseRoute } from './routes/legacy-sse.js'
import { registerSseRoute } from './routes/sse.js'
import { guardBrowserAccess } from './routes/browser-access.js'
import { registerStreamableHttpRoute } from './routes/streamable-http.js'
import { SessionRegistry, type ProxySession } from './session/session-registry.js'
import { createUpstreamDispatcher } from './upstream/dispatcher.js'
import { serializeError } from './upstream/error-cause.js'
import type { HistoryStore } from './history/history-store.js'
import type { JsonRpcBody } from './wire/json-rpc.js'
import { LocalHistoryStore } from './history/local-history-store.js'
import { DisabledHistoryStore } from './history/disabled-history-store.js'
import { scheduleHistoryExpiry } from './history/history-expiry.js'
import { ReplicaCoordinator } from './cluster/replica-coordinator.js'
import { createRedisClusterStore } from './store/redis/redis-cluster-store.js'
import { LocalSessionDirectory } from './directory/local-directory.js'
import type { SessionDirectory } from './directory/session-directory.js'
import { SharedSessionDirectory } from './directory/shared-directory.js'
import type { ProxyMetrics } from './metrics.js'
import { registerHealthProbes } from './probes/health-probes.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The proxy session this request belongs to, once the route has resolved it. */
    mcpSseSession: ProxySession | null
    /** The body's JSON-RPC messages, once a route has read them (routes/json-rpc-body.ts). */
    mcpSseBody: JsonRpcBody | null
  }
}

const mcpSseResiliencePlugin: FastifyPluginAsync<McpSseResiliencePluginOptions> = async (fastify, rawOptions) => {
  const { options, register } = resolvePluginOptions(rawOptions)
  checkLogLevel(fastify.log, register.logLevel)
  if (options.store.kind === 'redis') claimStore(fastify, options.store)
  const { metrics, serve: serveMetrics } = exportMetrics(fastify, options, register.metricsRegistry)
  const countSessions = countInto(metrics.sessionsActive)
  const sessions = new SessionRegistry({
    maxSessions: options.sessions.maxSessions,
    maxStreamsPerSession: options.sessions.maxStreamsPerSession,
    idleTimeoutMs: options.sessions.idleTimeoutSeconds * 1000,
    onCountChange: countSessions
  })
  const dispatcher = createUpstreamDispatcher(options)
  // Chosen once: the routes never ask which one they have.
  const directory = options.store.kind === 'redis'
    ? await sharedDirectory(options, metrics, sessions, fastify.log)
    : new LocalSessionDirectory(sessions, createHistoryStore(options))
  const { history } = directory
  const context: ProxyContext = {
    options,
    metrics,
    sessions,
    directory,
    dispatcher,
    openStreams: new Set(),
    log: fastify.log
  }
  const stopExpiry = scheduleHistoryExpiry(history, options.history.ttlSeconds * 1000, fastify.log)
  const removeHistory = metrics.addHistory(() => history.stats())

  // The plugin may be registered more than once in a context (one route set per prefix).
  if (!fastify.hasRequestDecorator('mcpSseSession')) fastify.decorateRequest('mcpSseSession', null)
  if (!fastify.hasRequestDecorator('mcpSseBody')) fastify.decorateRequest('mcpSseBody', null)
  if (options.probes.enabled) registerHealthProbes(fastify, options.probes, () => directory.available)

  // Encapsulated, so that reply-from, the raw-body parsers and the metrics endpoint stay out of the
  // host application. Fastify ignores the register options of a fastify-plugin plugin: logLevel and
  // logSerializers apply here, and the prefix is in the paths already (config/register-options.ts).
  await fastify.register(async (proxy) => {
    await serveMetrics?.(proxy)
    await proxy.register(replyFrom, { undici: dispatcher, disableCache: true, disableRequestLogging: true })
    registerRawBodyParsers(proxy, options)
    await guardBrowserAccess(proxy, options)
    for (const route of options.routes) registerRoute(proxy, context, route)
  }, { logLevel: register.logLevel, logSerializers: { err: serializeError, ...register.logSerializers } })

  // Open streams would hold the server open; end them when it starts closing (fastify
  // already answers new requests 503 by then), with a retry hint for the resumable ones.
  fastify.addHook('preClose', async () => {
    for (const stream of context.openStreams) stream.close()
    await sessions.shutdown(options.shutdown.retryHintMs, options.shutdown.drainTimeoutMs)
  })
  fastify.addHook('onClose', async () => {
    stopExpiry()
    removeHistory()
    countSessions(0)
    await directory.close()
    await dispatcher.close()
  })
}

/** Several replicas over one Redis: sessions, history and upstream streams shared through the coordinator. */
async function sharedDirectory (options: ResolvedOptions, metrics: ProxyMetrics, sessions: SessionRegistry, log: FastifyBaseLogger): Promise<SessionDirectory> {
  const storeMetrics = metrics.storeMetrics()
  const coordinator = new ReplicaCoordinator(options, storeMetrics, sessions, log, (epoch) => createRedisClusterStore(options, storeMetrics, log, epoch))
  await coordinator.start()
  return new SharedSessionDirectory(coordinator, sessions, storeMetrics, options)
}

function createHistoryStore (options: ResolvedOptions): HistoryStore {
  const { enabled, maxEvents, maxBytes, ttlSeconds, replay } = options.history
  if (!enabled) return new DisabledHistoryStore()
  return new LocalHistoryStore({ maxEvents, maxBytes, ttlMs: ttlSeconds * 1000, replay })
}

/** Bodies go upstream byte for byte: the upstream, not the proxy, judges them. */
function registerRawBodyParsers (proxy: FastifyInstance, options: ResolvedOptions): void {
  proxy.removeAllContentTypeParsers()
  proxy.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: options.limits.maxBodyBytes }, (_request, body, done) => {
    done(null, body)
  })
}

function registerRoute (proxy: FastifyInstance, context: ProxyContext, route: ResolvedOptions['routes'][number]): void {
  switch (route.kind) {
    case 'streamable-http':
      registerStreamableHttpRoute(proxy, context, route)
      break
    case 'legacy-sse':
      registerLegacySseRoute(proxy, context, route)
      break
    case 'sse':
      registerSseRoute(proxy, context, route)
      break
  }
}

export const mcpSseResilience = fp(mcpSseResiliencePlugin, {
  fastify: '5.x',
  name: 'fastify-mcp-sse-resilience'
})

export default mcpSseResilience
export { resolveOptions } from './config/validate.js'
export { loadConfigFile } from './config/config-file.js'
export { OptionsSchema } from './config/schema.js'
export type { McpSseResilienceOptions, ResolvedOptions, RouteConfig } from './config/schema.js'
export type { McpSseResiliencePluginOptions, MetricsRegistry } from './config/register-options.js'
export type { ProxySession } from './session/session-registry.js'
