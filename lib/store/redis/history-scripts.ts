import type { RedisKey, RedisValue, Result } from 'ioredis'
import type { RecordedEvent } from '../../history/history-store.js'
import type { RedisClient } from './client.js'
import { replyArray } from './operations.js'

/**
 * The Lua scripts of the history: its events, its evictions, its drops. Each runs
 * atomically in Redis, so that a stream's metadata and its events never disagree,
 * whatever runs beside it.
 * ioredis sends them by EVALSHA and falls back to EVAL on NOSCRIPT.
 *
 * Redis does not roll back a script that fails half way: every script checks all it
 * needs before its first write. Key names are passed as KEYS, except the other
 * streams of a session, which are named from the session's own keys: all in one
 * hash slot, thanks to the `{sessionId}` tag.
 *
 * Sizes are counted in Lua as `#text + #upstreamId + 48`: UTF-8 bytes, where the memory
 * store counts UTF-16 code units. Both are the same for ASCII.
 */

/** At most this many events evicted by one script, so that no call can hold Redis for long. */
export const MAX_EVICTIONS_PER_SCRIPT = 10_000

const ENTRY_HELPERS = `
local function entryField(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
  return nil
end

local function entryBytes(fields)
  return #(entryField(fields, 't') or '') + #(entryField(fields, 'u') or '') + 48
end

local function idParts(id)
  local seq, order = string.match(id, '^(%d+)%-(%d+)$')
  return seq, tonumber(order)
end

-- Removes every entry up to and including the one with this id (exact trim, not ~).
local function trimThrough(history, id)
  local seq, order = idParts(id)
  redis.call('XTRIM', history, 'MINID', seq .. '-' .. string.format('%d', order + 1))
  return seq
end

-- Books an eviction worth \`bytes\`, through seq \`through\`, in the stream's meta and the session's counters;
-- returns the session's bytes left. (0 - bytes, not -bytes: Lua writes -0 as "-0", which HINCRBY refuses.)
local function recordEviction(meta, counters, through, bytes)
  redis.call('HSET', meta, 'evicted', through)
  redis.call('HINCRBY', meta, 'bytes', 0 - bytes)
  return redis.call('HINCRBY', counters, 'bytes', 0 - bytes)
end
`

/**
 * KEYS: meta, history, session counters, session streams.
 * ARGV: token, epoch, now, maxEvents, maxBytes, replay, streamId, live channel, then (seq, upstreamId, text) per event.
 * Returns {'ok', eventsDelta, bytesDelta, last, lostThrough}, or {'fenced'}, {'reset'}, {'conflict'}, {'gap'} having written nothing.
 *
 * An owned append (token > 0, not fenced) whose first event is past `last + 1` was preceded by
 * writes that Redis acknowledged and then lost: a failover to a replica that lagged, an AOF
 * restart. Its clients saw those events, so the seqs must not be issued again, and no resume
 * may be served across the hole: the hole and everything before it are booked as evicted
 * (lostThrough, the seq before the batch), and the batch goes on from there. Unowned appends
 * still get {'gap'}.
 */
export const APPEND_SCRIPT = `${ENTRY_HELPERS}
local meta, history, counters, streams = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local token, epoch, now = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local maxEvents, maxBytes, replay = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6] == '1'
local streamId, channel = ARGV[7], ARGV[8]
local FIRST_EVENT = 9

local state = redis.call('HMGET', meta, 'fence', 'epoch', 'last', 'bytes')
if tonumber(state[1] or '0') > token then return {'fenced'} end
-- A meta has these fields from its creation on: EXISTS only for one that has none of them.
local exists = state[1] ~= false or state[2] ~= false or state[3] ~= false or redis.call('EXISTS', meta) == 1
if not exists and token > 0 then return {'reset'} end
if exists and state[2] ~= epoch then return {'reset'} end
local last = tonumber(state[3] or '0')
local firstSeq = tonumber(ARGV[FIRST_EVENT])
local lostThrough = 0
if exists and token > 0 and firstSeq ~= nil and firstSeq > last + 1 then lostThrough = firstSeq - 1 end

-- Check the whole batch before writing any of it.
local expected = math.max(last, lostThrough)
local batchIds = {}
local writes = {}
for i = FIRST_EVENT, #ARGV, 3 do
  local seq, upstreamId = tonumber(ARGV[i]), ARGV[i + 1]
  if seq == nil then return {'gap'} end
  if seq <= expected then
    local known = batchIds[seq]
    if known == nil then
      local entry = redis.call('XRANGE', history, ARGV[i], ARGV[i])[1]
      known = entry and (entryField(entry[2], 'u') or '') or false
    end
    if known ~= false and known ~= upstreamId then return {'conflict'} end
  elseif seq == expected + 1 then
    expected = seq
    batchIds[seq] = upstreamId
    writes[#writes + 1] = i
  else
    return {'gap'}
  end
end

if not exists and #writes > 0 then
  -- A history left without its meta cannot be continued: its ids would go backwards.
  redis.call('DEL', history)
  redis.call('HSET', meta, 'last', 0, 'evicted', 0, 'bytes', 0, 'fence', 0, 'epoch', epoch)
  redis.call('SADD', streams, streamId)
end

local budget = ${MAX_EVICTIONS_PER_SCRIPT}
local evicted, evictedBytes = 0, 0
-- The session's bytes, as the last HINCRBY of them answered: read once, at the end, if none did.
local sessionBytes = nil

if lostThrough > 0 then
  evicted, evictedBytes = redis.call('XLEN', history), tonumber(redis.call('HGET', meta, 'bytes') or '0')
  redis.call('DEL', history)
  sessionBytes = recordEviction(meta, counters, lostThrough, evictedBytes)
  redis.call('HSET', meta, 'last', lostThrough)
end

local added, addedBytes, cursor = 0, 0, nil
local order = #writes > 0 and redis.call('HINCRBY', counters, 'order', #writes) - #writes or 0
for k, i in ipairs(writes) do
  local seq, upstreamId = ARGV[i], ARGV[i + 1]
  local text = replay and ARGV[i + 2] or ''
  local id = seq .. '-' .. string.format('%d', order + k)
  if upstreamId == '' then
    redis.call('XADD', history, id, 't', text, 'a', now)
  else
    redis.call('XADD', history, id, 't', text, 'u', upstreamId, 'a', now)
    cursor = upstreamId
  end
  added = added + 1
  addedBytes = addedBytes + #text + #upstreamId + 48
end
local excess = math.min(redis.call('XLEN', history) - maxEvents, budget)
local trimmedThrough, trimmedBytes = nil, 0
if excess > 0 then
  local oldest = redis.call('XRANGE', history, '-', '+', 'COUNT', excess)
  for _, entry in ipairs(oldest) do trimmedBytes = trimmedBytes + entryBytes(entry[2]) end
  trimmedThrough = trimThrough(history, oldest[#oldest][1])
  evicted, evictedBytes, budget = evicted + #oldest, evictedBytes + trimmedBytes, budget - #oldest
end
-- What was added and what that evicted, booked in one write to the meta and one to the session:
-- the meta's bytes as read above (none left after a lost range), plus the batch, less the trim.
if added > 0 then
  local fields = {'last', expected, 'bytes', (lostThrough > 0 and 0 or tonumber(state[4] or '0')) + addedBytes - trimmedBytes}
  if cursor then
    table.insert(fields, 'cursor')
    table.insert(fields, cursor)
  end
  if trimmedThrough then
    table.insert(fields, 'evicted')
    table.insert(fields, trimmedThrough)
  end
  redis.call('HSET', meta, unpack(fields))
  sessionBytes = redis.call('HINCRBY', counters, 'bytes', addedBytes - trimmedBytes)
elseif trimmedThrough then
  sessionBytes = recordEviction(meta, counters, trimmedThrough, trimmedBytes)
end

sessionBytes = sessionBytes or tonumber(redis.call('HGET', counters, 'bytes') or '0')
if sessionBytes > maxBytes then
  -- The session's streams are named like this one: same prefix, another stream id.
  local metaBase = string.sub(meta, 1, #meta - #streamId)
  local historyBase = string.sub(history, 1, #history - #streamId)
  local members = redis.call('SMEMBERS', streams)
  local heads = {}
  local function headOf(member)
    if heads[member] == nil then
      heads[member] = redis.call('XRANGE', historyBase .. member, '-', '+', 'COUNT', 1)[1] or false
    end
    return heads[member]
  end
  while sessionBytes > maxBytes and budget > 0 do
    local oldestMember, oldestEntry, oldestOrder = nil, nil, nil
    for _, member in ipairs(members) do
      local head = headOf(member)
      if head then
        local _, order = idParts(head[1])
        if oldestOrder == nil or order < oldestOrder then
          oldestMember, oldestEntry, oldestOrder = member, head, order
        end
      end
    end
    if oldestMember == nil then break end
    local bytes, seq = entryBytes(oldestEntry[2]), idParts(oldestEntry[1])
    redis.call('XDEL', historyBase .. oldestMember, oldestEntry[1])
    recordEviction(metaBase .. oldestMember, counters, seq, bytes)
    heads[oldestMember] = nil
    sessionBytes = sessionBytes - bytes
    evicted, evictedBytes, budget = evicted + 1, evictedBytes + bytes, budget - 1
  end
end

-- One message for the batch: the first seq, a space, each text's length in bytes (comma-separated), a newline, the texts.
if #writes > 0 then
  local lengths, texts = {}, {}
  for k, i in ipairs(writes) do
    lengths[k] = #ARGV[i + 2]
    texts[k] = ARGV[i + 2]
  end
  redis.call('PUBLISH', channel, ARGV[writes[1]] .. ' ' .. table.concat(lengths, ',') .. '\\n' .. table.concat(texts))
end

return {'ok', added - evicted, addedBytes - evictedBytes, expected, lostThrough}
`

/**
 * KEYS: meta, history. ARGV: afterSeq, afterSeq + 1.
 * Returns {'unknown'}, {'evicted'} or {'found', entries} where entries are XRANGE's reply.
 */
export const READ_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'unknown'} end
local state = redis.call('HMGET', KEYS[1], 'last', 'evicted')
local after, last, evicted = tonumber(ARGV[1]), tonumber(state[1] or '0'), tonumber(state[2] or '0')
if after > last then return {'unknown'} end
if after < evicted then return {'evicted'} end
if after == last then return {'found', {}} end
local entries = redis.call('XRANGE', KEYS[2], ARGV[2], '+')
-- A history with fewer entries than its meta counts (evicted by a maxmemory policy, or lost) cannot serve this position.
if #entries ~= last - after or tonumber(string.match(entries[1][1], '^(%d+)')) ~= after + 1 then return {'evicted'} end
return {'found', entries}
`

/**
 * KEYS: meta, history, session counters. ARGV: cutoff (ms), at most how many to evict.
 * Evicts the events appended at or before the cutoff. Returns {events, bytes} evicted,
 * or nil when the stream is gone.
 */
export const EXPIRE_SCRIPT = `${ENTRY_HELPERS}
local meta, history, counters = KEYS[1], KEYS[2], KEYS[3]
local cutoff, budget = tonumber(ARGV[1]), tonumber(ARGV[2])
if redis.call('EXISTS', meta) == 0 then return false end
local PAGE = 100
local events, bytes, lastId, start = 0, 0, nil, '-'
local expired = true
while expired and events < budget do
  local page = redis.call('XRANGE', history, start, '+', 'COUNT', math.min(PAGE, budget - events))
  for _, entry in ipairs(page) do
    if tonumber(entryField(entry[2], 'a') or '0') > cutoff then
      expired = false
      break
    end
    events, bytes, lastId = events + 1, bytes + entryBytes(entry[2]), entry[1]
  end
  if #page == 0 then break end
  start = '(' .. page[#page][1]
end
if lastId then recordEviction(meta, counters, trimThrough(history, lastId), bytes) end
return {events, bytes}
`

/**
 * KEYS: meta, history, session counters, session streams. ARGV: streamId.
 * Returns {events, bytes} the stream held, or nil when there was no such stream.
 * The stream's lease is the lease code's to drop (dropLeases in lease-scripts.ts).
 */
export const DROP_STREAM_SCRIPT = `
local meta, history, counters, streams = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local known = redis.call('EXISTS', meta, history) > 0 or redis.call('SISMEMBER', streams, ARGV[1]) == 1
if not known then return false end
local events = redis.call('XLEN', history)
local bytes = tonumber(redis.call('HGET', meta, 'bytes') or '0')
redis.call('DEL', meta, history)
redis.call('SREM', streams, ARGV[1])
if redis.call('SCARD', streams) == 0 then
  redis.call('DEL', counters)
else
  redis.call('HINCRBY', counters, 'bytes', 0 - bytes)
end
return {events, bytes}
`

/**
 * KEYS: session counters, session streams. ARGV: the prefixes of the meta and history keys of the session's streams.
 * Returns {events, bytes, streamId...}: what the session held, and its streams (whose leases the lease code drops).
 */
export const DROP_SESSION_SCRIPT = `
local counters, streams = KEYS[1], KEYS[2]
local metaBase, historyBase = ARGV[1], ARGV[2]
local reply = {0, 0}
-- No unpack(): Lua's stack caps it at a few thousand values.
for _, member in ipairs(redis.call('SMEMBERS', streams)) do
  reply[1] = reply[1] + redis.call('XLEN', historyBase .. member)
  reply[2] = reply[2] + tonumber(redis.call('HGET', metaBase .. member, 'bytes') or '0')
  redis.call('DEL', metaBase .. member, historyBase .. member)
  reply[#reply + 1] = member
end
redis.call('DEL', counters, streams)
return reply
`

/** KEYS: one key. ARGV: a value. Deletes the key only while it holds that value; 1 or 0. */
export const DELETE_IF_EQUAL_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`

const SCRIPTS = {
  mcpSseAppend: { lua: APPEND_SCRIPT, numberOfKeys: 4 },
  mcpSseRead: { lua: READ_SCRIPT, numberOfKeys: 2 },
  mcpSseExpire: { lua: EXPIRE_SCRIPT, numberOfKeys: 3 },
  mcpSseDropStream: { lua: DROP_STREAM_SCRIPT, numberOfKeys: 4 },
  mcpSseDropSession: { lua: DROP_SESSION_SCRIPT, numberOfKeys: 2 },
  mcpSseDeleteIfEqual: { lua: DELETE_IF_EQUAL_SCRIPT, numberOfKeys: 1 }
} as const

/** A field of an XRANGE entry, `[field, value, ...]`. */
export function entryField (fields: unknown, name: string): string | undefined {
  const list = replyArray(fields)
  for (let index = 0; index + 1 < list.length; index += 2) {
    const value = list[index + 1]
    if (list[index] === name && typeof value === 'string') return value
  }
  return undefined
}

/** One XRANGE entry of a history, `[<seq>-<order>, [t, text, u, upstreamId, a, time]]`, as a recorded event. */
export function recordedEvent (entry: unknown): RecordedEvent {
  const [id, fields] = replyArray(entry)
  return {
    seq: Number.parseInt(String(id), 10),
    upstreamId: entryField(fields, 'u'),
    text: entryField(fields, 't') ?? ''
  }
}

/** Registers the scripts on a client, as commands named after SCRIPTS' keys; registering twice is harmless. */
export function defineHistoryScripts (redis: RedisClient): void {
  for (const [name, definition] of Object.entries(SCRIPTS)) redis.defineCommand(name, definition)
}

// Replies are left unknown: the callers narrow them.
declare module 'ioredis' {
  interface RedisCommander<Context> {
    mcpSseAppend(meta: RedisKey, history: RedisKey, sessionCounters: RedisKey, sessionStreams: RedisKey, ...args: RedisValue[]): Result<unknown, Context>
    mcpSseRead(meta: RedisKey, history: RedisKey, afterSeq: RedisValue, fromSeq: RedisValue): Result<unknown, Context>
    mcpSseExpire(meta: RedisKey, history: RedisKey, sessionCounters: RedisKey, cutoff: RedisValue, maxEvictions: RedisValue): Result<unknown, Context>
    mcpSseDropStream(meta: RedisKey, history: RedisKey, sessionCounters: RedisKey, sessionStreams: RedisKey, streamId: RedisValue): Result<unknown, Context>
    mcpSseDropSession(sessionCounters: RedisKey, sessionStreams: RedisKey, metaBase: RedisValue, historyBase: RedisValue): Result<unknown, Context>
    mcpSseDeleteIfEqual(key: RedisKey, value: RedisValue): Result<unknown, Context>
  }
}
