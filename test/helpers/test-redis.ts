import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import type { Test } from 'tap'

/** The Redis the tests use: REDIS_URL, or the local default. */
export const TEST_REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

export interface TestRedis {
  readonly redis: Redis
  /** Unique to this call: every key a test writes under it is deleted on teardown. */
  readonly keyPrefix: string
}

/** A new client, auto-pipelined as the proxy's is. The caller quits it. */
export function redisClient (): Redis {
  return new Redis(TEST_REDIS_URL, { enableAutoPipelining: true, maxRetriesPerRequest: 1 })
}

/** A fresh client and key prefix for one test; on teardown its keys are deleted and the client quits. */
export function testRedis (t: Test): TestRedis {
  const redis = redisClient()
  const keyPrefix = `test:${randomUUID()}:`
  t.teardown(async () => {
    await deleteKeys(redis, keyPrefix)
    await redis.quit()
  })
  return { redis, keyPrefix }
}

/** Every key under the prefix, as a list. */
export async function keysUnder (redis: Redis, keyPrefix: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 1000)
    keys.push(...batch)
    cursor = next
  } while (cursor !== '0')
  return keys
}

export async function deleteKeys (redis: Redis, keyPrefix: string): Promise<void> {
  const keys = await keysUnder(redis, keyPrefix)
  for (let start = 0; start < keys.length; start += 500) await redis.unlink(...keys.slice(start, start + 500))
}
