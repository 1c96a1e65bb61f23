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

/**
 * KEYS: lease, meta, history, session counters, session streams. ARGV: `<owner>:<token>`, ttlMs, retainMs.
 * Extends the lease only for its holder, and keeps the stream's keys for `retainMs` more; 1 or 0.
 */
export const RENEW_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
for index = 2, 5 do redis.call('PEXPIRE', KEYS[index], ARGV[3]) end
return 1
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
  mcpSseRenew: { lua: RENEW_SCRIPT, numberOfKeys: 5 },
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
    mcpSseRenew(lease: RedisKey, meta: RedisKey, history: RedisKey, sessionCounters: RedisKey, sessionStreams: RedisKey, holder: RedisValue, ttlMs: RedisValue, retainMs: RedisValue): Result<unknown, Context>
    mcpSseRelease(lease: RedisKey, meta: RedisKey, holder: RedisValue): Result<unknown, Context>
  }
}
