import type { Redis } from 'ioredis'
import type { Followers } from '../../cluster/cluster-store.js'
import { liveChannel, recentlyFollowedKey } from './keys.js'

/**
 * Who follows a stream from another replica: the subscribers of its live channel
 * (each such replica subscribes once), and a key that outlives the last of them by
 * a grace period.
 */
export class RedisFollowers implements Followers {
  readonly #redis: Redis
  readonly #prefix: string

  constructor (redis: Redis, keyPrefix: string) {
    this.#redis = redis
    this.#prefix = keyPrefix
  }

  async followedElsewhere (sessionId: string, streamId: string): Promise<boolean> {
    const [[, count], recently] = await Promise.all([
      this.#redis.pubsub('NUMSUB', liveChannel(this.#prefix, sessionId, streamId)) as Promise<[string, number]>,
      this.#redis.exists(recentlyFollowedKey(this.#prefix, sessionId, streamId))
    ])
    return count > 0 || recently === 1
  }

  async noteLeft (sessionId: string, streamId: string, graceMs: number): Promise<void> {
    await this.#redis.set(recentlyFollowedKey(this.#prefix, sessionId, streamId), '1', 'PX', graceMs)
  }
}
