import t, { type Test } from 'tap'
import { once } from 'node:events'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { parseEvents } from '../../lib/store/redis/live-channels.js'
import type { HistoryLimits, RecordedEvent } from '../../lib/history/history-store.js'
import { LocalHistoryStore } from '../../lib/history/local-history-store.js'
import { RedisHistoryStore, type RedisHistoryStoreOptions } from '../../lib/store/redis/history-store.js'
import { StaleOwnerError, StoreResetError } from '../../lib/errors.js'
import { historyKeys, leaseKey, liveChannel, streamIndexKey } from '../../lib/store/redis/keys.js'
import { RedisStreamRegistry } from '../../lib/store/redis/stream-registry.js'
import { historyStoreContract } from '../history/history-store-contract.js'
import { freePort } from '../helpers/free-port.js'
import { REDIS_SERVER_BINARY, startRedisServer } from '../helpers/redis-process.js'
import { keysUnder, redisClient, testRedis } from '../helpers/test-redis.js'

const EPOCH = 'epoch-01'
const LIMITS: HistoryLimits = { maxEvents: 1000, maxBytes: 1 << 20, ttlMs: 300_000, replay: true }

// Each store of the contract gets its own prefix; the keys go when the file ends.
historyStoreContract(t, async (limits) => {
  const { redis, keyPrefix } = testRedis(t)
  return new RedisHistoryStore(redis, { keyPrefix, limits, epoch: () => EPOCH })
})

function events (from: number, to: number, text = (seq: number) => `id: s.${seq}\ndata: ${'x'.repeat(20)}\n\n`): RecordedEvent[] {
  return Array.from({ length: to - from + 1 }, (_, index) => {
    const seq = from + index
    return { seq, upstreamId: `u${seq}`, text: text(seq) }
  })
}

function seqs (read: Awaited<ReturnType<RedisHistoryStore['readAfter']>>): number[] | string {
  return read.status === 'found' ? read.events.map((event) => event.seq) : read.status
}

function redisStore (t: Test, options: Partial<RedisHistoryStoreOptions> = {}) {
  const { redis, keyPrefix } = testRedis(t)
  const store = new RedisHistoryStore(redis, { keyPrefix, limits: LIMITS, epoch: () => EPOCH, ...options })
  t.teardown(async () => await store.close())
  return { redis, keyPrefix, store }
}

t.test('stats() follow exactly what the memory store counts, through appends, evictions and drops', async (t) => {
  const limits: HistoryLimits = { maxEvents: 4, maxBytes: 600, ttlMs: 300_000, replay: true }
  const { store } = redisStore(t, { limits })
  const local = new LocalHistoryStore(limits)
  const steps: Array<[string, (history: RedisHistoryStore | LocalHistoryStore) => Promise<void> | undefined]> = [
    ['append', (history) => history.append('A', 's1', events(1, 3))],
    ['maxEvents', (history) => history.append('A', 's1', events(4, 6))],
    ['maxBytes over two streams', (history) => history.append('A', 's2', events(1, 5))],
    ['another session', (history) => history.append('B', 's3', events(1, 2))],
    ['dropStream', async (history) => await history.dropStream('A', 's1')],
    ['dropSession', async (history) => await history.dropSession('A')]
  ]
  for (const [name, step] of steps) {
    await step(store)
    await step(local)
    t.same(store.stats(), local.stats(), name)
  }
  t.same(seqs(await store.readAfter('B', 's3', 0)), [1, 2])
})

t.test('a stream owned with a fencing token records its events', async (t) => {
  const { redis, keyPrefix, store } = redisStore(t)
  const registry = new RedisStreamRegistry(redis, { keyPrefix, retainMs: 60_000 })
  await registry.register('A', 's1', '{}', EPOCH)
  const token = await registry.claim('A', 's1', 'replica-1', 5000, Date.now())
  t.equal(token, 1)
  store.holdFence('s1', token ?? 0)
  await store.append('A', 's1', events(1, 2))
  t.same(seqs(await store.readAfter('A', 's1', 0)), [1, 2])
  t.match(await registry.position('A', 's1'), { lastSeq: 2, cursor: 'u2', fence: 1 })
})

t.test('once another replica claims the stream, the old owner\'s appends are refused and nothing of them is written', async (t) => {
  const { redis, keyPrefix, store: first } = redisStore(t)
  const second = new RedisHistoryStore(redis, { keyPrefix, limits: LIMITS, epoch: () => EPOCH })
  const registry = new RedisStreamRegistry(redis, { keyPrefix, retainMs: 60_000 })
  await registry.register('A', 's1', '{}', EPOCH)
  first.holdFence('s1', await registry.claim('A', 's1', 'replica-1', 5000, Date.now()) ?? 0)
  await first.append('A', 's1', events(1, 2))
  await redis.del(leaseKey(keyPrefix, 'A', 's1'))
  second.holdFence('s1', await registry.claim('A', 's1', 'replica-2', 5000, Date.now()) ?? 0)
  const statsBefore = first.stats()

  const refused = await first.append('A', 's1', events(3, 4)).catch((error: unknown) => error)
  t.ok(refused instanceof StaleOwnerError)
  t.match(refused, { code: 'FST_MCP_SSE_STALE_OWNER', message: /(fenced)/ })
  t.same(seqs(await first.readAfter('A', 's1', 0)), [1, 2], 'nothing of the refused batch was written')
  t.same(first.stats(), statsBefore)
  t.match(await registry.position('A', 's1'), { lastSeq: 2, cursor: 'u2' })

  await second.append('A', 's1', events(3, 4))
  t.same(seqs(await second.readAfter('A', 's1', 2)), [3, 4], 'the new owner goes on from where the old one stopped')
  first.releaseFence('s1')
  await t.rejects(first.append('A', 's1', events(5, 5)), { code: 'FST_MCP_SSE_STALE_OWNER' }, 'an unowned append to an owned stream is refused too')
})

t.test('an append retried with the same batch is harmless; a different one is refused', async (t) => {
  const { store } = redisStore(t)
  await store.append('A', 's1', events(1, 3))
  const stats = store.stats()
  await store.append('A', 's1', events(1, 3))
  await store.append('A', 's1', events(2, 3))
  t.same(seqs(await store.readAfter('A', 's1', 0)), [1, 2, 3], 'no duplicates')
  t.same(store.stats(), stats)

  await store.append('A', 's1', events(3, 5))
  t.same(seqs(await store.readAfter('A', 's1', 0)), [1, 2, 3, 4, 5], 'an overlapping batch adds only what is new')

  const conflicting = [{ seq: 4, upstreamId: 'other', text: 'x' }, { seq: 6, upstreamId: 'u6', text: 'x' }]
  await t.rejects(store.append('A', 's1', conflicting), { code: 'FST_MCP_SSE_STALE_OWNER', message: /(conflict)/ })
  await t.rejects(store.append('A', 's1', events(7, 8)), { code: 'FST_MCP_SSE_STALE_OWNER', message: /(gap)/ })
  t.same(seqs(await store.readAfter('A', 's1', 0)), [1, 2, 3, 4, 5], 'a refused batch writes nothing, not even its valid events')
  await store.append('A', 's1', [])
  t.same(seqs(await store.readAfter('A', 's1', 0)), [1, 2, 3, 4, 5])
})

t.test('replay: false keeps no text, yet publishes each event whole to live subscribers, in order', async (t) => {
  const { keyPrefix, store } = redisStore(t, { limits: { ...LIMITS, replay: false } })
  const subscriber = redisClient()
  t.teardown(async () => { await subscriber.quit() })
  const channel = liveChannel(keyPrefix, 'A', 's1')
  await subscriber.subscribe(channel)
  const messages: string[] = []
  subscriber.on('messageBuffer', (from: Buffer, message: Buffer) => {
    if (from.toString() === channel) messages.push(...parseEvents(message).map(({ seq, text }) => `${seq} ${text}`))
  })
  const batch = events(1, 3, (seq) => `id: s.${seq}\ndata: {"n": ${seq}}\n\n`)

  await store.append('A', 's1', batch.slice(0, 2))
  await store.append('A', 's1', batch.slice(1))
  const read = await store.readAfter('A', 's1', 0)
  t.same(read.status === 'found' ? read.events.map((event) => [event.text, event.upstreamId]) : read, [['', 'u1'], ['', 'u2'], ['', 'u3']])
  while (messages.length < 3) await once(subscriber, 'message')
  t.same(messages, batch.map((event) => `${event.seq} ${event.text}`), 'a retried event is not published twice')
})

t.test('an append to a stream whose record Redis lost is refused as a store reset', async (t) => {
  const { redis, keyPrefix, store } = redisStore(t)
  await store.append('A', 's1', events(1, 1))
  const later = new RedisHistoryStore(redis, { keyPrefix, limits: LIMITS, epoch: () => 'epoch-02' })
  const refused = await later.append('A', 's1', events(2, 2)).catch((error: unknown) => error)
  t.ok(refused instanceof StoreResetError)
  t.match(refused, { code: 'FST_MCP_SSE_STORE_RESET' })
  t.same(seqs(await store.readAfter('A', 's1', 0)), [1])
})

t.test('positions that are not whole numbers are unknown, without asking Redis', async (t) => {
  const operations: string[] = []
  const { store } = redisStore(t, { onOperation: (op) => operations.push(op) })
  await store.append('A', 's1', events(1, 2))
  t.same(seqs(await store.readAfter('A', 's1', 0.5)), 'unknown')
  t.same(seqs(await store.readAfter('A', 's1', Number.NaN)), 'unknown')
  t.equal(await store.upstreamIdAt('A', 's1', 0), undefined)
  t.equal(await store.upstreamIdAt('A', 's1', 1.5), undefined)
  t.equal(await store.upstreamIdAt('A', 's1', 3), undefined)
  t.equal(await store.upstreamIdAt('A', 's1', 1), 'u1')
  t.same(operations, ['append', 'upstream-id', 'upstream-id'])
})

t.test('every Redis call is timed and reported, failures included', async (t) => {
  const reports: Array<[string, string]> = []
  const { keyPrefix } = testRedis(t)
  const broken = redisClient()
  const store = new RedisHistoryStore(broken, { keyPrefix, limits: LIMITS, epoch: () => EPOCH, onOperation: (op, result, seconds) => { reports.push([op, result]); t.ok(seconds >= 0) } })
  await store.append('A', 's1', events(1, 1))
  await store.readAfter('A', 's1', 0)
  broken.disconnect()
  await t.rejects(store.readAfter('A', 's1', 0))
  t.same(reports, [['append', 'ok'], ['read', 'ok'], ['read', 'error']])
  t.same(store.stats(), { events: 1, bytes: events(1, 1)[0]!.text.length + 2 + 48 })
})

t.test('durable: an append waits for a Redis replica, and one that no replica acknowledged is reported', async (t) => {
  const reports: Array<[string, string]> = []
  const { store } = redisStore(t, { durable: true, durableTimeoutMs: 20, onOperation: (op, result) => reports.push([op, result]) })
  await store.append('A', 's1', events(1, 1))
  t.same(reports, [['append', 'ok'], ['wait', 'error'], ['append', 'ok']], 'the test Redis has no replica: the append is sent again, in case a failover lost it')
  t.same(seqs(await store.readAfter('A', 's1', 0)), [1], 'the events are recorded all the same, once')
  t.same(store.stats(), { events: 1, bytes: events(1, 1)[0]!.text.length + 2 + 48 })
  const byDefault = new RedisHistoryStore(redisStore(t).redis, { keyPrefix: 'unused:', limits: LIMITS, epoch: () => EPOCH, durable: true })
  t.same(byDefault.stats(), { events: 0, bytes: 0 })
})

t.test('an event without an upstream id is recorded without one', async (t) => {
  const { store } = redisStore(t)
  await store.append('A', 's1', [{ seq: 1, upstreamId: undefined, text: 'data: x\n\n' }])
  t.same(await store.readAfter('A', 's1', 0), { status: 'found', events: [{ seq: 1, upstreamId: undefined, text: 'data: x\n\n' }] })
  t.equal(await store.upstreamIdAt('A', 's1', 1), undefined)
  t.same(store.stats(), { events: 1, bytes: 'data: x\n\n'.length + 48 })
})

t.test('expire() visits the streams this store wrote or read, and forgets dropped ones', async (t) => {
  const { redis, keyPrefix, store } = redisStore(t, { limits: { ...LIMITS, ttlMs: 1000 } })
  const other = new RedisHistoryStore(redis, { keyPrefix, limits: { ...LIMITS, ttlMs: 1000 }, epoch: () => EPOCH })
  await other.append('A', 's1', events(1, 2))
  await other.append('A', 's2', events(1, 2))
  await store.expire(Date.now() + 5000)
  t.same(seqs(await store.readAfter('A', 's1', 0)), [1, 2], 'a stream this store never saw is not visited')
  t.same(seqs(await store.readAfter('A', 'unknown', 0)), 'unknown')
  await store.expire(Date.now() + 5000)
  t.same(seqs(await store.readAfter('A', 's1', 0)), 'evicted', 'one it read is')
  t.same(seqs(await store.readAfter('A', 's2', 0)), [1, 2])
  t.same(store.stats(), { events: -2, bytes: -2 * (events(1, 1)[0]!.text.length + 2 + 48) }, 'each store counts what it did itself')

  await other.dropStream('A', 's1')
  const operations: string[] = []
  const observed = new RedisHistoryStore(redis, { keyPrefix, limits: { ...LIMITS, ttlMs: 1000 }, epoch: () => EPOCH, onOperation: (op) => operations.push(op) })
  await observed.readAfter('A', 's2', 0)
  await other.dropStream('A', 's2')
  await observed.expire(Date.now())
  await observed.expire(Date.now())
  t.same(operations, ['read', 'expire'], 'a stream found gone is not visited again')
})

t.test('expire() keeps track of a bounded number of streams, the most recent', async (t) => {
  const { store } = redisStore(t, { limits: { ...LIMITS, ttlMs: 0 }, maxTrackedStreams: 2 })
  for (const streamId of ['s1', 's2', 's3']) await store.append('A', streamId, events(1, 1))
  await store.append('A', 's3', events(2, 2))
  await store.expire(Date.now())
  t.same(seqs(await store.readAfter('A', 's1', 0)), [1], 'the oldest was forgotten')
  t.same(seqs(await store.readAfter('A', 's2', 0)), 'evicted')
  t.same(seqs(await store.readAfter('A', 's3', 0)), 'evicted')
})

t.test('dropStream and dropSession clear the stream index only for the session that owns the stream', async (t) => {
  const { redis, keyPrefix, store } = redisStore(t)
  const registry = new RedisStreamRegistry(redis, { keyPrefix, retainMs: 60_000 })
  await registry.register('A', 's1', '{}', EPOCH)
  await registry.register('A', 's2', '{}', EPOCH)
  store.holdFence('s1', await registry.claim('A', 's1', 'replica-1', 5000, Date.now()) ?? 0)
  await store.append('A', 's1', events(1, 2))
  await store.dropStream('B', 's1')
  t.equal(await registry.sessionOf('s1'), 'A', 'another session cannot drop it')
  await store.dropStream('A', 's1')
  t.equal(await registry.sessionOf('s1'), undefined)
  t.same(await registry.expiredLeases(Number.MAX_SAFE_INTEGER, 10), [], 'nor is it in the active index any more')
  t.ok(await registry.claim('A', 's2', 'replica-1', 5000, Date.now()), 's2 leased too: dropSession drops its lease')
  await store.dropSession('A')
  t.equal(await registry.sessionOf('s2'), undefined)
  t.same(await keysUnder(redis, keyPrefix), [], 'nothing is left in Redis, leases included')
})

t.test('close() forgets local state and leaves the shared client open', async (t) => {
  const { redis, store } = redisStore(t)
  store.holdFence('s1', 7)
  await store.append('A', 's1', events(1, 1)).catch(() => {})
  await store.append('A', 's2', events(1, 1))
  await store.close()
  t.same(store.stats(), { events: 0, bytes: 0 })
  t.equal(redis.status, 'ready')
  t.equal(await redis.ping(), 'PONG')
  await store.append('A', 's1', events(1, 1))
  t.same(seqs(await store.readAfter('A', 's1', 0)), [1], 'without its fence, the store writes unowned')
})

t.test('the stream index key lives in the stream\'s slot, not the session\'s', async (t) => {
  t.equal(streamIndexKey('p:', 's1'), 'p:{s1}:sid')
  t.same(historyKeys('p:', 'A', 's1'), { meta: 'p:{A}:m:s1', history: 'p:{A}:h:s1', sessionCounters: 'p:{A}:s', sessionStreams: 'p:{A}:streams' })
  t.equal(leaseKey('p:', 'A', 's1'), 'p:{A}:lease:s1', 'the lease in its session\'s slot too')
})

t.test('durable: with a Redis replica attached, an append returns once the replica has it', async (t) => {
  const primary = await startRedisServer(t)
  const redis = new Redis(primary.url)
  // Redis 7 waits repl-diskless-sync-delay (5 s) for more replicas before the first sync.
  await redis.config('SET', 'repl-diskless-sync-delay', '0')
  const replicaDir = mkdtempSync(join(tmpdir(), 'redis-replica-'))
  const replicaPort = await freePort()
  const replica = spawn(REDIS_SERVER_BINARY, ['--port', String(replicaPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', replicaDir, '--replicaof', '127.0.0.1', String(primary.port)], { stdio: 'ignore' })
  t.teardown(() => {
    replica.kill('SIGKILL')
    rmSync(replicaDir, { recursive: true, force: true })
  })
  const onReplica = new Redis(`redis://127.0.0.1:${replicaPort}`, { maxRetriesPerRequest: null })
  onReplica.on('error', () => {}) // refused until the replica listens
  t.teardown(async () => { await Promise.all([redis.quit(), onReplica.quit()]) })
  const deadline = Date.now() + 15_000
  while (!/connected_slaves:1/.test(await redis.info('replication')) || !/master_link_status:up/.test(await onReplica.info('replication').catch(() => ''))) {
    if (Date.now() > deadline) throw new Error('the replica did not attach')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const reports: Array<[string, string]> = []
  const store = new RedisHistoryStore(redis, { keyPrefix: 'durable:', limits: LIMITS, epoch: () => EPOCH, durable: true, durableTimeoutMs: 5000, onOperation: (op, result) => reports.push([op, result]) })
  await store.append('A', 's1', events(1, 3))
  t.same(reports, [['append', 'ok'], ['wait', 'ok']], 'the replica acknowledged')
  t.equal(await onReplica.xlen(historyKeys('durable:', 'A', 's1').history), 3, 'and holds the events when the append returns')
})
