import type { PeerName } from '../peers.js'
import type { SuitePlan } from '../plan.js'
import { progress } from '../progress.js'
import { redisStoreOptions, resilienceOptions } from '../proxy-options.js'
import { originOf, startProxy, type ProxyProcess } from '../proxy-process.js'
import { benchRedisUrl, cleanUpPrefix, freshKeyPrefix, probeRedis } from '../redis-store.js'
import type { ReconnectFigures, RedisReconnectFigures } from '../report/results.js'
import { latencySummary } from '../statistics.js'
import type { Testbed } from '../testbed.js'
import { streamPath } from '../upstream/stream-request.js'

const RESUME_STREAM_RATE = 1000
const EVENTS_BETWEEN_RESUMES = 5

export interface ReconnectOutcome {
  readonly figures: ReconnectFigures
  readonly redisVersion: string | null
  readonly notes: string[]
}

interface ResumeFigures {
  readonly p50Ms: number | null
  readonly p99Ms: number | null
  readonly inOrder: number
}

/**
 * Scenario 4, through the plugin with its defaults; with plugin-redis in `--peers`,
 * through the Redis store too.
 * Upstream drops: the upstream ends the stream cleanly `dropAfterMs` after each
 * connection's first event and stays up; the proxy reconnects at once, with
 * Last-Event-ID, which the upstream honours (it goes on after that id). Timed
 * from the close to the first event of the new connection at the client.
 * Client resumes: the client cuts its connection, waits `awayMs`, and comes back
 * with the last id it saw; timed from its GET to the first replayed event.
 */
export async function runReconnect (testbed: Testbed, plan: SuitePlan['reconnect'], peers: readonly PeerName[]): Promise<ReconnectOutcome> {
  const figures = await throughMemoryStore(testbed, plan)
  if (!peers.includes('plugin-redis')) return { figures, redisVersion: null, notes: [] }
  const redisUrl = benchRedisUrl()
  const probe = await probeRedis(redisUrl)
  if ('reason' in probe) return { figures, redisVersion: null, notes: [`reconnect through plugin-redis skipped: ${probe.reason}`] }
  return { figures: { ...figures, redisStore: await throughRedisStore(testbed, plan, redisUrl) }, redisVersion: `Redis ${probe.version}`, notes: [] }
}

async function throughMemoryStore (testbed: Testbed, plan: SuitePlan['reconnect']): Promise<ReconnectFigures> {
  const proxy = await startProxy({ kind: 'plugin', options: resilienceOptions(testbed.upstreamOrigin) }, 'resilience-proxy')
  try {
    const origin = originOf(proxy)
    const drops = await timeDrops(testbed, plan, origin, `drops-${process.pid}`, 'reconnect')
    const resumes = await timeResumes(testbed, plan, origin, undefined, 'reconnect: client resume')
    return {
      upstreamP50Ms: drops.p50Ms,
      upstreamP99Ms: drops.p99Ms,
      clientResumeP50Ms: resumes.p50Ms,
      clientResumeP99Ms: resumes.p99Ms,
      upstreamDrops: plan.drops,
      clientResumes: plan.resumes,
      clientResumesInOrder: resumes.inOrder,
      redisStore: null
    }
  } finally {
    await proxy.stop()
  }
}

/**
 * Two replicas of the plugin share one Redis under a fresh key prefix; the client
 * opens every stream on replica A, which then owns its upstream. Resumes on A
 * read the history from Redis; resumes on B are "replay, then live" from Redis.
 */
async function throughRedisStore (testbed: Testbed, plan: SuitePlan['reconnect'], redisUrl: string): Promise<RedisReconnectFigures> {
  const keyPrefix = freshKeyPrefix()
  const options = redisStoreOptions(resilienceOptions(testbed.upstreamOrigin), redisUrl, keyPrefix)
  const replicas: ProxyProcess[] = []
  try {
    replicas.push(await startProxy({ kind: 'plugin', options }, 'redis-replica-a'))
    replicas.push(await startProxy({ kind: 'plugin', options }, 'redis-replica-b'))
    const [a, b] = replicas.map(originOf) as [string, string]
    const drops = await timeDrops(testbed, plan, a, `drops-redis-${process.pid}`, 'reconnect, Redis store')
    const same = await timeResumes(testbed, plan, a, undefined, 'reconnect, Redis store: client resume on the owner replica')
    const other = await timeResumes(testbed, plan, a, b, 'reconnect, Redis store: client resume on another replica')
    return {
      upstreamP50Ms: drops.p50Ms,
      upstreamP99Ms: drops.p99Ms,
      upstreamDrops: plan.drops,
      sameReplicaResumeP50Ms: same.p50Ms,
      sameReplicaResumeP99Ms: same.p99Ms,
      sameReplicaResumes: plan.resumes,
      sameReplicaResumesInOrder: same.inOrder,
      otherReplicaResumeP50Ms: other.p50Ms,
      otherReplicaResumeP99Ms: other.p99Ms,
      otherReplicaResumes: plan.resumes,
      otherReplicaResumesInOrder: other.inOrder
    }
  } finally {
    await Promise.all(replicas.map(async (replica) => await replica.stop()))
    await cleanUpPrefix(redisUrl, keyPrefix)
  }
}

async function timeDrops (testbed: Testbed, plan: SuitePlan['reconnect'], origin: string, key: string, label: string): Promise<{ p50Ms: number | null, p99Ms: number | null }> {
  const dropUrl = `${origin}${streamPath({ eventBytes: 200, ratePerSecond: 0, dropAfterMs: plan.dropAfterMs, key })}`
  const dropTimeoutMs = 60_000 + plan.drops * 200
  const drops = latencySummary(await testbed.client.call('timeUpstreamDrops', dropUrl, plan.drops, dropTimeoutMs))
  progress(`${label}: upstream drop to first event p50 ${drops.p50Ms?.toFixed(2) ?? '-'} ms, p99 ${drops.p99Ms?.toFixed(2) ?? '-'} ms over ${plan.drops} drops`)
  return drops
}

async function timeResumes (testbed: Testbed, plan: SuitePlan['reconnect'], origin: string, resumeOrigin: string | undefined, label: string): Promise<ResumeFigures> {
  const path = streamPath({ eventBytes: 200, ratePerSecond: RESUME_STREAM_RATE })
  const resumes = resumeOrigin === undefined
    ? await testbed.client.call('timeResumes', `${origin}${path}`, plan.resumes, plan.awayMs, EVENTS_BETWEEN_RESUMES)
    : await testbed.client.call('timeResumes', `${origin}${path}`, plan.resumes, plan.awayMs, EVENTS_BETWEEN_RESUMES, `${resumeOrigin}${path}`)
  const latency = latencySummary(resumes.samples)
  progress(`${label} p50 ${latency.p50Ms?.toFixed(2) ?? '-'} ms, p99 ${latency.p99Ms?.toFixed(2) ?? '-'} ms over ${plan.resumes} resumes, ${resumes.recovered} in order`)
  return { ...latency, inOrder: resumes.recovered }
}
