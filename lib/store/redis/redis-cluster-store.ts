import type { FastifyBaseLogger } from 'fastify'
import type { ClusterStore } from '../../cluster/cluster-store.js'
import type { ResolvedOptions } from '../../config/schema.js'
import type { StoreMetrics } from '../../metrics/store-metrics.js'
import { closeRedis, connectRedis, isRedisReady, openRedis } from './client.js'
import { RedisFollowers } from './followers.js'
import { RedisHistoryStore } from './history-store.js'
import { liveChannel } from './keys.js'
import { LiveChannels } from './live-channels.js'
import { RedisSessionRecords } from './session-records.js'
import { RedisStreamRegistry } from './stream-registry.js'

/** Everything the replicas share, in one Redis or one Redis Cluster: three clients at most, whatever the number of sessions. */
export function createRedisClusterStore (options: ResolvedOptions, metrics: StoreMetrics, log: FastifyBaseLogger, epoch: () => string): ClusterStore {
  const { store: storeOptions, history: historyOptions } = options
  const target = storeOptions.cluster.length > 0 ? { cluster: storeOptions.cluster } : { url: storeOptions.url }
  const clients = connectRedis(target, log, { durable: storeOptions.durable }, {
    onLost: (role) => {
      metrics.storeConnectionsLost.inc({ connection: role })
      metrics.storeConnectionsUp.dec()
    },
    onReady: () => metrics.storeConnectionsUp.inc()
  })
  const onOperation = (op: string, result: 'ok' | 'error', seconds: number): void => {
    metrics.storeOperations.inc({ op, result })
    metrics.storeLatency.observe({ op }, seconds)
  }
  const { keyPrefix } = storeOptions
  // A finished stream stays resumable for the history TTL; an owned one as long as its lease is renewed.
  const retainMs = historyOptions.ttlSeconds * 1000 + storeOptions.leaseTtlMs
  const registry = new RedisStreamRegistry(clients.commands, { keyPrefix, retainMs, onOperation })
  const history = new RedisHistoryStore(clients.history, {
    keyPrefix,
    limits: { maxEvents: historyOptions.maxEvents, maxBytes: historyOptions.maxBytes, ttlMs: historyOptions.ttlSeconds * 1000, replay: historyOptions.replay },
    epoch,
    durable: storeOptions.durable,
    onOperation
  })
  return {
    registry,
    history,
    sessions: new RedisSessionRecords(clients.commands, { keyPrefix, idleTimeoutMs: options.sessions.idleTimeoutSeconds * 1000 }),
    live: new LiveChannels(clients.subscriber),
    followers: new RedisFollowers(clients.commands, keyPrefix),
    liveChannelOf: (sessionId, streamId) => liveChannel(keyPrefix, sessionId, streamId),
    open: async () => await openRedis(clients),
    get ready () {
      return isRedisReady(clients)
    },
    close: async () => {
      await history.close()
      await closeRedis(clients)
    }
  }
}
