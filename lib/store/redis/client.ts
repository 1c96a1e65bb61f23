import { Cluster, Redis } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'

/** What the store's classes and scripts run on: one Redis, or a Redis Cluster. */
export type RedisClient = Redis | Cluster

/** Where the store is: one Redis (its URL), or a Redis Cluster (the URLs of some of its nodes). */
export type RedisTarget = { readonly url: string } | { readonly cluster: readonly string[] }

/**
 * The Redis connections of one replica, whatever the number of sessions:
 * one for commands, auto-pipelined, and one that only subscribes to live channels.
 * Nothing blocks on a read (live events come by pub/sub, history by XRANGE), so no
 * command can hang across a reconnect. Against a cluster, each is a cluster client,
 * with a connection to each node.
 */
export interface RedisClients {
  readonly commands: RedisClient
  readonly subscriber: RedisClient
  /**
   * store.durable: the history's own connection. WAIT blocks the connection it runs on
   * until a replica acknowledges its writes, so it must not hold up leases and reads.
   */
  readonly history: RedisClient
}

export interface RedisConnectionEvents {
  /** A connection that was up went down. */
  readonly onLost: (role: string) => void
  /** A connection is up (again). */
  readonly onReady: (role: string) => void
}

export function connectRedis (target: RedisTarget, log: FastifyBaseLogger, options: { durable: boolean }, events: RedisConnectionEvents): RedisClients {
  const commands = createClient(target, 'mcp-sse-commands')
  const subscriber = createClient(target, 'mcp-sse-live')
  const history = options.durable ? createClient(target, 'mcp-sse-history') : commands
  for (const [role, client] of distinctClients({ commands, live: subscriber, history })) {
    let up = false
    let wasUp = false
    client.on('ready', () => {
      if (wasUp) log.info({ redis: role }, 'reconnected to Redis')
      up = true
      wasUp = true
      events.onReady(role)
    })
    client.on('error', (error: Error) => log.warn({ redis: role, err: error }, 'Redis connection error'))
    client.on('close', () => {
      if (!up) return
      up = false
      log.warn({ redis: role }, 'lost the connection to Redis; reconnecting')
      events.onLost(role)
    })
  }
  return { commands, subscriber, history }
}

const retryStrategy = (attempt: number): number => Math.min(attempt * 100, 2000)

function createClient (target: RedisTarget, connectionName: string): RedisClient {
  const clientOptions = {
    enableAutoPipelining: true,
    // Commands wait for a reconnect instead of failing: appends must go in, in order. The
    // lease keeper, not a command timeout, decides when this replica has waited too long.
    maxRetriesPerRequest: null,
    retryStrategy,
    lazyConnect: true,
    connectionName
  }
  if ('url' in target) return new Redis(target.url, clientOptions)
  // The configuration gives at least one node.
  const auth = new URL(target.cluster[0] ?? 'redis://')
  return new Cluster(target.cluster.map(clusterNode), {
    enableAutoPipelining: true,
    lazyConnect: true,
    clusterRetryStrategy: retryStrategy,
    // The nodes share the first URL's credentials and TLS, as a cluster's nodes do.
    redisOptions: {
      maxRetriesPerRequest: null,
      connectionName,
      username: auth.username === '' ? undefined : decodeURIComponent(auth.username),
      password: auth.password === '' ? undefined : decodeURIComponent(auth.password),
      tls: auth.protocol === 'rediss:' ? {} : undefined
    }
  })
}

function clusterNode (url: string): { host: string, port: number } {
  const { hostname, port } = new URL(url)
  // An IPv6 host comes bracketed from URL.
  return { host: hostname.replace(/^\[(.*)\]$/, '$1'), port: port === '' ? 6379 : Number(port) }
}

function distinctClients (clients: Record<string, RedisClient>): Array<[string, RedisClient]> {
  const roles = new Map<RedisClient, string>()
  for (const [role, client] of Object.entries(clients)) {
    if (!roles.has(client)) roles.set(client, role)
  }
  return [...roles].map(([client, role]) => [role, client])
}

/** Connects both clients; rejects when Redis cannot be reached at start. */
export async function openRedis (clients: RedisClients): Promise<void> {
  await Promise.all(distinctClients({ ...clients }).map(async ([, client]) => await client.connect()))
}

export async function closeRedis (clients: RedisClients): Promise<void> {
  await Promise.all(distinctClients({ ...clients }).map(async ([, client]) => {
    // Closing is not losing the connection.
    client.removeAllListeners('close')
    await client.quit().catch(() => client.disconnect())
  }))
}

/** Whether new work can be recorded now. */
export function isRedisReady (clients: RedisClients): boolean {
  return clients.commands.status === 'ready'
}
