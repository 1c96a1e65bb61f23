import { Redis, type Cluster } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'

/** What the store's classes and scripts run on: one Redis, or a Redis Cluster. */
export type RedisClient = Redis | Cluster

/**
 * The Redis connections of one replica, whatever the number of sessions:
 * one for commands, auto-pipelined, and one that only subscribes to live channels.
 * Nothing blocks on a read (live events come by pub/sub, history by XRANGE), so no
 * command can hang across a reconnect.
 */
export interface RedisClients {
  readonly commands: Redis
  readonly subscriber: Redis
  /**
   * store.durable: the history's own connection. WAIT blocks the connection it runs on
   * until a replica acknowledges its writes, so it must not hold up leases and reads.
   */
  readonly history: Redis
}

export interface RedisConnectionEvents {
  /** A connection that was up went down. */
  readonly onLost: (role: string) => void
  /** A connection is up (again). */
  readonly onReady: (role: string) => void
}

export function connectRedis (url: string, log: FastifyBaseLogger, options: { durable: boolean }, events: RedisConnectionEvents): RedisClients {
  const clientOptions = {
    enableAutoPipelining: true,
    // Commands wait for a reconnect instead of failing: appends must go in, in order. The
    // lease keeper, not a command timeout, decides when this replica has waited too long.
    maxRetriesPerRequest: null,
    retryStrategy: (attempt: number) => Math.min(attempt * 100, 2000),
    lazyConnect: true
  }
  const commands = new Redis(url, { ...clientOptions, connectionName: 'mcp-sse-commands' })
  const subscriber = new Redis(url, { ...clientOptions, connectionName: 'mcp-sse-live' })
  const history = options.durable ? new Redis(url, { ...clientOptions, connectionName: 'mcp-sse-history' }) : commands
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

function distinctClients (clients: Record<string, Redis>): Array<[string, Redis]> {
  const roles = new Map<Redis, string>()
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
