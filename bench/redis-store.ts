import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'

/**
 * The Redis the `plugin-redis` peer and bench/redis-memory.ts use: $BENCH_REDIS_URL,
 * or the local one. It may be shared (with test suites, other benches): every user
 * of it here writes under a key prefix of its own and deletes its keys afterwards.
 */
export function benchRedisUrl (): string {
  return process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
}

/** A prefix no one else uses: `bench:<uuid>:`. */
export function freshKeyPrefix (): string {
  return `bench:${randomUUID()}:`
}

/** A client that fails at once when Redis is away, instead of retrying: the bench wants to know. */
export function benchRedisClient (url: string): Redis {
  return new Redis(url, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 1, retryStrategy: () => null, enableOfflineQueue: true })
}

/** The server's version, or why the Redis peer cannot run: Redis away, or older than 7.0 (the store needs SET NX GET). */
export async function probeRedis (url: string): Promise<{ version: string } | { reason: string }> {
  const redis = benchRedisClient(url)
  redis.on('error', () => {})
  try {
    await redis.connect()
    const info = await redis.info('server')
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown'
    const major = Number(version.split('.')[0])
    if (!(major >= 7)) return { reason: `Redis ${version} at ${url}; the Redis store needs 7.0 or later` }
    return { version }
  } catch (error) {
    return { reason: `no Redis at ${url} (${error instanceof Error ? error.message : String(error)}); set BENCH_REDIS_URL` }
  } finally {
    redis.disconnect()
  }
}

/** Every key under the prefix, by SCAN (never KEYS: the Redis may be shared and large). */
export async function keysWithPrefix (redis: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${globEscape(prefix)}*`, 'COUNT', 1000)
    cursor = next
    keys.push(...batch)
  } while (cursor !== '0')
  return keys
}

/** Deletes every key under the prefix; how many there were. */
export async function deleteKeysWithPrefix (redis: Redis, prefix: string): Promise<number> {
  const keys = await keysWithPrefix(redis, prefix)
  for (let start = 0; start < keys.length; start += 500) await redis.unlink(...keys.slice(start, start + 500))
  return keys.length
}

/** Deletes a peer's keys with a connection of its own, once the peer has stopped. */
export async function cleanUpPrefix (url: string, prefix: string): Promise<number> {
  const redis = benchRedisClient(url)
  redis.on('error', () => {})
  try {
    await redis.connect()
    return await deleteKeysWithPrefix(redis, prefix)
  } finally {
    redis.disconnect()
  }
}

function globEscape (text: string): string {
  return text.replace(/[*?[\]\\]/g, (character) => `\\${character}`)
}

/** The Redis server's own CPU time so far (INFO cpu: user + system), in microseconds; null when it cannot be asked. */
export async function redisCpuMicros (url: string): Promise<number | null> {
  const redis = benchRedisClient(url)
  redis.on('error', () => {})
  try {
    await redis.connect()
    const info = await redis.info('cpu')
    const seconds = (name: string): number => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? Number.NaN)
    const total = seconds('used_cpu_user') + seconds('used_cpu_sys')
    return Number.isFinite(total) ? Math.round(total * 1e6) : null
  } catch {
    return null
  } finally {
    redis.disconnect()
  }
}
