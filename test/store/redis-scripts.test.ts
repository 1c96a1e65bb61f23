import t, { type Test } from 'tap'
import { parseEvents } from '../../lib/store/redis/live-channels.js'
import type { Redis } from 'ioredis'
import { defineHistoryScripts, entryField, MAX_EVICTIONS_PER_SCRIPT, recordedEvent } from '../../lib/store/redis/history-scripts.js'
import { activeIndexKey, activeMember, epochKey, historyKeys, leaseKey, liveChannel, parseActiveMember, streamIndexKey, type HistoryKeys } from '../../lib/store/redis/keys.js'
import { dropLeases } from '../../lib/store/redis/lease-scripts.js'
import { replyArray, replyNumber } from '../../lib/store/redis/operations.js'
import { RedisStreamRegistry } from '../../lib/store/redis/stream-registry.js'
import { redisClient, testRedis } from '../helpers/test-redis.js'

const EPOCH = 'epoch-01'
const BIG = 1 << 30

interface AppendOptions {
  token?: number
  epoch?: string
  now?: number
  maxEvents?: number
  maxBytes?: number
  replay?: boolean
}

/** [seq, upstreamId, text]: upstreamId '' for none. */
type RawEvent = [number, string, string]

function raw (from: number, to: number, text = 'x'.repeat(10)): RawEvent[] {
  return Array.from({ length: to - from + 1 }, (_, index) => [from + index, `u${from + index}`, text])
}

const rawBytes = (event: RawEvent): number => event[2].length + event[1].length + 48

/** One stream of one session, with the append script called as the store calls it. */
function streamOf (redis: Redis, keyPrefix: string, sessionId: string, streamId: string) {
  const keys: HistoryKeys & { lease: string } = { ...historyKeys(keyPrefix, sessionId, streamId), lease: leaseKey(keyPrefix, sessionId, streamId) }
  return {
    keys,
    append: async (batch: readonly RawEvent[], options: AppendOptions = {}): Promise<unknown> => await redis.mcpSseAppend(
      keys.meta, keys.history, keys.sessionCounters, keys.sessionStreams,
      options.token ?? 0, options.epoch ?? EPOCH, options.now ?? Date.now(), options.maxEvents ?? BIG, options.maxBytes ?? BIG,
      options.replay === false ? '0' : '1', streamId, liveChannel(keyPrefix, sessionId, streamId),
      ...batch.flat()
    ),
    seqs: async (): Promise<number[]> => (await redis.xrange(keys.history, '-', '+')).map((entry) => recordedEvent(entry).seq),
    meta: async (): Promise<Record<string, string>> => await redis.hgetall(keys.meta)
  }
}

function setup (t: Test) {
  const { redis, keyPrefix } = testRedis(t)
  defineHistoryScripts(redis)
  const registry = new RedisStreamRegistry(redis, { keyPrefix, retainMs: 60_000 })
  return { redis, keyPrefix, registry, stream: (sessionId: string, streamId: string) => streamOf(redis, keyPrefix, sessionId, streamId) }
}

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

t.test('append: a superseded fencing token is refused, and nothing is written', async (t) => {
  const { redis, registry, stream } = setup(t)
  const s1 = stream('A', 's1')
  await registry.register('A', 's1', '{}', EPOCH)
  t.equal(await registry.claim('A', 's1', 'replica-1', 5000, Date.now()), 1)
  t.match(await s1.append(raw(1, 2), { token: 1 }), ['ok', 2])
  await redis.pexpire(s1.keys.lease, 1)
  await sleep(10)
  t.match(await s1.append(raw(3, 3), { token: 1 }), ['ok', 1], 'an owner whose lease merely expired, with no new claim, is still accepted')
  t.equal(await registry.claim('A', 's1', 'replica-2', 5000, Date.now()), 2)
  t.same(await s1.append(raw(4, 5), { token: 1 }), ['fenced'])
  t.same(await s1.append(raw(4, 5), { token: 0 }), ['fenced'], 'an unowned append too')
  t.same(await s1.seqs(), [1, 2, 3], 'nothing was written')
  t.match(await s1.meta(), { last: '3', cursor: 'u3', fence: '2' }, 'the cursor is unchanged')
  t.same(await s1.append(raw(4, 4), { token: 2 }), ['ok', 1, rawBytes(raw(4, 4)[0]!), 4, 0])
  t.same(await s1.append(raw(5, 5), { token: 3 }), ['ok', 1, rawBytes(raw(5, 5)[0]!), 5, 0], 'a newer token than the last issued is no stale owner')
})

t.test('append: a retried batch is harmless; a conflicting or out-of-turn one writes nothing', async (t) => {
  const { redis, stream } = setup(t)
  const s1 = stream('A', 's1')
  const batch = raw(1, 3)
  t.same(await s1.append(batch), ['ok', 3, 3 * rawBytes(batch[0]!), 3, 0])
  t.same(await s1.append(batch), ['ok', 0, 0, 3, 0], 'the same batch again adds nothing')
  t.same(await s1.append(raw(3, 4)), ['ok', 1, rawBytes(batch[0]!), 4, 0], 'an overlapping one adds what is new')
  t.same(await s1.append([[5, 'u5', 'x'], [5, 'u5', 'x']]), ['ok', 1, 1 + 2 + 48, 5, 0], 'a seq twice in one batch is written once')
  t.same(await s1.append([[6, 'u6', 'x'], [6, 'other', 'x']]), ['conflict'], 'a seq twice in one batch with different upstream ids conflicts')
  t.same(await s1.append([[2, 'other', 'x']]), ['conflict'])
  t.same(await s1.append([[6, 'u6', 'x'], [2, '', 'x']]), ['conflict'], 'no upstream id is not the one recorded')
  t.same(await s1.append([[6, 'u6', 'x'], [8, 'u8', 'x']]), ['gap'], 'the valid head of a batch with a gap is not written')
  t.same(await s1.append([[Number.NaN, '', 'x']]), ['gap'])
  t.same(await s1.seqs(), [1, 2, 3, 4, 5])
  t.match(await s1.meta(), { last: '5', evicted: '0', cursor: 'u5' })
  t.same(await redis.hget(s1.keys.sessionCounters, 'order'), '5', 'the order counter moved once per event written')
})

t.test('append: an owner whose last writes Redis lost (a failover) goes on past them; the hole is booked evicted, never served', async (t) => {
  const { redis, registry, stream } = setup(t)
  const s1 = stream('A', 's1')
  await registry.register('A', 's1', '{}', EPOCH)
  const token = await registry.claim('A', 's1', 'replica-1', 5000, Date.now()) ?? 0
  const size = rawBytes(raw(1, 1)[0]!)
  t.same(await s1.append(raw(1, 3), { token }), ['ok', 3, 3 * size, 3, 0])
  // The owner also appended 4..6, to a primary that died before its replica had them: the promoted replica holds 1..3.
  t.same(await s1.append(raw(7, 8), { token }), ['ok', 2 - 3, 2 * size - 3 * size, 8, 6], 'the batch is written; 1..6 are booked as evicted')
  t.same(await s1.seqs(), [7, 8])
  t.match(await s1.meta(), { last: '8', evicted: '6', cursor: 'u8', bytes: String(2 * size) })
  t.equal(await redis.hget(s1.keys.sessionCounters, 'bytes'), String(2 * size))
  const read = async (after: number): Promise<unknown> => replyArray(await redis.mcpSseRead(s1.keys.meta, s1.keys.history, after, after + 1))[0]
  t.equal(await read(5), 'evicted', 'an id in the hole is not served')
  t.equal(await read(2), 'evicted', 'nor one before it: the events after it are not all there')
  t.equal(await read(6), 'found', 'an id the owner issued just before the batch is served')
  t.same(await s1.append(raw(10, 10), { token: token - 1 }), ['fenced'], 'a stale owner\'s append past the end is refused')
  const unowned = stream('A', 's2')
  await unowned.append(raw(1, 1))
  t.same(await unowned.append(raw(3, 3)), ['gap'], 'and so is an unowned one: only an owner knows what it issued')
})

t.test('append: an event with no upstream id keeps the cursor, and is stored without `u`', async (t) => {
  const { redis, stream } = setup(t)
  const s1 = stream('A', 's1')
  await s1.append([[1, 'u1', 'a'], [2, '', 'b']])
  t.match(await s1.meta(), { last: '2', cursor: 'u1' })
  const [, second] = await redis.xrange(s1.keys.history, '-', '+')
  t.same(second?.[1].filter((_, index) => index % 2 === 0), ['t', 'a'])
  t.same(await s1.append([[2, '', 'b']]), ['ok', 0, 0, 2, 0], 'and a retry of it is harmless')
})

t.test('append: the entry id is <seq>-<order>, order counting over the whole session', async (t) => {
  const { redis, stream } = setup(t)
  await stream('A', 's1').append(raw(1, 2))
  await stream('A', 's2').append(raw(1, 1))
  await stream('A', 's1').append(raw(3, 3))
  t.same((await redis.xrange(stream('A', 's1').keys.history, '-', '+')).map(([id]) => id), ['1-1', '2-2', '3-4'])
  t.same((await redis.xrange(stream('A', 's2').keys.history, '1', '1')).map(([id]) => id), ['1-3'], 'XRANGE seq seq finds an event by its seq')
  t.same((await redis.smembers(stream('A', 's1').keys.sessionStreams)).sort(), ['s1', 's2'])
})

t.test('append: maxEvents keeps the newest events of the stream', async (t) => {
  const { redis, stream } = setup(t)
  const s1 = stream('A', 's1')
  const batch = raw(1, 5)
  t.same(await s1.append(batch, { maxEvents: 3 }), ['ok', 3, 3 * rawBytes(batch[0]!), 5, 0])
  t.same(await s1.seqs(), [3, 4, 5])
  t.match(await s1.meta(), { last: '5', evicted: '2', bytes: String(3 * rawBytes(batch[0]!)) })
  t.equal(await redis.hget(s1.keys.sessionCounters, 'bytes'), String(3 * rawBytes(batch[0]!)))
  t.same(await s1.append(raw(6, 6), { maxEvents: 3 }), ['ok', 0, 0, 6, 0])
  t.match(await s1.meta(), { evicted: '3' })
})

t.test('append: maxBytes evicts the session\'s oldest events first, across its streams, and no other session\'s', async (t) => {
  const { redis, stream } = setup(t)
  const s1 = stream('A', 's1')
  const s2 = stream('A', 's2')
  const other = stream('B', 's3')
  const size = rawBytes(raw(1, 1)[0]!)
  await other.append(raw(1, 3))
  await s1.append(raw(1, 2), { maxBytes: 4 * size })
  await s2.append(raw(1, 2), { maxBytes: 4 * size })
  await s1.append(raw(3, 3), { maxBytes: 4 * size })
  t.same(await s2.append(raw(3, 4), { maxBytes: 4 * size }), ['ok', 0, 0, 4, 0], 'two in, two out')
  t.same(await s1.seqs(), [3])
  t.same(await s2.seqs(), [2, 3, 4], 'the oldest order went first: s1\'s 1 and 2, then s2\'s 1, not s1\'s newer 3')
  t.match(await s1.meta(), { evicted: '2', bytes: String(size) })
  t.match(await s2.meta(), { evicted: '1', bytes: String(3 * size) })
  t.equal(await redis.hget(s1.keys.sessionCounters, 'bytes'), String(4 * size))
  t.same(await other.seqs(), [1, 2, 3])

  t.same(await s1.append([[4, 'u4', 'x'.repeat(1000)]], { maxBytes: 100 }), ['ok', -4, -4 * size, 4, 0], 'an event bigger than the budget evicts everything, itself too')
  t.same([await s1.seqs(), await s2.seqs()], [[], []])
  t.match(await s1.meta(), { last: '4', evicted: '4', bytes: '0' })
  t.equal(await redis.hget(s1.keys.sessionCounters, 'bytes'), '0')
})

t.test('append: one script evicts at most MAX_EVICTIONS_PER_SCRIPT events', async (t) => {
  const { stream } = setup(t)
  const s1 = stream('A', 's1')
  const count = MAX_EVICTIONS_PER_SCRIPT + 20
  const reply = replyArray(await s1.append(raw(1, count, ''), { maxEvents: 10 }))
  t.same(reply.slice(0, 2), ['ok', 20])
  t.equal((await s1.seqs()).length, 20, 'the rest goes with the next append')
  t.same(replyArray(await s1.append(raw(count + 1, count + 1, ''), { maxEvents: 10 })).slice(0, 2), ['ok', -10])
  t.match(await s1.meta(), { evicted: String(count - 9) })
})

t.test('append: replay off stores no text, but publishes every new event whole, in order', async (t) => {
  const { redis, keyPrefix, stream } = setup(t)
  const s1 = stream('A', 's1')
  const subscriber = redisClient()
  t.teardown(async () => { await subscriber.quit() })
  const messages: string[] = []
  subscriber.on('messageBuffer', (_channel: Buffer, message: Buffer) => messages.push(...parseEvents(message).map(({ seq, text }) => `${seq} ${text}`)))
  await subscriber.subscribe(liveChannel(keyPrefix, 'A', 's1'))
  await s1.append([[1, 'u1', 'first text'], [2, '', 'second']], { replay: false })
  await s1.append([[2, '', 'second'], [3, 'u3', 'third']], { replay: false })
  t.same((await redis.xrange(s1.keys.history, '-', '+')).map(([, fields]) => entryField(fields, 't')), ['', '', ''])
  t.match(await s1.meta(), { bytes: String(3 * 48 + 4) })
  while (messages.length < 3) await sleep(5)
  t.same(messages, ['1 first text', '2 second', '3 third'])
})

t.test('append: a new epoch, or a lost record of an owned stream, is a reset', async (t) => {
  const { redis, registry, stream } = setup(t)
  const s1 = stream('A', 's1')
  await s1.append(raw(1, 2))
  t.same(await s1.append(raw(3, 3), { epoch: 'epoch-02' }), ['reset'])
  t.same(await s1.seqs(), [1, 2])

  const s2 = stream('A', 's2')
  await registry.register('A', 's2', '{}', EPOCH)
  const token = await registry.claim('A', 's2', 'replica-1', 5000, Date.now())
  t.match(await s2.append(raw(1, 2), { token }), ['ok'])
  await redis.del(s2.keys.meta)
  t.same(await s2.append(raw(3, 3), { token }), ['reset'])
  t.same(await s2.seqs(), [1, 2], 'nothing written')

  t.match(await s2.append(raw(1, 1)), ['ok', 1], 'an unowned stream starts again, without the history its record lost')
  t.same(await s2.seqs(), [1])
  t.match(await s2.meta(), { last: '1', fence: '0', epoch: EPOCH })
})

t.test('read: unknown, evicted, or the events after a position', async (t) => {
  const { redis, stream } = setup(t)
  const s1 = stream('A', 's1')
  await s1.append(raw(1, 5), { maxEvents: 3 })
  const read = async (after: number): Promise<unknown> => await redis.mcpSseRead(s1.keys.meta, s1.keys.history, after, after + 1)
  t.same(await read(6), ['unknown'])
  t.same(await read(1), ['evicted'])
  t.same(await read(5), ['found', []])
  t.same(replyArray(replyArray(await read(3))[1]).map(recordedEvent), [
    { seq: 4, upstreamId: 'u4', text: 'x'.repeat(10) },
    { seq: 5, upstreamId: 'u5', text: 'x'.repeat(10) }
  ])
  t.same(await redis.mcpSseRead(stream('A', 'nope').keys.meta, stream('A', 'nope').keys.history, 0, 1), ['unknown'])
})

t.test('read: a history that lost entries its meta still counts is evicted, never a silent gap', async (t) => {
  const { redis, stream } = setup(t)
  const s1 = stream('A', 's1')
  await s1.append(raw(1, 5))
  const read = async (after: number): Promise<unknown> => await redis.mcpSseRead(s1.keys.meta, s1.keys.history, after, after + 1)
  // As a maxmemory policy other than noeviction could: entries go, the meta stays.
  await redis.xtrim(s1.keys.history, 'MINID', '3')
  t.same(await read(1), ['evicted'], 'a hole at the start of the range')
  t.equal(replyArray(replyArray(await read(2))[1]).length, 3, 'from the first kept entry on, it is served')
  await redis.del(s1.keys.history)
  t.same(await read(2), ['evicted'], 'the whole history gone')
})

t.test('expire: evicts the events appended at or before the cutoff, oldest first, page after page', async (t) => {
  const { redis, stream } = setup(t)
  const s1 = stream('A', 's1')
  const old = raw(1, 250)
  const recent = raw(251, 252)
  const sizeOf = (events: RawEvent[]): number => events.reduce((sum, event) => sum + rawBytes(event), 0)
  await s1.append(old, { now: 1000 })
  await s1.append(recent, { now: 2000 })
  const expire = async (cutoff: number, budget = MAX_EVICTIONS_PER_SCRIPT): Promise<unknown> =>
    await redis.mcpSseExpire(s1.keys.meta, s1.keys.history, s1.keys.sessionCounters, cutoff, budget)
  t.same(await expire(999), [0, 0])
  t.same(await expire(1000, 120), [120, sizeOf(old.slice(0, 120))], 'no more than the budget')
  t.same(await expire(1000), [130, sizeOf(old.slice(120))])
  t.match(await s1.meta(), { evicted: '250', bytes: String(sizeOf(recent)) })
  t.same(await expire(5000), [2, sizeOf(recent)])
  t.same(await expire(5000), [0, 0], 'an empty history')
  t.match(await s1.meta(), { last: '252', evicted: '252', bytes: '0' })
  t.equal(await redis.hget(s1.keys.sessionCounters, 'bytes'), '0')
  t.equal(await redis.mcpSseExpire(stream('A', 'nope').keys.meta, stream('A', 'nope').keys.history, s1.keys.sessionCounters, 5000, 10), null, 'nil for a stream that is gone')
})

t.test('drop: a stream, then its session, leave no key behind', async (t) => {
  const { redis, keyPrefix, registry, stream } = setup(t)
  const s1 = stream('A', 's1')
  const s2 = stream('A', 's2')
  const size = rawBytes(raw(1, 1)[0]!)
  await s1.append(raw(1, 2))
  await s2.append(raw(1, 3))
  const drop = async (target: ReturnType<typeof stream>, streamId: string): Promise<unknown> =>
    await redis.mcpSseDropStream(target.keys.meta, target.keys.history, target.keys.sessionCounters, target.keys.sessionStreams, streamId)
  t.same(await drop(s1, 's1'), [2, 2 * size])
  t.same(await drop(s1, 's1'), null, 'nil once gone')
  t.equal(await redis.hget(s1.keys.sessionCounters, 'bytes'), String(3 * size))
  t.same(await stream('A', 's3').append([]), ['ok', 0, 0, 0, 0])
  t.equal(await redis.exists(stream('A', 's3').keys.meta), 0, 'an empty batch creates no stream')
  await registry.register('A', 's3', '{}', EPOCH)
  await registry.claim('A', 's3', 'replica-1', 60_000, Date.now())
  const dropped = replyArray(await redis.mcpSseDropSession(s1.keys.sessionCounters, s1.keys.sessionStreams, `${keyPrefix}{A}:m:`, `${keyPrefix}{A}:h:`))
  t.same(dropped.slice(0, 2), [3, 3 * size])
  t.same(dropped.slice(2).sort(), ['s2', 's3'])
  await dropLeases(redis, keyPrefix, 'A', ['s2', 's3'])
  await redis.unlink(activeIndexKey(keyPrefix, 'A'), streamIndexKey(keyPrefix, 's3'))
  t.same(await redis.keys(`${keyPrefix}*`), [])

  await s1.append(raw(1, 1))
  t.same(await drop(s1, 's1'), [1, size])
  t.same(await redis.keys(`${keyPrefix}*`), [], 'the counters go with the last stream')
})

t.test('register: creates the record once; a second registration keeps the position', async (t) => {
  const { redis, keyPrefix, registry, stream } = setup(t)
  const s1 = stream('A', 's1')
  await redis.xadd(s1.keys.history, '9-9', 't', 'orphan')
  await registry.register('A', 's1', 'first', EPOCH)
  t.same(await s1.seqs(), [], 'a history left without its record is dropped')
  await s1.append(raw(1, 2))
  await registry.register('A', 's1', 'second', 'epoch-02')
  t.same(await registry.position('A', 's1'), { lastSeq: 2, evictedThrough: 0, cursor: 'u2', finished: false, descriptor: 'second', fence: 0, epoch: EPOCH })
  t.equal(await registry.sessionOf('s1'), 'A')
  t.equal(await redis.get(streamIndexKey(keyPrefix, 's1')), 'A')
  t.equal(await registry.sessionOf('nope'), undefined)
  t.equal(await registry.position('A', 'nope'), undefined)
  await redis.hset(s1.keys.meta, 'last', 'junk')
  t.match(await registry.position('A', 's1'), { lastSeq: 0 }, 'a field that is no number reads as 0')
  await redis.hset(historyKeys(keyPrefix, 'A', 's2').meta, 'last', '3')
  t.same(await registry.position('A', 's2'), { lastSeq: 3, evictedThrough: 0, cursor: undefined, finished: false, descriptor: undefined, fence: 0, epoch: '' }, 'missing fields have their defaults')
})

t.test('claim: nothing while a lease is held, for a finished stream, or for an unknown one', async (t) => {
  const { redis, keyPrefix, registry } = setup(t)
  await registry.register('A', 's1', '{}', EPOCH)
  const now = Date.now()
  t.equal(await registry.claim('A', 's1', 'replica-1', 5000, now), 1)
  t.equal(await redis.get(leaseKey(keyPrefix, 'A', 's1')), 'replica-1:1')
  t.ok(await redis.pttl(leaseKey(keyPrefix, 'A', 's1')) > 4000)
  t.equal(await redis.zscore(activeIndexKey(keyPrefix, 'A'), activeMember('A', 's1')), String(now + 5000))
  t.equal(await registry.claim('A', 's1', 'replica-2', 5000, now), undefined, 'the lease is held')
  t.equal(await registry.claim('A', 's1', 'replica-1', 5000, now), undefined, 'even by the same owner')
  t.equal(await registry.claim('A', 'nope', 'replica-1', 5000, now), undefined)
  t.ok(await registry.finish('A', 's1', 1))
  await redis.del(leaseKey(keyPrefix, 'A', 's1'))
  t.equal(await registry.claim('A', 's1', 'replica-2', 5000, now), undefined, 'a finished stream is never claimed')
  t.match(await registry.position('A', 's1'), { fence: 1, finished: true })
})

t.test('renew: extends the lease of its holder only', async (t) => {
  const { redis, keyPrefix, registry } = setup(t)
  const lease = leaseKey(keyPrefix, 'A', 's1')
  await registry.register('A', 's1', '{}', EPOCH)
  const now = Date.now()
  const token = await registry.claim('A', 's1', 'replica-1', 200, now) ?? 0
  t.equal(await registry.renew('A', 's1', 'replica-1', token + 1, 60_000, now), false, 'a wrong token')
  t.equal(await registry.renew('A', 's1', 'replica-2', token, 60_000, now), false, 'a wrong owner')
  t.ok(await redis.pttl(lease) <= 200)
  t.equal(await redis.zscore(activeIndexKey(keyPrefix, 'A'), activeMember('A', 's1')), String(now + 200))
  t.equal(await registry.renew('A', 's1', 'replica-1', token, 60_000, now + 10), true)
  t.ok(await redis.pttl(lease) > 50_000)
  t.equal(await redis.zscore(activeIndexKey(keyPrefix, 'A'), activeMember('A', 's1')), String(now + 10 + 60_000))
  await redis.del(lease)
  t.equal(await registry.renew('A', 's1', 'replica-1', token, 60_000, now), false, 'a lease that is gone is not renewed')
})

t.test('renewMany: one call renews many leases, each for its holder only, and says which were lost', async (t) => {
  const { redis, keyPrefix, registry } = setup(t)
  const now = Date.now()
  const streams = Array.from({ length: 250 }, (_, index) => ({ sessionId: `S${index % 7}`, streamId: `s${index}` }))
  const leases = []
  for (const { sessionId, streamId } of streams) {
    await registry.register(sessionId, streamId, '{}', EPOCH)
    leases.push({ sessionId, streamId, token: await registry.claim(sessionId, streamId, 'replica-1', 30_000, now) ?? 0 })
  }
  // s1 taken over by another replica, s2's lease gone, s3 with a superseded token.
  await redis.set(leaseKey(keyPrefix, 'S1', 's1'), 'replica-2:9')
  await redis.del(leaseKey(keyPrefix, 'S2', 's2'))
  const wanted = leases.map((lease) => lease.streamId === 's3' ? { ...lease, token: lease.token + 1 } : lease)
  await redis.pexpire(streamIndexKey(keyPrefix, 's0'), 100)

  const renewed = await registry.renewMany('replica-1', wanted, 60_000, now + 10)
  t.same(renewed, streams.map(({ streamId }) => !['s1', 's2', 's3'].includes(streamId)), 'true for each lease still held, in order, past one script\'s batch')
  t.ok(await redis.pttl(leaseKey(keyPrefix, 'S0', 's0')) > 50_000, 'the lease is extended')
  t.ok(await redis.pttl(leaseKey(keyPrefix, 'S4', 's249')) > 50_000, 'the last one too')
  t.ok(await redis.pttl(streamIndexKey(keyPrefix, 's0')) > 59_000, 'its stream index is kept for retainMs')
  t.equal(await redis.zscore(activeIndexKey(keyPrefix, 'S0'), activeMember('S0', 's0')), String(now + 10 + 60_000), 'due in the active index when the new lease ends')
  t.equal(await redis.get(leaseKey(keyPrefix, 'S1', 's1')), 'replica-2:9', 'another replica\'s lease is left alone')
  t.equal(await redis.zscore(activeIndexKey(keyPrefix, 'S1'), activeMember('S1', 's1')), String(now + 30_000), 'and so is its place in the index')
  t.same(await registry.renewMany('replica-1', [], 60_000, now), [], 'nothing to renew: no call')
})

t.test('release: only by the holder; an unfinished stream is due for takeover at once', async (t) => {
  const { redis, keyPrefix, registry } = setup(t)
  const lease = leaseKey(keyPrefix, 'A', 's1')
  await registry.register('A', 's1', '{}', EPOCH)
  const now = Date.now()
  const token = await registry.claim('A', 's1', 'replica-1', 60_000, now) ?? 0
  t.equal(await registry.release('A', 's1', 'replica-2', token), false)
  t.equal(await registry.release('A', 's1', 'replica-1', token + 1), false)
  t.equal(await redis.get(lease), `replica-1:${token}`)
  t.same(await registry.expiredLeases(now, 10), [])
  t.equal(await registry.release('A', 's1', 'replica-1', token), true)
  t.equal(await redis.exists(lease), 0)
  t.same(await registry.expiredLeases(now, 10), [{ sessionId: 'A', streamId: 's1' }], 'listed for another replica to claim')
  t.equal(await registry.claim('A', 's1', 'replica-2', 60_000, now), token + 1)

  await registry.register('A', 's2', '{}', EPOCH)
  const second = await registry.claim('A', 's2', 'replica-1', 60_000, now) ?? 0
  await redis.hset(historyKeys(keyPrefix, 'A', 's2').meta, 'finished', '1')
  t.equal(await registry.release('A', 's2', 'replica-1', second), true)
  t.equal(await redis.zscore(activeIndexKey(keyPrefix, 'A'), activeMember('A', 's2')), null, 'a finished stream leaves the active index')
  t.equal(await registry.release('A', 's3', 'replica-1', 1), false)
  t.equal(await redis.zscore(activeIndexKey(keyPrefix, 'A'), activeMember('A', 's3')), null, 'a release adds nothing to the index')
})

t.test('finish: only for the current owner; it publishes `end <last>` and leaves the active index', async (t) => {
  const { redis, keyPrefix, registry, stream } = setup(t)
  const subscriber = redisClient()
  t.teardown(async () => { await subscriber.quit() })
  const messages: string[] = []
  subscriber.on('messageBuffer', (_channel: Buffer, message: Buffer) => {
    const events = parseEvents(message)
    messages.push(...(events.length === 0 ? [message.toString()] : events.map(({ seq, text }) => `${seq} ${text}`)))
  })
  await subscriber.subscribe(liveChannel(keyPrefix, 'A', 's1'))
  await registry.register('A', 's1', '{}', EPOCH)
  const first = await registry.claim('A', 's1', 'replica-1', 60_000, Date.now()) ?? 0
  await stream('A', 's1').append(raw(1, 3), { token: first })
  await redis.del(leaseKey(keyPrefix, 'A', 's1'))
  const second = await registry.claim('A', 's1', 'replica-2', 60_000, Date.now()) ?? 0
  t.equal(await registry.finish('A', 's1', first), false, 'a stale owner cannot finish it')
  t.match(await registry.position('A', 's1'), { finished: false })
  t.equal(await registry.finish('A', 's1', second), true)
  t.match(await registry.position('A', 's1'), { finished: true })
  t.equal(await redis.zscore(activeIndexKey(keyPrefix, 'A'), activeMember('A', 's1')), null)
  t.equal(await registry.finish('A', 'nope', 5), false, 'nor is an unknown stream created by it')
  t.equal(await redis.exists(historyKeys(keyPrefix, 'A', 'nope').meta), 0)
  while (messages.length < 4) await sleep(5)
  t.same(messages, ['1 xxxxxxxxxx', '2 xxxxxxxxxx', '3 xxxxxxxxxx', 'end 3'])
})

t.test('expiredLeases: the unfinished streams whose lease ran out, oldest first', async (t) => {
  const { redis, keyPrefix, registry } = setup(t)
  for (const streamId of ['s1', 's2', 's3']) await registry.register('A', streamId, '{}', EPOCH)
  const now = Date.now()
  const finishedToken = await registry.claim('A', 's1', 'replica-1', 50, now) ?? 0
  await registry.claim('A', 's2', 'replica-1', 50, now + 1)
  await registry.claim('A', 's3', 'replica-1', 60_000, now)
  await registry.finish('A', 's1', finishedToken)
  await redis.zadd(activeIndexKey(keyPrefix, 'A'), 0, 'malformed')
  await sleep(100)
  t.same(await registry.expiredLeases(Date.now(), 10), [{ sessionId: 'A', streamId: 's2' }], 'not the finished one, nor one still leased, nor what this code did not write')
  await redis.zrem(activeIndexKey(keyPrefix, 'A'), 'malformed')
  t.equal(await registry.claim('A', 's2', 'replica-2', 50, Date.now()), 2, 'its lease is gone: another replica claims it')
  t.same(await registry.expiredLeases(Date.now() + 60_000, 1), [{ sessionId: 'A', streamId: 's2' }], 'no more than the limit')
  await registry.forgetActive('A', 's2')
  t.same(await registry.expiredLeases(Date.now() + 60_000, 10), [{ sessionId: 'A', streamId: 's3' }])
})

t.test('ensureEpoch: stable across calls and replicas; a new one once Redis lost it', async (t) => {
  const { redis, keyPrefix, registry } = setup(t)
  const epoch = await registry.ensureEpoch()
  t.match(epoch, /^[\w-]{8}$/)
  t.equal(await registry.ensureEpoch(), epoch)
  t.equal(await new RedisStreamRegistry(redis, { keyPrefix, retainMs: 60_000 }).ensureEpoch(), epoch)
  await redis.del(epochKey(keyPrefix))
  const [renewed, raced] = await Promise.all([registry.ensureEpoch(), new RedisStreamRegistry(redis, { keyPrefix, retainMs: 60_000 }).ensureEpoch()])
  t.not(renewed, epoch)
  t.equal(raced, renewed, 'two replicas that race agree on one')
})

t.test('every registry call is timed and reported', async (t) => {
  const { keyPrefix } = testRedis(t)
  const client = redisClient()
  const reports: string[] = []
  const registry = new RedisStreamRegistry(client, { keyPrefix, retainMs: 60_000, onOperation: (op, result) => reports.push(`${op} ${result}`) })
  await registry.ensureEpoch()
  await client.quit()
  await t.rejects(registry.sessionOf('s1'))
  t.same(reports, ['epoch ok', 'session-of error'])
})

t.test('reply helpers narrow what Redis answered', async (t) => {
  t.same(replyArray('no'), [])
  t.equal(replyNumber('12'), 12)
  t.equal(replyNumber(null), 0)
  t.equal(replyNumber('junk'), 0)
  t.equal(entryField(['t', 'text', 'u', 1], 'u'), undefined)
  t.equal(entryField('junk', 't'), undefined)
  t.same(recordedEvent(['3-9', ['a', '1']]), { seq: 3, upstreamId: undefined, text: '' })
  t.same(parseActiveMember('A s1'), { sessionId: 'A', streamId: 's1' })
  t.equal(parseActiveMember(' s1'), undefined)
  t.equal(parseActiveMember('A '), undefined)
})

t.test('retention: a stream\'s keys expire unless its lease is renewed; a finished one lasts retainMs; a gone one leaves the active index', async (t) => {
  const { redis, keyPrefix, registry, stream } = setup(t)
  const s1 = stream('A', 's1')
  await registry.register('A', 's1', '{}', EPOCH)
  const token = await registry.claim('A', 's1', 'replica-1', 5000, Date.now()) ?? 0
  await s1.append(raw(1, 2), { token })
  await redis.pexpire(s1.keys.meta, 100)
  await redis.pexpire(s1.keys.history, 100)
  t.ok(await registry.renew('A', 's1', 'replica-1', token, 5000, Date.now()))
  for (const key of [s1.keys.meta, s1.keys.history, s1.keys.sessionCounters, s1.keys.sessionStreams, streamIndexKey(keyPrefix, 's1')]) {
    t.ok(await redis.pttl(key) > 59_000, `${key} is kept for retainMs by the renewal`)
  }
  t.ok(await registry.finish('A', 's1', token))
  t.ok(await redis.pttl(s1.keys.history) > 59_000, 'a finished stream stays for retainMs')

  await registry.register('B', 's2', '{}', EPOCH)
  t.ok(await redis.pttl(historyKeys(keyPrefix, 'B', 's2').meta) > 59_000, 'a registered stream expires unless renewed')
  await redis.zadd(activeIndexKey(keyPrefix, 'B'), 0, activeMember('B', 's2'))
  await redis.del(historyKeys(keyPrefix, 'B', 's2').meta)
  t.equal(await registry.claim('B', 's2', 'replica-2', 5000, Date.now()), undefined, 'nothing to claim')
  t.equal(await redis.zscore(activeIndexKey(keyPrefix, 'B'), activeMember('B', 's2')), null, 'and it leaves the active index')
})

t.test('live messages: one per append, texts measured in bytes, so that any text comes back whole', async (t) => {
  const { keyPrefix, stream } = setup(t)
  const s1 = stream('A', 's1')
  const subscriber = redisClient()
  t.teardown(async () => { await subscriber.quit() })
  const messages: Buffer[] = []
  subscriber.on('messageBuffer', (_channel: Buffer, message: Buffer) => messages.push(message))
  await subscriber.subscribe(liveChannel(keyPrefix, 'A', 's1'))
  const texts = ['data: héllo → 世界\n\n', 'data: a\ndata: b\n\n', 'data: \n\n']
  await s1.append(texts.map((text, index) => [index + 1, `u${index + 1}`, text]))
  while (messages.length < 1) await sleep(5)
  t.equal(messages.length, 1, 'one message for the batch')
  t.same(parseEvents(messages[0] ?? Buffer.alloc(0)), texts.map((text, index) => ({ seq: index + 1, text })))
  for (const garbage of ['', 'end', '12', '12 x\nabc', 'x 3\nabc', '1 3,y\nabc', '1 5\nabc', '1 1\nabc']) {
    t.same(parseEvents(Buffer.from(garbage)), [], `${JSON.stringify(garbage)} is not taken for events`)
  }
})
