import { Cluster } from 'ioredis'
import type { Followers } from '../../cluster/cluster-store.js'
import type { RedisClient } from './client.js'
import { liveChannel, recentlyFollowedKey } from './keys.js'

/**
 * Who follows a stream from another replica: the subscribers of its live channel
 * (each such replica subscribes once), and a key that outlives the last of them by
 * a grace period.
 */
export class RedisFollowers implements Followers {
  readonly #redis: RedisClient
  readonly #prefix: string

  constructor (redis: RedisClient, keyPrefix: string) {
    this.#redis = redis
    this.#prefix = keyPrefix
  }

  async followedElsewhere (sessionId: string, streamId: string): Promise<boolean> {
    const [count, recently] = await Promise.all([
      subscribers(this.#redis, liveChannel(this.#prefix, sessionId, streamId)),
      this.#redis.exists(recentlyFollowedKey(this.#prefix, sessionId, streamId))
    ])
    return count > 0 || recently === 1
  }

  async noteLeft (sessionId: string, streamId: string, graceMs: number): Promise<void> {
    await this.#redis.set(recentlyFollowedKey(this.#prefix, sessionId, streamId), '1', 'PX', graceMs)
  }
}

/**
 * The subscribers of a channel. In Redis Cluster a subscription is held by the node the
 * subscriber connected to (PUBLISH reaches every node), and NUMSUB counts only its own:
 * every node is asked.
 */
async function subscribers (redis: RedisClient, channel: string): Promise<number> {
  const nodes = redis instanceof Cluster ? redis.nodes('all') : [redis]
  const counts = await Promise.all(nodes.map(async (node) => {
    const [, count] = await node.pubsub('NUMSUB', channel) as [string, number]
    return count
  }))
  return counts.reduce((sum, count) => sum + count, 0)
}
