import { setTimeout as sleep } from 'node:timers/promises'
import type { SuitePlan } from '../plan.js'
import { progress } from '../progress.js'
import { LOAD_HISTORY, loadOptions } from '../proxy-options.js'
import { originOf, startProxy, type ProxyProcess } from '../proxy-process.js'
import { processCpuMicros } from '../process-cpu.js'
import type { LoadFigures } from '../report/results.js'
import type { Testbed } from '../testbed.js'
import { streamPath } from '../upstream/stream-request.js'

const MB = 1024 * 1024

interface Sample {
  readonly atMs: number
  readonly rssMb: number
}

interface Checkpoint {
  readonly rssMb: number
  readonly heapMb: number
}

// Heap after a forced full GC, at the start and at each tenth of the run: live memory, free of the GC cycle.
const CHECKPOINTS = 10

/**
 * Scenario 5: 100 clients, each stream at 1000 events/s, cutting their connections
 * at random (half of the time in the middle of an event) and resuming with
 * Last-Event-ID, through the plugin. Each client checks the upstream's numbering:
 * every gap is lost events, every repeat a duplicate. The proxy's RSS is sampled
 * all along, and its live heap at checkpoints.
 */
export async function runLoad (testbed: Testbed, plan: SuitePlan['load']): Promise<LoadFigures> {
  const proxy = await startProxy({ kind: 'plugin', options: loadOptions(testbed.upstreamOrigin) }, 'load-proxy')
  try {
    const url = `${originOf(proxy)}${streamPath({ eventBytes: 200, ratePerSecond: plan.eventsPerSecPerClient })}`
    const cpuBefore = await cpuMicros(proxy)
    const startedAt = performance.now()
    await testbed.client.call('startChurn', { urls: [url], clients: plan.clients, connected: { meanMs: plan.meanConnectedMs }, maxAwayMs: plan.maxAwayMs, midEventShare: plan.midEventShare })
    const { samples, checkpoints } = await sampleMemory(proxy, testbed, plan)
    const counts = await testbed.client.call('stopChurn')
    const seconds = (performance.now() - startedAt) / 1000
    const cpuUsed = await cpuMicros(proxy) - cpuBefore
    const backlog = (await testbed.upstream.call('stats')).backlogBytes
    const memory = memoryFigures(samples, checkpoints)
    return {
      clients: plan.clients,
      eventsPerSecPerClient: plan.eventsPerSecPerClient,
      seconds: Math.round(seconds),
      lost: counts.lost,
      duplicated: counts.duplicated,
      ...memory,
      rssSamplesMb: samples.map((sample) => round1(sample.rssMb)),
      rssAfterGcMb: checkpoints.map((checkpoint) => round1(checkpoint.rssMb)),
      heapAfterGcMb: checkpoints.map((checkpoint) => round1(checkpoint.heapMb)),
      eventsDelivered: counts.events,
      deliveredPerSec: counts.events / seconds,
      cpuUsPerEvent: counts.events === 0 ? null : cpuUsed / counts.events,
      cpuPercent: cpuUsed / (seconds * 10_000),
      cuts: counts.cuts,
      midEventCuts: counts.midEventCuts,
      resumes: counts.resumes,
      unrecoverable: counts.unrecoverable,
      serverCloses: counts.serverCloses,
      openFailures: counts.openFailures,
      upstreamBacklogBytes: backlog,
      historyMaxEvents: LOAD_HISTORY.maxEvents
    }
  } finally {
    await proxy.stop()
    await testbed.settle(10_000)
  }
}

/** RSS every sampleEveryMs as it is, and at each tenth of the run after a forced full GC. */
async function sampleMemory (proxy: ProxyProcess, testbed: Testbed, plan: SuitePlan['load']): Promise<{ samples: Sample[], checkpoints: Checkpoint[] }> {
  const samples: Sample[] = []
  const checkpoints: Checkpoint[] = [await checkpoint(proxy)]
  const start = performance.now()
  const runMs = plan.seconds * 1000
  let nextReport = start + 10_000
  for (;;) {
    samples.push({ atMs: performance.now() - start, rssMb: (await proxy.call('sample')).rssBytes / MB })
    const elapsed = performance.now() - start
    if (elapsed >= checkpoints.length * runMs / CHECKPOINTS) checkpoints.push(await checkpoint(proxy))
    if (performance.now() >= nextReport) {
      nextReport += 10_000
      await reportProgress(testbed, elapsed, samples)
    }
    if (checkpoints.length > CHECKPOINTS) return { samples, checkpoints }
    const untilCheckpoint = start + checkpoints.length * runMs / CHECKPOINTS - performance.now()
    await sleep(Math.max(0, Math.min(plan.sampleEveryMs, untilCheckpoint)))
  }
}

async function checkpoint (proxy: ProxyProcess): Promise<Checkpoint> {
  const sample = await proxy.call('sampleAfterGc')
  return { rssMb: sample.rssBytes / MB, heapMb: sample.heapUsedBytes / MB }
}

async function reportProgress (testbed: Testbed, elapsedMs: number, samples: readonly Sample[]): Promise<void> {
  const counts = await testbed.client.call('churnCounts')
  progress(`load: ${Math.round(elapsedMs / 1000)} s, ${counts.events} events, ${counts.lost} lost, ${counts.duplicated} duplicated, ${counts.resumes} resumes, RSS ${samples[samples.length - 1]?.rssMb.toFixed(1) ?? '-'} MB`)
}

/**
 * RSS saws with the GC cycle (V8 keeps freed pages a while), so single samples say
 * little: half and end are the mean RSS over the third and the last quarter of
 * the run, each spanning several cycles. Live memory is the heap after a forced GC.
 */
function memoryFigures (samples: readonly Sample[], checkpoints: readonly Checkpoint[]): Pick<LoadFigures, 'rssStartMb' | 'rssEndMb' | 'rssHalfMb' | 'rssGrowthSecondHalfPct' | 'heapGrowthSecondHalfPct'> {
  const spanMs = samples[samples.length - 1]?.atMs ?? 0
  const meanBetween = (from: number, to: number): number | null => mean(samples.filter((sample) => sample.atMs >= from * spanMs && sample.atMs <= to * spanMs).map((sample) => sample.rssMb))
  const half = meanBetween(0.5, 0.75)
  const end = meanBetween(0.75, 1)
  const heapHalf = checkpoints[Math.floor(CHECKPOINTS / 2)]?.heapMb
  const heapEnd = checkpoints[CHECKPOINTS]?.heapMb
  return {
    rssStartMb: samples[0] === undefined ? null : round1(samples[0].rssMb),
    rssHalfMb: half === null ? null : round1(half),
    rssEndMb: end === null ? null : round1(end),
    rssGrowthSecondHalfPct: half === null || end === null ? null : round1((end - half) / half * 100),
    heapGrowthSecondHalfPct: heapHalf === undefined || heapEnd === undefined ? null : round1((heapEnd - heapHalf) / heapHalf * 100)
  }
}

function mean (values: readonly number[]): number | null {
  return values.length === 0 ? null : values.reduce((sum, value) => sum + value, 0) / values.length
}

async function cpuMicros (proxy: ProxyProcess): Promise<number> {
  return await processCpuMicros(proxy.pid) ?? (await proxy.call('sample')).cpuMicros
}

function round1 (value: number): number {
  return Math.round(value * 10) / 10
}
