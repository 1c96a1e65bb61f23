import type { RedisKey, RedisValue, Result } from 'ioredis'
import type { RedisClient } from './client.js'
import { leaseKey } from './keys.js'

/**
 * The Lua scripts of the upstream leases: which replica reads a stream's upstream,
 * until when, with which fencing token. The token is the stream meta's `fence`,
 * which the history's append script checks.
 */

/**
 * KEYS: meta, lease. ARGV: owner, ttlMs.
 * Takes the lease of an unfinished stream that has none; returns its new fencing token, 0 while
 * another replica holds it, or -1 for a stream that is over or gone (nothing to claim, ever).
 */
export const CLAIM_SCRIPT = `
local meta, lease = KEYS[1], KEYS[2]
if redis.call('EXISTS', meta) == 0 or redis.call('HGET', meta, 'finished') == '1' then return -1 end
if redis.call('EXISTS', lease) == 1 then return 0 end
local token = redis.call('HINCRBY', meta, 'fence', 1)
redis.call('SET', lease, ARGV[1] .. ':' .. string.format('%d', token), 'PX', ARGV[2])
return token
`

/** Keys per lease in a renewal that also touches the stream index and the active index: one Redis only. */
export const RENEW_KEYS_WITH_INDEXES = 7
/** Keys per lease in a renewal within its session's slot (Redis Cluster): the indexes are in slots of their own. */
export const RENEW_KEYS_IN_SLOT = 5

/**
 * KEYS, per lease, `stride` of: lease, meta, history, session counters, session streams, and with
 * stride 7 the stream index and the session's active index shard.
 * ARGV: stride, ttlMs, retainMs, expiresAt, then per lease `<owner>:<token>` and its active index member.
 * Renews many leases in one call: each is extended only for its holder, and keeps its stream's keys
 * for `retainMs` more (with stride 7, its index entries too, due at expiresAt). Returns 1 or 0 per lease.
 */
export const RENEW_MANY_SCRIPT = `
local stride, ttl, retain, expiresAt = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local renewed = {}
for lease = 0, #KEYS / stride - 1 do
  local key = lease * stride
  if redis.call('GET', KEYS[key + 1]) == ARGV[5 + 2 * lease] then
    redis.call('PEXPIRE', KEYS[key + 1], ttl)
    for index = 2, 5 do redis.call('PEXPIRE', KEYS[key + index], retain) end
    if stride == ${RENEW_KEYS_WITH_INDEXES} then
      redis.call('PEXPIRE', KEYS[key + 6], retain)
      redis.call('ZADD', KEYS[key + 7], expiresAt, ARGV[6 + 2 * lease])
    end
    renewed[lease + 1] = 1
  else
    renewed[lease + 1] = 0
  end
end
return renewed
`

/** KEYS: lease, meta. ARGV: `<owner>:<token>`. Drops the lease only for its holder; returns {released, finished}. */
export const RELEASE_SCRIPT = `
local released = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  released = 1
end
local finished = redis.call('HGET', KEYS[2], 'finished') == '1' and 1 or 0
return {released, finished}
`

const SCRIPTS = {
  mcpSseClaim: { lua: CLAIM_SCRIPT, numberOfKeys: 2 },
  // Its number of keys varies: given with each call. One Redis only: ioredis's Cluster client would
  // route it by that number, not by its first key.
  mcpSseRenewMany: { lua: RENEW_MANY_SCRIPT },
  // The same script for one lease, whose keys are all in its session's slot: for Redis Cluster.
  mcpSseRenewInSlot: { lua: RENEW_MANY_SCRIPT, numberOfKeys: RENEW_KEYS_IN_SLOT },
  mcpSseRelease: { lua: RELEASE_SCRIPT, numberOfKeys: 2 }
} as const

/** Registers the scripts on a client, as commands named after SCRIPTS' keys; registering twice is harmless. */
export function defineLeaseScripts (redis: RedisClient): void {
  for (const [name, definition] of Object.entries(SCRIPTS)) redis.defineCommand(name, definition)
}

/**
 * Drops the leases of streams whose history was dropped: a lease outlives its
 * stream in nothing but the holder's renewals.
 */
export async function dropLeases (redis: RedisClient, prefix: string, sessionId: string, streamIds: readonly string[]): Promise<void> {
  if (streamIds.length === 0) return
  // One session's keys share a hash slot: one DEL is fine in Redis Cluster.
  await redis.del(...streamIds.map((streamId) => leaseKey(prefix, sessionId, streamId)))
}

// Replies are left unknown: the callers narrow them.
declare module 'ioredis' {
  interface RedisCommander<Context> {
    mcpSseClaim(meta: RedisKey, lease: RedisKey, owner: RedisValue, ttlMs: RedisValue): Result<unknown, Context>
    /** numberOfKeys, the keys, then the ARGV of RENEW_MANY_SCRIPT. */
    mcpSseRenewMany(numberOfKeys: number, ...keysAndArgs: RedisValue[]): Result<unknown, Context>
    /** RENEW_MANY_SCRIPT for one lease, stride 5: its five keys, then the ARGV. */
    mcpSseRenewInSlot(lease: RedisKey, meta: RedisKey, history: RedisKey, sessionCounters: RedisKey, sessionStreams: RedisKey, stride: RedisValue, ttlMs: RedisValue, retainMs: RedisValue, expiresAt: RedisValue, holder: RedisValue, member: RedisValue): Result<unknown, Context>
    mcpSseRelease(lease: RedisKey, meta: RedisKey, holder: RedisValue): Result<unknown, Context>
  }
}
