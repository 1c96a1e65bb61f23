import type { RedisKey, RedisValue, Result } from 'ioredis'
import type { RedisClient } from './client.js'

/**
 * The Lua scripts that open and close a stream in the registry: its registration,
 * with the descriptor another replica needs to take it over, and its end.
 * (Its lease is in lease-scripts.ts.)
 */

/**
 * KEYS: meta, history, session streams. ARGV: epoch, descriptor, streamId, retainMs.
 * Creates the stream's meta unless it exists (a registered stream never goes back to 0), and sets its descriptor.
 * The keys expire `retainMs` from now unless a lease renewal extends them: nothing outlives its replicas for long.
 */
export const REGISTER_SCRIPT = `
local meta, history, streams = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', meta) == 0 then
  redis.call('DEL', history)
  redis.call('HSET', meta, 'last', 0, 'evicted', 0, 'bytes', 0, 'fence', 0, 'epoch', ARGV[1])
end
redis.call('HSET', meta, 'desc', ARGV[2])
redis.call('SADD', streams, ARGV[3])
redis.call('PEXPIRE', meta, ARGV[4])
redis.call('PEXPIRE', streams, ARGV[4])
return 1
`

/**
 * KEYS: meta, history. ARGV: token, live channel, retainMs.
 * Marks the stream finished unless a newer owner holds it, and publishes `end <last>`; 1 or 0.
 * A finished stream stays resumable for `retainMs`, then its keys expire.
 */
export const FINISH_SCRIPT = `
local state = redis.call('HMGET', KEYS[1], 'fence', 'last')
if redis.call('EXISTS', KEYS[1]) == 0 or tonumber(state[1] or '0') > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'finished', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PUBLISH', ARGV[2], 'end ' .. (state[2] or '0'))
return 1
`

const SCRIPTS = {
  mcpSseRegister: { lua: REGISTER_SCRIPT, numberOfKeys: 3 },
  mcpSseFinish: { lua: FINISH_SCRIPT, numberOfKeys: 2 }
} as const

/** Registers the scripts on a client, as commands named after SCRIPTS' keys; registering twice is harmless. */
export function defineRegistryScripts (redis: RedisClient): void {
  for (const [name, definition] of Object.entries(SCRIPTS)) redis.defineCommand(name, definition)
}

// Replies are left unknown: the callers narrow them.
declare module 'ioredis' {
  interface RedisCommander<Context> {
    mcpSseRegister(meta: RedisKey, history: RedisKey, sessionStreams: RedisKey, epoch: RedisValue, descriptor: RedisValue, streamId: RedisValue, retainMs: RedisValue): Result<unknown, Context>
    mcpSseFinish(meta: RedisKey, history: RedisKey, token: RedisValue, channel: RedisValue, retainMs: RedisValue): Result<unknown, Context>
  }
}
