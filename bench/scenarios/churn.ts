import { setTimeout as sleep } from 'node:timers/promises'
import type { PeerName } from '../peers.js'
import type { SuitePlan } from '../plan.js'
import { describeGc } from '../pauses/pause-monitor.js'
import { processCpuMicros } from '../process-cpu.js'
import { progress } from '../progress.js'
import { redisStoreOptions, resilienceOptions } from '../proxy-options.js'
import { originOf, startProxy, type ProxyProcess } from '../proxy-process.js'
import { benchRedisUrl, cleanUpPrefix, freshKeyPrefix, probeRedis } from '../redis-store.js'
import type { ChurnFigures } from '../report/results.js'
import type { Testbed } from '../testbed.js'
import { streamPath } from '../upstream/stream-request.js'

export type ChurnPeer = Extract<PeerName, 'plugin' | 'plugin-redis'>

export interface ChurnOutcome {
  readonly rows: ChurnFigures[]
  readonly redisVersion: string | null
  readonly notes: string[]
}

const PROGRESS_EVERY_MS = 10_000

/**
 * Many slow streams whose clients all come and go: every client cuts its
 * connection after a time spread evenly between two bounds, and resumes with
 * Last-Event-ID. Through the plugin with its defaults (so a stream outlives its
 * client's time away), on the memory store, and on the Redis store when
 * `--peers` names plugin-redis. Lost and duplicated events are counted over the
 * whole run; latency, the proxy's event-loop delay and its GC pauses over the
 * window after the warm-up.
 */
export async function runChurn (testbed: Testbed, plan: SuitePlan['churn'], peers: readonly PeerName[]): Promise<ChurnOutcome> {
  const rows: ChurnFigures[] = []
  const notes: string[] = []
  let redisVersion: string | null = null
  if (peers.includes('plugin')) rows.push(await churnThrough('plugin', testbed, plan))
  if (peers.includes('plugin-redis')) {
    const redisUrl = benchRedisUrl()
    const probe = await probeRedis(redisUrl)
    if ('reason' in probe) {
      notes.push(`churn through plugin-redis skipped: ${probe.reason}`)
    } else {
      redisVersion = `Redis ${probe.version}`
      const keyPrefix = freshKeyPrefix()
      try {
        rows.push(await churnThrough('plugin-redis', testbed, plan, { redisUrl, keyPrefix }))
      } finally {
        await cleanUpPrefix(redisUrl, keyPrefix)
      }
    }
  }
  if (rows.length === 0) notes.push('churn: no peer to run (it runs on plugin and plugin-redis)')
  return { rows, redisVersion, notes }
}

async function churnThrough (peer: ChurnPeer, testbed: Testbed, plan: SuitePlan['churn'], redis?: { redisUrl: string, keyPrefix: string }): Promise<ChurnFigures> {
  const base = resilienceOptions(testbed.upstreamOrigin)
  const options = redis === undefined ? base : redisStoreOptions(base, redis.redisUrl, redis.keyPrefix)
  const proxy = await startProxy({ kind: 'plugin', options }, `churn-${peer}`)
  try {
    const url = `${originOf(proxy)}${streamPath({ eventBytes: plan.eventBytes, ratePerSecond: plan.eventsPerSecPerClient })}`
    await testbed.client.call('startChurn', {
      urls: [url],
      clients: plan.clients,
      connected: { minMs: plan.connectedMinMs, maxMs: plan.connectedMaxMs },
      maxAwayMs: plan.maxAwayMs,
      midEventShare: plan.midEventShare
    })
    await sleep(plan.warmupSeconds * 1000)
    await Promise.all([testbed.client.call('takeChurnLatency'), proxy.call('resetPauses'), proxy.call('takeResumeStages')])
    const cpuBefore = await cpuMicros(proxy)
    const windowStart = performance.now()
    await waitReporting(testbed, peer, plan.seconds * 1000)
    const [{ latency, clientPauses }, proxyPauses, resumeStages] = await Promise.all([testbed.client.call('takeChurnLatency'), proxy.call('pauses'), proxy.call('takeResumeStages')])
    const cpuUsed = await cpuMicros(proxy) - cpuBefore
    const windowMs = performance.now() - windowStart
    const counts = await testbed.client.call('stopChurn')
    const row: ChurnFigures = {
      peer,
      clients: plan.clients,
      eventsPerSecPerClient: plan.eventsPerSecPerClient,
      eventBytes: plan.eventBytes,
      connectedMs: [plan.connectedMinMs, plan.connectedMaxMs],
      warmupSeconds: plan.warmupSeconds,
      seconds: Math.round(windowMs / 1000),
      eventsDelivered: counts.events,
      lost: counts.lost,
      duplicated: counts.duplicated,
      latencyP50Ms: latency.p50Ms,
      latencyP99Ms: latency.p99Ms,
      latencyMaxMs: latency.maxMs,
      latencySamples: latency.samples,
      replayedEvents: latency.replayed,
      resumeP50Ms: latency.resumeP50Ms,
      resumeP99Ms: latency.resumeP99Ms,
      resumeMaxMs: latency.resumeMaxMs,
      resumeStages,
      proxyLoopDelayP50Ms: proxyPauses.loopDelayP50Ms,
      proxyLoopDelayP99Ms: proxyPauses.loopDelayP99Ms,
      proxyLoopDelayMaxMs: proxyPauses.loopDelayMaxMs,
      proxyGc: proxyPauses.gc,
      proxyCpuPercent: cpuUsed / (windowMs * 10),
      clientLoopDelayP99Ms: clientPauses.loopDelayP99Ms,
      cuts: counts.cuts,
      midEventCuts: counts.midEventCuts,
      resumes: counts.resumes,
      resumesWithUpstreamGaps: counts.resumesWithUpstreamGaps,
      unrecoverable: counts.unrecoverable,
      serverCloses: counts.serverCloses,
      openFailures: counts.openFailures,
      stalls: counts.stalls
    }
    progress(`churn ${peer}: ${row.eventsDelivered} events, ${row.lost} lost, ${row.duplicated} duplicated, ${row.resumes} resumes, ` +
      `latency p50 ${fixed(row.latencyP50Ms)} ms p99 ${fixed(row.latencyP99Ms)} ms, resume p99 ${fixed(row.resumeP99Ms)} ms (waiting to be accepted ${fixed(resumeStages.acceptWaitP99Ms)} ms, then to be parsed ${fixed(resumeStages.toRequestP99Ms)} ms, then for the head ${fixed(resumeStages.toHeadP99Ms)} ms), proxy loop delay p99 ${fixed(row.proxyLoopDelayP99Ms)} ms, ` +
      `proxy CPU ${row.proxyCpuPercent.toFixed(0)}%; GC: ${describeGc(proxyPauses.gc, proxyPauses.windowMs)}`)
    return row
  } finally {
    await proxy.stop()
    await testbed.settle(10_000)
  }
}

async function waitReporting (testbed: Testbed, peer: ChurnPeer, windowMs: number): Promise<void> {
  const end = performance.now() + windowMs
  for (;;) {
    const left = end - performance.now()
    if (left <= 0) return
    await sleep(Math.min(left, PROGRESS_EVERY_MS))
    if (performance.now() >= end) return
    const counts = await testbed.client.call('churnCounts')
    progress(`churn ${peer}: ${counts.events} events, ${counts.lost} lost, ${counts.duplicated} duplicated, ${counts.resumes} resumes`)
  }
}

async function cpuMicros (proxy: ProxyProcess): Promise<number> {
  return await processCpuMicros(proxy.pid) ?? (await proxy.call('sample')).cpuMicros
}

function fixed (value: number | null): string {
  return value === null ? '-' : value.toFixed(1)
}
