/**
 * What the Redis store costs in Redis memory: bytes per recorded event,
 * and the fixed bytes of a stream. It drives the store's own code
 * (RedisStreamRegistry, RedisHistoryStore) against a real Redis, as one replica
 * does: each stream in its own session (as on an sse route), registered, leased,
 * appended to in batches, then its lease renewed once (which sets its keys' TTLs).
 *
 *   node --import ./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/redis-memory.ts [options]
 *   (or, after `npm run bench` or `tsc -p tsconfig.bench.json`: node dist/bench/bench/redis-memory.js [options])
 *
 * Two measures, each over a fresh set of streams, from an empty prefix:
 * - MEMORY USAGE <key> SAMPLES 0, summed over every key under the run's prefix;
 * - the INFO memory `used_memory` delta around the writes (allocator-level: it also
 *   catches what MEMORY USAGE leaves out, and the noise of anyone else using this Redis).
 * Per event: (streams with N events - streams with 1 event) / (streams x (N - 1)).
 * Fixed per stream: what a stream with 1 event holds, less one event.
 *
 * Keys go under `bench:<uuid>:`, and are deleted after each phase and at the end.
 */
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import { RedisHistoryStore } from '../lib/store/redis/history-store.js'
import type { RecordedEvent } from '../lib/history/history-store.js'
import { RedisStreamRegistry } from '../lib/store/redis/stream-registry.js'
import { benchRedisClient, benchRedisUrl, deleteKeysWithPrefix, freshKeyPrefix, keysWithPrefix } from './redis-store.js'
import { median } from './statistics.js'

interface Options {
  url: string
  streams: number
  events: number
  eventBytes: number
  batch: number
  rounds: number
  jsonPath: string | undefined
}

const USAGE = `node --import ./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/redis-memory.ts [options]

  --url URL            Redis (default: $BENCH_REDIS_URL or redis://127.0.0.1:6379)
  --streams N          streams per phase (default 100)
  --events N           events per stream in the big phase (default 1000, the default history.maxEvents)
  --event-bytes N      length of each event's text, id line and blank line included (default 200)
  --batch N            events per append call (default 10)
  --rounds N           times each measurement is taken; the report gives the median (default 3)
  --json FILE          also write the figures as JSON`

// The store's defaults (docs/configuration.md): 1000 events fit the per-session byte limit.
const LIMITS = { maxEvents: 1000, maxBytes: 1_048_576, ttlMs: 300_000 }
const LEASE_TTL_MS = 600_000
const RETAIN_MS = 600_000
const OWNER = 'bench-replica'
// What a stream's reconnect descriptor holds on an sse route: the route, the upstream, the client's end-to-end headers.
const DESCRIPTOR = JSON.stringify({
  routePath: '/events',
  endsWithItsStreams: true,
  upstreamUrl: 'http://events.internal:3000/events?topic=builds',
  headers: { accept: 'text/event-stream', authorization: `Bearer ${'t'.repeat(40)}`, 'user-agent': 'node' }
})

type KeyKind = 'meta' | 'history' | 'session counters' | 'session streams' | 'lease' | 'stream index' | 'active index' | 'epoch' | 'other'

interface PhaseFigures {
  eventsPerStream: number
  /** Sum of MEMORY USAGE over every key of the phase. */
  keyBytes: number
  keyBytesByKind: Partial<Record<KeyKind, number>>
  usedMemoryDelta: number
  /** Mean length of an event's text, and of its upstream id. */
  textBytes: number
}

interface ModeFigures {
  replay: boolean
  rounds: Array<{ one: PhaseFigures, many: PhaseFigures }>
  perEventKeyBytes: number | null
  perEventUsedMemory: number | null
  perStreamKeyBytes: number | null
  perStreamUsedMemory: number | null
  oneEventStreamKeyBytes: number | null
  oneEventStreamUsedMemory: number | null
  byKindPerStreamOne: Partial<Record<KeyKind, number>>
  byKindPerStreamMany: Partial<Record<KeyKind, number>>
}

function parseArguments (argv: readonly string[]): Options | 'help' {
  const options: Options = { url: benchRedisUrl(), streams: 100, events: 1000, eventBytes: 200, batch: 10, rounds: 3, jsonPath: undefined }
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index]
    const value = (): string => {
      const next = argv[++index]
      if (next === undefined) throw new Error(`${String(argument)} needs a value`)
      return next
    }
    switch (argument) {
      case '--url': options.url = value(); break
      case '--streams': options.streams = positive(value(), '--streams'); break
      case '--events': options.events = positive(value(), '--events'); break
      case '--event-bytes': options.eventBytes = positive(value(), '--event-bytes'); break
      case '--batch': options.batch = positive(value(), '--batch'); break
      case '--rounds': options.rounds = positive(value(), '--rounds'); break
      case '--json': options.jsonPath = value(); break
      case '--help': case '-h': return 'help'
      default: throw new Error(`unknown argument ${String(argument)}\n\n${USAGE}`)
    }
  }
  if (options.events < 2) throw new Error('--events must be at least 2')
  if (options.events > LIMITS.maxEvents) throw new Error(`--events above ${LIMITS.maxEvents} would be trimmed by history.maxEvents`)
  return options
}

function positive (text: string, flag: string): number {
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${flag}: ${text} is not a positive integer`)
  return value
}

/** 128 random bits, base64url: 22 characters, like the proxy's session and stream ids. */
function randomId (): string {
  return randomBytes(16).toString('base64url')
}

/**
 * An event as the proxy records it: its proxy id line (`<stream>.<epoch>.<seq>`), then
 * an MCP notification padded so that the whole text is about `eventBytes` long.
 */
function eventText (streamId: string, epoch: string, seq: number, eventBytes: number): string {
  const head = `id: ${streamId}.${epoch}.${seq}\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","logger":"build","data":"`
  const tail = '"}}\n\n'
  const room = Math.max(0, eventBytes - head.length - tail.length)
  const words = `step ${seq} compiled ok; `.repeat(Math.ceil(room / 16) + 1).slice(0, room)
  return head + words + tail
}

/** 10 characters, as many upstreams' ids are (a counter, a short hash). */
function upstreamId (): string {
  return randomBytes(8).toString('base64url').slice(0, 10)
}

function kindOf (key: string, prefix: string): KeyKind {
  const rest = key.slice(prefix.length)
  if (rest.startsWith('{active:')) return 'active index'
  if (rest === 'epoch') return 'epoch'
  const tail = rest.slice(rest.indexOf('}') + 2)
  if (tail.startsWith('m:')) return 'meta'
  if (tail.startsWith('h:')) return 'history'
  if (tail.startsWith('lease:')) return 'lease'
  if (tail === 's') return 'session counters'
  if (tail === 'streams') return 'session streams'
  if (tail === 'sid') return 'stream index'
  return 'other'
}

async function usedMemory (redis: Redis): Promise<number> {
  const info = await redis.info('memory')
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? Number.NaN)
}

/** Lets Redis release what the writes left in client buffers before it is read. */
async function settledUsedMemory (redis: Redis): Promise<number> {
  await sleep(300)
  return await usedMemory(redis)
}

async function keyBytes (redis: Redis, prefix: string): Promise<{ total: number, byKind: Partial<Record<KeyKind, number>> }> {
  const keys = await keysWithPrefix(redis, prefix)
  const pipeline = redis.pipeline()
  for (const key of keys) pipeline.memory('USAGE', key, 'SAMPLES', 0)
  const replies = await pipeline.exec() ?? []
  const byKind: Partial<Record<KeyKind, number>> = {}
  let total = 0
  replies.forEach(([error, bytes], index) => {
    if (error !== null || typeof bytes !== 'number') return
    const kind = kindOf(keys[index] as string, prefix)
    byKind[kind] = (byKind[kind] ?? 0) + bytes
    total += bytes
  })
  return { total, byKind }
}

/** One phase: `streams` fresh streams with `eventsPerStream` events each, measured, then deleted. */
async function measurePhase (redis: Redis, options: Options, replay: boolean, eventsPerStream: number): Promise<PhaseFigures> {
  const prefix = freshKeyPrefix()
  // retainMs: how long a stream's keys outlive their last renewal (only in lib versions that set key TTLs); longer than the run.
  const registryOptions = { keyPrefix: prefix, retainMs: RETAIN_MS }
  const registry = new RedisStreamRegistry(redis, registryOptions)
  try {
    const before = await settledUsedMemory(redis)
    const epoch = await registry.ensureEpoch()
    const store = new RedisHistoryStore(redis, { keyPrefix: prefix, limits: { ...LIMITS, replay }, epoch: () => epoch })
    let textBytes = 0
    await Promise.all(Array.from({ length: options.streams }, async () => {
      const sessionId = randomId()
      const streamId = randomId()
      await registry.register(sessionId, streamId, DESCRIPTOR, epoch)
      const token = await registry.claim(sessionId, streamId, OWNER, LEASE_TTL_MS, Date.now())
      if (token === undefined) throw new Error('could not claim a fresh stream')
      store.holdFence(streamId, token)
      for (let first = 1; first <= eventsPerStream; first += options.batch) {
        const batch: RecordedEvent[] = []
        for (let seq = first; seq < first + options.batch && seq <= eventsPerStream; seq++) {
          const text = eventText(streamId, epoch, seq, options.eventBytes)
          textBytes += text.length
          batch.push({ seq, upstreamId: upstreamId(), text })
        }
        await store.append(sessionId, streamId, batch)
      }
      // One lease renewal, as the owner makes every third of leaseTtlMs: it sets the TTL of every key of the stream.
      if (!await registry.renew(sessionId, streamId, OWNER, token, LEASE_TTL_MS, Date.now())) throw new Error('could not renew a fresh lease')
    }))
    const after = await settledUsedMemory(redis)
    const keys = await keyBytes(redis, prefix)
    return {
      eventsPerStream,
      keyBytes: keys.total,
      keyBytesByKind: keys.byKind,
      usedMemoryDelta: after - before,
      textBytes: textBytes / (options.streams * eventsPerStream)
    }
  } finally {
    await deleteKeysWithPrefix(redis, prefix)
  }
}

async function measureMode (redis: Redis, options: Options, replay: boolean): Promise<ModeFigures> {
  const rounds: ModeFigures['rounds'] = []
  for (let round = 0; round < options.rounds; round++) {
    const one = await measurePhase(redis, options, replay, 1)
    const many = await measurePhase(redis, options, replay, options.events)
    rounds.push({ one, many })
    process.stderr.write(`${replay ? 'replay' : 'ids-only'} round ${round + 1}/${options.rounds}: ` +
      `1 event: keys ${one.keyBytes} B, used_memory +${one.usedMemoryDelta} B; ` +
      `${options.events} events: keys ${many.keyBytes} B, used_memory +${many.usedMemoryDelta} B\n`)
  }
  const { streams, events } = options
  const perEvent = (pick: (phase: PhaseFigures) => number): number | null =>
    median(rounds.map(({ one, many }) => (pick(many) - pick(one)) / (streams * (events - 1))))
  const perEventKeyBytes = perEvent((phase) => phase.keyBytes)
  const perEventUsedMemory = perEvent((phase) => phase.usedMemoryDelta)
  const oneEventStreamKeyBytes = median(rounds.map(({ one }) => one.keyBytes / streams))
  const oneEventStreamUsedMemory = median(rounds.map(({ one }) => one.usedMemoryDelta / streams))
  return {
    replay,
    rounds,
    perEventKeyBytes,
    perEventUsedMemory,
    oneEventStreamKeyBytes,
    oneEventStreamUsedMemory,
    perStreamKeyBytes: oneEventStreamKeyBytes === null || perEventKeyBytes === null ? null : oneEventStreamKeyBytes - perEventKeyBytes,
    perStreamUsedMemory: oneEventStreamUsedMemory === null || perEventUsedMemory === null ? null : oneEventStreamUsedMemory - perEventUsedMemory,
    byKindPerStreamOne: medianByKind(rounds.map(({ one }) => one.keyBytesByKind), streams),
    byKindPerStreamMany: medianByKind(rounds.map(({ many }) => many.keyBytesByKind), streams)
  }
}

function medianByKind (phases: ReadonlyArray<Partial<Record<KeyKind, number>>>, streams: number): Partial<Record<KeyKind, number>> {
  const kinds = new Set(phases.flatMap((phase) => Object.keys(phase) as KeyKind[]))
  return Object.fromEntries([...kinds].map((kind) => [kind, (median(phases.map((phase) => phase[kind] ?? 0)) ?? 0) / streams]))
}

function bytes (value: number | null): string {
  return value === null ? '-' : `${Math.round(value)} B`
}

function report (options: Options, version: string, text: number, modes: readonly ModeFigures[]): string {
  const lines = [
    `Redis ${version} at ${options.url}; ${options.streams} streams per phase, each in its own session; ` +
      `${options.events} events per stream in the big phase, ${options.batch} per append; events of ${text.toFixed(1)} B of text ` +
      `with a 10-character upstream id; median of ${options.rounds} rounds.`,
    '',
    '| mode | per event: MEMORY USAGE | per event: used_memory | stream with 1 event: MEMORY USAGE | stream with 1 event: used_memory | fixed per stream: MEMORY USAGE | fixed per stream: used_memory |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...modes.map((mode) => `| ${mode.replay ? 'replay' : 'ids only'} | ${bytes(mode.perEventKeyBytes)} | ${bytes(mode.perEventUsedMemory)} | ` +
      `${bytes(mode.oneEventStreamKeyBytes)} | ${bytes(mode.oneEventStreamUsedMemory)} | ${bytes(mode.perStreamKeyBytes)} | ${bytes(mode.perStreamUsedMemory)} |`),
    '',
    'MEMORY USAGE per stream, by key (replay mode; the active index and the epoch are shared by all streams, shown per stream):',
    '',
    `| key | stream with 1 event | stream with ${options.events} events |`,
    '|---|---:|---:|'
  ]
  const replay = modes.find((mode) => mode.replay)
  if (replay !== undefined) {
    const kinds = new Set([...Object.keys(replay.byKindPerStreamOne), ...Object.keys(replay.byKindPerStreamMany)] as KeyKind[])
    for (const kind of kinds) lines.push(`| ${kind} | ${bytes(replay.byKindPerStreamOne[kind] ?? null)} | ${bytes(replay.byKindPerStreamMany[kind] ?? null)} |`)
  }
  return lines.join('\n') + '\n'
}

async function main (): Promise<void> {
  const options = parseArguments(process.argv.slice(2))
  if (options === 'help') {
    console.log(USAGE)
    return
  }
  const redis = benchRedisClient(options.url)
  await redis.connect()
  try {
    const version = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? 'unknown'
    // The scripts' first load, and the allocator's first pages, out of the measured phases.
    await measurePhase(redis, { ...options, streams: 10 }, true, 10)
    const modes = [await measureMode(redis, options, true), await measureMode(redis, options, false)]
    const text = modes[0]?.rounds[0]?.many.textBytes ?? 0
    process.stdout.write(report(options, version, text, modes))
    if (options.jsonPath !== undefined) {
      await writeFile(options.jsonPath, JSON.stringify({ redis: version, options: { ...options, jsonPath: undefined }, eventTextBytes: text, modes }, null, 2) + '\n')
    }
  } finally {
    redis.disconnect()
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error)
  process.exitCode = 1
})
