import { Redis } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'

/**
 * The Redis connections of one replica, whatever the number of sessions (issue 7):
 * one for commands, auto-pipelined, and one that only subscribes to live channels.
 * Nothing blocks on a read (live events come by pub/sub, history by XRANGE), so no
 * command can hang across a reconnect.
 */
export interface RedisClients {
  readonly commands: Redis
  readonly subscriber: Redis
}

export function connectRedis (url: string, log: FastifyBaseLogger): RedisClients {
  const options = {
    enableAutoPipelining: true,
    // Commands wait for a reconnect instead of failing: appends must go in, in order. The
    // lease keeper, not a command timeout, decides when this replica has waited too long.
    maxRetriesPerRequest: null,
    retryStrategy: (attempt: number) => Math.min(attempt * 100, 2000),
    lazyConnect: true
  }
  const commands = new Redis(url, { ...options, connectionName: 'mcp-sse-commands' })
  const subscriber = new Redis(url, { ...options, connectionName: 'mcp-sse-live' })
  for (const [role, client] of [['commands', commands], ['live', subscriber]] as const) {
    let wasReady = false
    client.on('ready', () => {
      if (wasReady) log.info({ redis: role }, 'reconnected to Redis')
      wasReady = true
    })
    client.on('error', (error: Error) => log.warn({ redis: role, err: error }, 'Redis connection error'))
    client.on('end', () => { wasReady = false })
  }
  return { commands, subscriber }
}

/** Connects both clients; rejects when Redis cannot be reached at start. */
export async function openRedis (clients: RedisClients): Promise<void> {
  await Promise.all([clients.commands.connect(), clients.subscriber.connect()])
}

export async function closeRedis (clients: RedisClients): Promise<void> {
  await Promise.all([clients.commands.quit().catch(() => clients.commands.disconnect()), clients.subscriber.quit().catch(() => clients.subscriber.disconnect())])
}

/** Whether new work can be recorded now. */
export function isRedisReady (clients: RedisClients): boolean {
  return clients.commands.status === 'ready'
}
