import { setTimeout as sleep } from 'node:timers/promises'
import { streamPath } from '../upstream/stream-request.js'
import { describeGc, type PauseFigures } from '../pauses/pause-monitor.js'
import { lineUpPeers, type Peer, type PeerLauncher } from '../peers.js'
import type { SuitePlan, ThroughputCase } from '../plan.js'
import { progress } from '../progress.js'
import type { RunInfo, ThroughputRow } from '../report/results.js'
import { medianOfKnown } from '../statistics.js'
import type { Testbed } from '../testbed.js'

interface Measurement {
  readonly eventsPerSec: number
  readonly p50Ms: number | null
  readonly p99Ms: number | null
  readonly cpuUsPerEvent: number | null
  readonly upstreamCpuUsPerEvent: number | null
  readonly streamsOpened: number
  readonly streamsEnded: number
  /** How long opening the streams and, after the window, winding them down took: a backed-up proxy is slow to both. */
  readonly openMs: number
  readonly settleMs: number
  readonly pauses: PauseFigures | null
}

export interface ThroughputOutcome {
  readonly rows: ThroughputRow[]
  readonly skippedPeers: RunInfo['skippedPeers']
  readonly nginxVersion: string | null
  readonly redisVersion: string | null
  readonly notes: string[]
}

// Full speed makes millions of events a second: sample one latency in this many.
const FULL_SPEED_LATENCY_EVERY = 16
const SETTLE_TIMEOUT_MS = 15_000

/**
 * Scenario 1. Every peer runs side by side; each case is measured `runs` times,
 * the peers taking turns within each run (in a rotating order), so that a noisy
 * moment hits them all alike. Each figure is the median of its runs.
 */
export async function runThroughput (testbed: Testbed, plan: SuitePlan['throughput']): Promise<ThroughputOutcome> {
  const lineUp = await lineUpPeers(plan.peers, testbed.upstreamOrigin, testbed.upstream.ready.port)
  const notes: string[] = lineUp.skipped.map(({ name, reason }) => `${name} skipped: ${reason}`)
  const rows: ThroughputRow[] = []
  for (const testCase of plan.cases) {
    const measurements = new Map<PeerLauncher, Measurement[]>(lineUp.launchers.map((launcher) => [launcher, []]))
    for (let run = 0; run < plan.runs; run++) {
      for (const launcher of rotate(lineUp.launchers, run)) {
        const peer = await launcher.launch()
        try {
          const measurement = await measureOnce(testbed, peer, testCase, plan, notes)
          measurements.get(launcher)?.push(measurement)
          progress(`throughput ${describeCase(testCase)} ${peer.name} run ${run + 1}/${plan.runs}: ${describeMeasurement(measurement)}`)
        } finally {
          await peer.stop()
        }
      }
    }
    for (const [launcher, runs] of measurements) rows.push(summarize(launcher, testCase, runs))
  }
  return { rows, skippedPeers: lineUp.skipped, nginxVersion: lineUp.nginxVersion, redisVersion: lineUp.redisVersion, notes }
}

async function measureOnce (testbed: Testbed, peer: Peer, testCase: ThroughputCase, plan: SuitePlan['throughput'], notes: string[]): Promise<Measurement> {
  const { client, upstream } = testbed
  const url = `${peer.origin}${streamPath({ eventBytes: testCase.eventBytes, ratePerSecond: testCase.offeredPerConn })}`
  const openStart = performance.now()
  await upstream.call('hold')
  const opening = await client.call('openFleet', {
    url,
    clients: testCase.clients,
    latencyEvery: testCase.offeredPerConn === 0 ? FULL_SPEED_LATENCY_EVERY : 1,
    openStallMs: plan.openStallMs
  })
  await upstream.call('release')
  const openMs = performance.now() - openStart
  await sleep(plan.warmupMs)
  const [proxyCpuBefore, upstreamBefore] = await Promise.all([peer.cpuMicros(), upstream.call('stats'), client.call('startWindow'), peer.resetPauses()])
  await sleep(plan.windowMs)
  const window = await client.call('endWindow')
  const [proxyCpuAfter, upstreamAfter, pauses] = await Promise.all([peer.cpuMicros(), upstream.call('stats'), peer.pauses()])
  // Streams a proxy opens late, from its queue, must not start pumping while the fleet closes.
  const settleStart = performance.now()
  await upstream.call('hold')
  await client.call('closeFleet')
  await upstream.call('release')
  if (!await testbed.settle(SETTLE_TIMEOUT_MS)) {
    const note = `${peer.name}, ${describeCase(testCase)}: upstream streams still open ${SETTLE_TIMEOUT_MS / 1000} s after the clients left`
    progress(note)
    notes.push(note)
  }
  const settleMs = performance.now() - settleStart
  const events = window.events
  return {
    eventsPerSec: events / (window.elapsedMs / 1000),
    p50Ms: window.p50Ms,
    p99Ms: window.p99Ms,
    cpuUsPerEvent: proxyCpuBefore === null || proxyCpuAfter === null || events === 0 ? null : (proxyCpuAfter - proxyCpuBefore) / events,
    upstreamCpuUsPerEvent: events === 0 ? null : (upstreamAfter.cpuMicros - upstreamBefore.cpuMicros) / events,
    streamsOpened: opening.opened,
    streamsEnded: window.streamsEnded,
    openMs,
    settleMs,
    pauses
  }
}

function summarize (peer: PeerLauncher, testCase: ThroughputCase, runs: readonly Measurement[]): ThroughputRow {
  return {
    scenario: peer.name,
    clients: testCase.clients,
    eventBytes: testCase.eventBytes,
    offeredPerConn: testCase.offeredPerConn,
    eventsPerSec: medianOfKnown(runs.map((run) => run.eventsPerSec)),
    p50Ms: medianOfKnown(runs.map((run) => run.p50Ms)),
    p99Ms: medianOfKnown(runs.map((run) => run.p99Ms)),
    cpuUsPerEvent: medianOfKnown(runs.map((run) => run.cpuUsPerEvent)),
    upstreamCpuUsPerEvent: medianOfKnown(runs.map((run) => run.upstreamCpuUsPerEvent)),
    runs: runs.length,
    streamsOpened: Math.min(...runs.map((run) => run.streamsOpened)),
    streamsEnded: runs.reduce((total, run) => total + run.streamsEnded, 0),
    proxyLoopDelayP99Ms: medianOfKnown(runs.map((run) => run.pauses?.loopDelayP99Ms ?? null)),
    proxyGcByRun: runs.flatMap((run) => run.pauses === null ? [] : [run.pauses.gc])
  }
}

function rotate<Item> (items: readonly Item[], by: number): Item[] {
  const shift = items.length === 0 ? 0 : by % items.length
  return [...items.slice(shift), ...items.slice(0, shift)]
}

export function describeCase (testCase: ThroughputCase): string {
  const rate = testCase.offeredPerConn === 0 ? 'full speed' : `${testCase.offeredPerConn} ev/s each`
  return `${testCase.clients} × ${testCase.eventBytes} B ${rate}`
}

function describeMeasurement (measurement: Measurement): string {
  const rate = measurement.eventsPerSec >= 1000 ? `${(measurement.eventsPerSec / 1000).toFixed(1)}k` : measurement.eventsPerSec.toFixed(0)
  const latency = `p50 ${measurement.p50Ms?.toFixed(2) ?? '-'} ms, p99 ${measurement.p99Ms?.toFixed(2) ?? '-'} ms`
  const phases = `open ${(measurement.openMs / 1000).toFixed(1)} s, settle ${(measurement.settleMs / 1000).toFixed(1)} s`
  const pauses = measurement.pauses === null
    ? ''
    : `; proxy loop delay p99 ${measurement.pauses.loopDelayP99Ms?.toFixed(1) ?? '-'} ms, max ${measurement.pauses.loopDelayMaxMs?.toFixed(1) ?? '-'} ms; GC: ${describeGc(measurement.pauses.gc, measurement.pauses.windowMs)}`
  return `${rate} ev/s, ${latency}, cpu ${measurement.cpuUsPerEvent?.toFixed(2) ?? '-'} µs/ev, ${measurement.streamsOpened} streams, ${phases}${pauses}`
}
