import { setTimeout as sleep } from 'node:timers/promises'
import type { ChurnCounts } from '../client/churn-fleet.js'
import { machineBusyMicros, processCpuMicros } from '../process-cpu.js'
import { progress } from '../progress.js'
import { redisStoreOptions, resilienceOptions } from '../proxy-options.js'
import { originOf, startProxy, type ProxyProcess } from '../proxy-process.js'
import { benchRedisUrl, cleanUpPrefix, freshKeyPrefix, probeRedis, redisCpuMicros } from '../redis-store.js'
import type { ReplicasFigures, ReplicasPeer } from '../report/results.js'
import type { SuitePlan } from '../plan.js'
import type { Testbed } from '../testbed.js'
import { streamPath } from '../upstream/stream-request.js'

export interface ReplicasOutcome {
  readonly rows: ReplicasFigures[]
  readonly redisVersion: string | null
  readonly notes: string[]
}

/** What the clients read through: nothing, one process, or two processes sharing a Redis. */
interface Fronts {
  readonly origins: readonly string[]
  readonly proxies: readonly ProxyProcess[]
  stop: () => Promise<void>
}

/**
 * Clients that move between replicas. Each reads a stream at a fixed rate, cuts
 * its connection after a time spread evenly between two bounds, and resumes with
 * Last-Event-ID on the other replica. Three fronts in the same run, for each
 * client count: the upstream directly (the floor; it starts again after the id
 * it is given, so the time away is simply not written), the plugin on the memory
 * store in one process (clients resume on the same one), and two plugin processes
 * on one Redis.
 */
export async function runReplicas (testbed: Testbed, plan: SuitePlan['replicas']): Promise<ReplicasOutcome> {
  const rows: ReplicasFigures[] = []
  const notes: string[] = []
  const redisUrl = benchRedisUrl()
  const probe = await probeRedis(redisUrl)
  const redisVersion = 'reason' in probe ? null : `Redis ${probe.version}`
  if ('reason' in probe) notes.push(`replicas: the Redis front skipped: ${probe.reason}`)
  for (const { clients, seconds } of plan.cases) {
    rows.push(await measure('direct', clients, seconds, testbed, plan, directFront(testbed), redisUrl))
    rows.push(await measure('plugin', clients, seconds, testbed, plan, await memoryFront(testbed), redisUrl))
    if (redisVersion !== null) rows.push(await measure('plugin-redis', clients, seconds, testbed, plan, await redisFront(testbed, redisUrl, plan.replicas), redisUrl))
  }
  return { rows, redisVersion, notes }
}

function directFront (testbed: Testbed): Fronts {
  return { origins: [testbed.upstreamOrigin], proxies: [], stop: async () => {} }
}

async function memoryFront (testbed: Testbed): Promise<Fronts> {
  const proxy = await startProxy({ kind: 'plugin', options: resilienceOptions(testbed.upstreamOrigin) }, 'replicas-memory')
  return { origins: [originOf(proxy)], proxies: [proxy], stop: async () => await proxy.stop() }
}

async function redisFront (testbed: Testbed, redisUrl: string, replicas: number): Promise<Fronts> {
  const keyPrefix = freshKeyPrefix()
  const options = redisStoreOptions(resilienceOptions(testbed.upstreamOrigin), redisUrl, keyPrefix)
  const proxies: ProxyProcess[] = []
  const stop = async (): Promise<void> => {
    try {
      await Promise.all(proxies.map(async (proxy) => await proxy.stop()))
    } finally {
      await cleanUpPrefix(redisUrl, keyPrefix)
    }
  }
  try {
    for (let index = 0; index < replicas; index++) proxies.push(await startProxy({ kind: 'plugin', options }, `replicas-redis-${index}`))
  } catch (error) {
    await stop()
    throw error
  }
  return { origins: proxies.map(originOf), proxies, stop }
}

async function measure (peer: ReplicasPeer, clients: number, seconds: number, testbed: Testbed, plan: SuitePlan['replicas'], fronts: Fronts, redisUrl: string): Promise<ReplicasFigures> {
  try {
    const path = streamPath({ eventBytes: plan.eventBytes, ratePerSecond: plan.eventsPerSecPerClient })
    await testbed.client.call('startChurn', {
      urls: fronts.origins.map((origin) => `${origin}${path}`),
      clients,
      connected: { minMs: plan.connectedMinMs, maxMs: plan.connectedMaxMs },
      maxAwayMs: plan.maxAwayMs,
      midEventShare: plan.midEventShare
    })
    await sleep(plan.warmupSeconds * 1000)
    const [before] = await Promise.all([
      testbed.client.call('churnCounts'),
      testbed.client.call('takeChurnLatency'),
      ...fronts.proxies.map(async (proxy) => await proxy.call('resetPauses')),
      ...fronts.proxies.map(async (proxy) => await proxy.call('takeResumeStages'))
    ])
    const [cpuBefore, machineBefore, redisBefore] = await Promise.all([cpuMicros(fronts.proxies), machineBusyMicros(), redisCpuMicros(redisUrl)])
    const windowStart = performance.now()
    await sleep(seconds * 1000)
    const [{ latency }, after, pauses, stages] = await Promise.all([
      testbed.client.call('takeChurnLatency'),
      testbed.client.call('churnCounts'),
      Promise.all(fronts.proxies.map(async (proxy) => await proxy.call('pauses'))),
      Promise.all(fronts.proxies.map(async (proxy) => await proxy.call('takeResumeStages')))
    ])
    const [cpuAfter, machineAfter, redisAfter] = await Promise.all([cpuMicros(fronts.proxies), machineBusyMicros(), redisCpuMicros(redisUrl)])
    const windowMs = performance.now() - windowStart
    const percentOfCore = (before: number | null, after: number | null): number | null => before === null || after === null ? null : (after - before) / (windowMs * 10)
    const counts = await testbed.client.call('stopChurn')
    const offered = clients * plan.eventsPerSecPerClient * windowMs / 1000
    const row: ReplicasFigures = {
      peer,
      replicas: fronts.origins.length,
      clients,
      eventsPerSecPerClient: plan.eventsPerSecPerClient,
      eventBytes: plan.eventBytes,
      warmupSeconds: plan.warmupSeconds,
      seconds: Math.round(windowMs / 1000),
      deliveredShare: (after.events - before.events) / offered,
      lost: peer === 'direct' ? null : counts.lost,
      duplicated: peer === 'direct' ? null : counts.duplicated,
      latencyP50Ms: latency.p50Ms,
      latencyP99Ms: latency.p99Ms,
      latencyMaxMs: latency.maxMs,
      resumeP99Ms: latency.resumeP99Ms,
      resumeAcceptWaitP99Ms: highest(stages.map((figures) => figures.acceptWaitP99Ms)),
      resumeToHeadP99Ms: highest(stages.map((figures) => figures.toHeadP99Ms)),
      resumes: counts.resumes,
      unrecoverable: peer === 'direct' ? {} : counts.unrecoverable,
      stalls: after.stalls - before.stalls,
      openFailures: counts.openFailures,
      proxyCpuPercent: fronts.proxies.length === 0 ? null : percentOfCore(cpuBefore, cpuAfter),
      redisCpuPercent: percentOfCore(redisBefore, redisAfter),
      machineBusyPercent: percentOfCore(machineBefore, machineAfter),
      proxyLoopDelayP99Ms: highest(pauses.map((figures) => figures.loopDelayP99Ms))
    }
    progress(`replicas ${peer} (${row.replicas}), ${clients} clients: ${(row.deliveredShare * 100).toFixed(1)}% delivered, ${row.lost ?? '-'} lost, ${row.duplicated ?? '-'} duplicated, ` +
      `machine ${fixed(row.machineBusyPercent)}% busy (proxies ${fixed(row.proxyCpuPercent)}%, Redis ${fixed(row.redisCpuPercent)}%), p50 ${fixed(row.latencyP50Ms)} ms p99 ${fixed(row.latencyP99Ms)} ms, resume p99 ${fixed(row.resumeP99Ms)} ms (accept ${fixed(row.resumeAcceptWaitP99Ms)}, request to head ${fixed(row.resumeToHeadP99Ms)}), ${row.stalls} stalls, ${describe(counts)}`)
    return row
  } finally {
    await fronts.stop()
    await testbed.settle(10_000)
  }
}

function describe (counts: ChurnCounts): string {
  const unrecoverable = Object.entries(counts.unrecoverable).map(([reason, count]) => `${reason} ${count}`).join(', ')
  return `${counts.resumes} resumes${unrecoverable === '' ? '' : ` (${unrecoverable})`}, ${counts.openFailures} failed opens`
}

async function cpuMicros (proxies: readonly ProxyProcess[]): Promise<number> {
  let total = 0
  for (const proxy of proxies) total += await processCpuMicros(proxy.pid) ?? (await proxy.call('sample')).cpuMicros
  return total
}

function highest (values: ReadonlyArray<number | null>): number | null {
  const known = values.filter((value): value is number => value !== null)
  return known.length === 0 ? null : Math.max(...known)
}

function fixed (value: number | null): string {
  return value === null ? '-' : value.toFixed(1)
}
