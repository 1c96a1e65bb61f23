/**
 * Where Redis time goes per event: one proxy with the Redis store, N paced streams through it,
 * and over a window, Redis's own CPU (INFO cpu), its per-command time (INFO commandstats), and
 * the commands and round trips the proxy sent (counted in the proxy process), each per event.
 *
 *   npm run bench:redis-cost -- [--streams 100] [--rate 50] [--seconds 20] [--warmup-seconds 5] [--event-bytes 200] [--memory] [--json FILE]
 *
 * --memory runs the same load through the memory store instead, for the proxy's CPU beside it.
 *
 * The Redis is $BENCH_REDIS_URL (default the local one); keys go under a prefix of their own,
 * deleted afterwards. Redis's figures are the whole server's: run it on a Redis nothing else uses.
 */
import { writeFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import type { Redis } from 'ioredis'
import type { RedisCommandCount } from './processes/redis-command-count.js'
import { progress } from './progress.js'
import { startProxy } from './proxy-process.js'
import { pluginOptions, redisStoreOptions } from './proxy-options.js'
import { benchRedisClient, benchRedisUrl, cleanUpPrefix, freshKeyPrefix, probeRedis } from './redis-store.js'
import { startTestbed } from './testbed.js'
import { streamPath } from './upstream/stream-request.js'

interface RedisSample {
  readonly cpuMicros: number
  /** `cmdstat_<name>`: calls and µs, scripts' inner commands included (their time is also their script's). */
  readonly commands: ReadonlyMap<string, { calls: number, usec: number }>
}

interface CostFigures {
  readonly streams: number
  readonly ratePerStream: number
  readonly windowSeconds: number
  readonly events: number
  readonly delivered: number
  readonly redisCpuUsPerEvent: number
  /** The proxy process's own CPU (user + system) per event: what bounds the streams a replica takes. */
  readonly proxyCpuUsPerEvent: number
  readonly roundTripsPerEvent: number
  readonly commandsPerEvent: number
  /** Sent by the proxy, per event, by command (a script by its name). */
  readonly sentPerEvent: Record<string, number>
  /** Redis's commandstats per event: calls and µs, by command. */
  readonly redisPerEvent: Record<string, { calls: number, usec: number }>
}

const { values } = parseArgs({
  options: {
    streams: { type: 'string', default: '100' },
    rate: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '20' },
    'warmup-seconds': { type: 'string', default: '5' },
    'event-bytes': { type: 'string', default: '200' },
    memory: { type: 'boolean', default: false },
    json: { type: 'string' }
  }
})
const streams = Number(values.streams)
const rate = Number(values.rate)
const windowMs = Number(values.seconds) * 1000
const warmupMs = Number(values['warmup-seconds']) * 1000
const eventBytes = Number(values['event-bytes'])

async function sampleRedis (redis: Redis): Promise<RedisSample> {
  const [cpu, stats] = await Promise.all([redis.info('cpu'), redis.info('commandstats')])
  const seconds = (field: string): number => Number(new RegExp(`${field}:([\\d.]+)`).exec(cpu)?.[1] ?? 0)
  const commands = new Map<string, { calls: number, usec: number }>()
  for (const match of stats.matchAll(/cmdstat_(\S+?):calls=(\d+),usec=(\d+)/g)) {
    commands.set(match[1] ?? '', { calls: Number(match[2]), usec: Number(match[3]) })
  }
  return { cpuMicros: (seconds('used_cpu_sys') + seconds('used_cpu_user')) * 1e6, commands }
}

function perEvent (before: RedisCommandCount, after: RedisCommandCount, events: number): Record<string, number> {
  const figures: Record<string, number> = {}
  for (const [name, calls] of Object.entries(after.commands)) {
    const delta = calls - (before.commands[name] ?? 0)
    if (delta > 0) figures[name] = delta / events
  }
  return figures
}

function redisPerEvent (before: RedisSample, after: RedisSample, events: number): Record<string, { calls: number, usec: number }> {
  const figures: Record<string, { calls: number, usec: number }> = {}
  for (const [name, stat] of after.commands) {
    const earlier = before.commands.get(name) ?? { calls: 0, usec: 0 }
    if (stat.calls > earlier.calls) figures[name] = { calls: (stat.calls - earlier.calls) / events, usec: (stat.usec - earlier.usec) / events }
  }
  return figures
}

async function measure (): Promise<CostFigures> {
  const url = benchRedisUrl()
  const probe = await probeRedis(url)
  if ('reason' in probe) throw new Error(probe.reason)
  const keyPrefix = freshKeyPrefix()
  const testbed = await startTestbed()
  const redis = benchRedisClient(url)
  await redis.connect()
  try {
    const base = pluginOptions(testbed.upstreamOrigin)
    const options = values.memory === true ? base : redisStoreOptions(base, url, keyPrefix)
    const proxy = await startProxy({ kind: 'plugin', options, countRedisCommands: true }, 'redis-cost')
    try {
      const { client, upstream } = testbed
      await upstream.call('hold')
      const opening = await client.call('openFleet', {
        url: `http://127.0.0.1:${proxy.ready.port}${streamPath({ eventBytes, ratePerSecond: rate })}`,
        clients: streams,
        latencyEvery: 1,
        openStallMs: 2000
      })
      await upstream.call('release')
      progress(`${opening.opened} streams open; warming up ${warmupMs / 1000} s`)
      await sleep(warmupMs)
      const [redisBefore, sentBefore, upstreamBefore, proxyBefore] = await Promise.all([sampleRedis(redis), proxy.call('redisCommands'), upstream.call('stats'), proxy.call('sample'), client.call('startWindow')])
      progress(`measuring ${windowMs / 1000} s`)
      await sleep(windowMs)
      const [redisAfter, sentAfter, upstreamAfter, proxyAfter, window] = await Promise.all([sampleRedis(redis), proxy.call('redisCommands'), upstream.call('stats'), proxy.call('sample'), client.call('endWindow')])
      await upstream.call('hold')
      await client.call('closeFleet')
      await upstream.call('release')
      await testbed.settle(15_000)
      const events = upstreamAfter.eventsWritten - upstreamBefore.eventsWritten
      const sent = perEvent(sentBefore, sentAfter, events)
      return {
        streams: opening.opened,
        ratePerStream: rate,
        windowSeconds: windowMs / 1000,
        events,
        delivered: window.events,
        redisCpuUsPerEvent: (redisAfter.cpuMicros - redisBefore.cpuMicros) / events,
        proxyCpuUsPerEvent: (proxyAfter.cpuMicros - proxyBefore.cpuMicros) / events,
        roundTripsPerEvent: (sentAfter.batches - sentBefore.batches) / events,
        commandsPerEvent: Object.values(sent).reduce((total, calls) => total + calls, 0),
        sentPerEvent: sent,
        redisPerEvent: redisPerEvent(redisBefore, redisAfter, events)
      }
    } finally {
      await proxy.stop()
    }
  } finally {
    redis.disconnect()
    await cleanUpPrefix(url, keyPrefix)
    await testbed.stop()
  }
}

function report (figures: CostFigures): string {
  const lines = [
    `${values.memory === true ? 'memory store' : 'Redis store'}, ${figures.streams} streams × ${figures.ratePerStream} events/s, ${figures.windowSeconds} s: ${figures.events} events written upstream, ${figures.delivered} delivered`,
    `Redis CPU per event: ${figures.redisCpuUsPerEvent.toFixed(2)} µs (INFO cpu, the whole server); proxy CPU per event: ${figures.proxyCpuUsPerEvent.toFixed(2)} µs`,
    `round trips per event: ${figures.roundTripsPerEvent.toFixed(3)} (connection-ticks with a command); commands per event: ${figures.commandsPerEvent.toFixed(3)}`,
    '',
    '| sent by the proxy | per event |',
    '|---|---|',
    ...Object.entries(figures.sentPerEvent).sort((a, b) => b[1] - a[1]).map(([name, calls]) => `| ${name} | ${calls.toFixed(4)} |`),
    '',
    '| Redis commandstats (inner calls of scripts too) | calls per event | µs per event |',
    '|---|---|---|',
    ...Object.entries(figures.redisPerEvent).sort((a, b) => b[1].usec - a[1].usec).map(([name, stat]) => `| ${name} | ${stat.calls.toFixed(4)} | ${stat.usec.toFixed(2)} |`)
  ]
  return lines.join('\n')
}

const figures = await measure()
process.stdout.write(`${report(figures)}\n`)
if (values.json !== undefined) writeFileSync(values.json, `${JSON.stringify(figures, null, 2)}\n`)
