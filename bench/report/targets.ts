import { SMALL_EVENT } from '../plan.js'
import { findRow, fullSpeedRatios } from './ratios.js'
import { combine, notMeasured, threshold } from './checks.js'
import type { BenchResults, TargetCheck, ThroughputRow } from './results.js'

type Figures = Omit<BenchResults, 'targets' | 'scalingTargets' | 'notes'>

const FIXED_RATES = [{ clients: 100, offeredPerConn: 1000, addedP99Ms: 2 }, { clients: 1000, offeredPerConn: 50, addedP99Ms: 10 }] as const

/** The targets of the relay on bytes, each checked against what was measured; `plugin` is the row that counts. */
export function checkTargets (figures: Figures): TargetCheck[] {
  return [
    ratioAgainst(figures.throughput, 'reply-from', [1, 100], 'full speed, 1 and 100 clients, 200 B and 2 KB: plugin / reply-from', '≥ 0.9 (floor 0.7)', 0.9),
    ratioAgainst(figures.throughput, 'nginx', [1000], 'full speed, 1000 clients: plugin / nginx', '≥ 0.8', 0.8),
    ratioAgainstBare(figures),
    cpuAgainst(figures.throughput, 'reply-from', 100, 1000),
    cpuAgainst(figures.throughput, 'nginx', 1000, 50),
    ...FIXED_RATES.map((rate) => fixedRateAddedLatency(figures.throughput, rate)),
    fixedRateDelivery(figures.throughput),
    churnScenario(figures.churn),
    threshold('history per 1000 events of 200 B, replay mode: heap', '≤ 150 KB', figures.memory.heapBytesPer1000Replay, (value) => value <= 150 * 1024, formatBytes),
    threshold('history per 1000 events of 200 B, replay mode: heap + external', '≤ 400 KB', figures.memory.bytesPer1000Replay, (value) => value <= 400 * 1024, formatBytes),
    threshold('memory, ids-only mode', '≤ 100 KB per 1000 events', figures.memory.bytesPer1000IdsOnly, (value) => value <= 100 * 1024, formatBytes),
    threshold('upstream reconnect p99', '< 100 ms (aim < 20 ms)', figures.reconnect.upstreamP99Ms, (value) => value < 100, (value) => `${value.toFixed(1)} ms`),
    threshold('client resume p99', '< 50 ms', figures.reconnect.clientResumeP99Ms, (value) => value < 50, (value) => `${value.toFixed(1)} ms`),
    loadScenario(figures.load)
  ]
}

function fixedRateDelivery (rows: readonly ThroughputRow[]): TargetCheck {
  const parts = FIXED_RATES.map(({ clients, offeredPerConn }) => {
    const delivered = findRow(rows, 'plugin', clients, SMALL_EVENT, offeredPerConn)?.eventsPerSec ?? null
    return { label: `${clients} × ${offeredPerConn}/s`, share: delivered === null ? null : delivered / (clients * offeredPerConn) }
  })
  return combine('fixed rates, 200 B: delivered events', '≥ 99% of offered', parts.map(({ label, share }) => ({
    text: share === null ? null : `${label}: ${(share * 100).toFixed(1)}%`,
    met: share !== null && share >= 0.99
  })))
}

function fixedRateAddedLatency (rows: readonly ThroughputRow[], rate: typeof FIXED_RATES[number]): TargetCheck {
  const { clients, offeredPerConn, addedP99Ms } = rate
  const plugin = findRow(rows, 'plugin', clients, SMALL_EVENT, offeredPerConn)?.p99Ms ?? null
  const direct = findRow(rows, 'direct', clients, SMALL_EVENT, offeredPerConn)?.p99Ms ?? null
  const added = plugin === null || direct === null ? null : plugin - direct
  return threshold(`added p99 latency over direct, ${clients} × ${offeredPerConn}/s`, `< ${addedP99Ms} ms`, added, (value) => value < addedP99Ms,
    (value) => `+${value.toFixed(2)} ms (${plugin?.toFixed(2) ?? '-'} vs ${direct?.toFixed(2) ?? '-'} ms)`)
}

function cpuAgainst (rows: readonly ThroughputRow[], peer: 'reply-from' | 'nginx', clients: number, offeredPerConn: number): TargetCheck {
  const plugin = findRow(rows, 'plugin', clients, SMALL_EVENT, offeredPerConn)?.cpuUsPerEvent ?? null
  const other = findRow(rows, peer, clients, SMALL_EVENT, offeredPerConn)?.cpuUsPerEvent ?? null
  const ratio = plugin === null || other === null ? null : plugin / other
  return threshold(`CPU per event, ${clients} × ${offeredPerConn}/s: plugin / ${peer}`, '≤ 1.2×', ratio, (value) => value <= 1.2,
    (value) => `${value.toFixed(2)}× (${plugin?.toFixed(2) ?? '-'} vs ${other?.toFixed(2) ?? '-'} µs)`)
}

function ratioAgainst (rows: readonly ThroughputRow[], peer: 'reply-from' | 'nginx', clientCounts: readonly number[], target: string, goal: string, met: number): TargetCheck {
  const known = fullSpeedRatios(rows, 'plugin', peer).filter((entry) => entry.ratio !== null && clientCounts.includes(entry.clients))
  if (known.length === 0) return notMeasured(target, goal)
  const worst = known.reduce((low, entry) => (entry.ratio as number) < (low.ratio as number) ? entry : low)
  const worstRatio = worst.ratio as number
  return {
    target,
    goal,
    measured: `lowest ${worstRatio.toFixed(2)} (${worst.clients} × ${worst.eventBytes} B); ${known.map((entry) => `${entry.clients}×${entry.eventBytes}B ${(entry.ratio as number).toFixed(2)}`).join(', ')}`,
    status: worstRatio >= met ? 'met' : 'missed'
  }
}

function churnScenario (churn: Figures['churn']): TargetCheck {
  const target = 'churn: streams × 50/s, each client resuming with Last-Event-ID every 2–7 s'
  const goal = '0 lost, 0 duplicated, p99 < 50 ms'
  const row = churn.find((entry) => entry.peer === 'plugin')
  if (row === undefined || row.latencyP99Ms === null) return notMeasured(target, goal)
  const met = row.lost === 0 && row.duplicated === 0 && row.latencyP99Ms < 50
  return {
    target,
    goal,
    measured: `${row.clients} streams: ${row.lost} lost, ${row.duplicated} duplicated, p50 ${row.latencyP50Ms?.toFixed(1) ?? '-'} ms, p99 ${row.latencyP99Ms.toFixed(1)} ms; ` +
      `proxy loop delay p99 ${row.proxyLoopDelayP99Ms?.toFixed(1) ?? '-'} ms`,
    status: met ? 'met' : 'missed'
  }
}

function ratioAgainstBare (figures: Figures): TargetCheck {
  const ratios = figures.trackerOverhead.ratioByCase.filter((entry) => entry.ratio !== null)
  return threshold('plugin / plugin-bare', '≥ 0.95', figures.trackerOverhead.ratio, (value) => value >= 0.95,
    (value) => `${value.toFixed(2)} (geometric mean; by case: ${ratios.map((entry) => `${entry.clients}×${entry.eventBytes}B ${(entry.ratio as number).toFixed(2)}`).join(', ')}); ` +
      `CPU per event, bare / plugin: ${figures.trackerOverhead.cpuRatio?.toFixed(2) ?? '-'}`)
}

function loadScenario (load: Figures['load']): TargetCheck {
  const target = 'load under churn'
  const goal = '0 lost, 0 duplicated, RSS growth < 10% across the second half'
  if (load.lost === null || load.duplicated === null || load.rssGrowthSecondHalfPct === null) return notMeasured(target, goal)
  const unrecoverable = Object.values(load.unrecoverable).reduce((sum, count) => sum + count, 0)
  const met = load.lost === 0 && load.duplicated === 0 && unrecoverable === 0 && load.rssGrowthSecondHalfPct < 10
  return {
    target,
    goal,
    measured: `${load.lost} lost, ${load.duplicated} duplicated, ${unrecoverable} unrecoverable resumes of ${load.resumes ?? 0}, ` +
      `RSS ${signed(load.rssGrowthSecondHalfPct)}% over the second half (heap after GC ${signed(load.heapGrowthSecondHalfPct)}%), ${load.seconds} s`,
    status: met ? 'met' : 'missed'
  }
}

function signed (value: number | null): string {
  return value === null ? '-' : `${value >= 0 ? '+' : ''}${value.toFixed(1)}`
}

function formatBytes (bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(2)} MB` : `${(bytes / 1024).toFixed(1)} KB`
}
