import { SMALL_EVENT } from '../plan.js'
import { findRow, fullSpeedRatios } from './ratios.js'
import type { BenchResults, TargetCheck, ThroughputRow } from './results.js'

type Figures = Omit<BenchResults, 'targets' | 'notes'>

const FIXED_RATES = [{ clients: 100, offeredPerConn: 1000 }, { clients: 1000, offeredPerConn: 50 }] as const

/** The issue's targets, each checked against what was measured; `plugin` is the row that counts. */
export function checkTargets (figures: Figures): TargetCheck[] {
  return [
    fixedRateDelivery(figures.throughput),
    fixedRateAddedLatency(figures.throughput),
    cpuAgainstReplyFrom(figures.throughput),
    ratioAgainstReplyFrom(figures.throughput),
    ratioAgainstBare(figures),
    threshold('upstream reconnect p99', '< 100 ms (aim < 20 ms)', figures.reconnect.upstreamP99Ms, (value) => value < 100, (value) => `${value.toFixed(1)} ms`),
    threshold('client resume p99', '< 50 ms', figures.reconnect.clientResumeP99Ms, (value) => value < 50, (value) => `${value.toFixed(1)} ms`),
    threshold('memory, replay mode, 200 B events', '≤ 1 MB per 1000 events', figures.memory.bytesPer1000Replay, (value) => value <= 1024 * 1024, formatBytes),
    threshold('memory, ids-only mode', '≤ 100 KB per 1000 events', figures.memory.bytesPer1000IdsOnly, (value) => value <= 100 * 1024, formatBytes),
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

function fixedRateAddedLatency (rows: readonly ThroughputRow[]): TargetCheck {
  return combine('fixed rates: added p99 latency over direct', '< 2 ms', FIXED_RATES.map(({ clients, offeredPerConn }) => {
    const plugin = findRow(rows, 'plugin', clients, SMALL_EVENT, offeredPerConn)?.p99Ms ?? null
    const direct = findRow(rows, 'direct', clients, SMALL_EVENT, offeredPerConn)?.p99Ms ?? null
    const added = plugin === null || direct === null ? null : plugin - direct
    return { text: added === null ? null : `${clients} × ${offeredPerConn}/s: +${added.toFixed(2)} ms`, met: added !== null && added < 2 }
  }))
}

function cpuAgainstReplyFrom (rows: readonly ThroughputRow[]): TargetCheck {
  const plugin = findRow(rows, 'plugin', 100, SMALL_EVENT, 1000)?.cpuUsPerEvent ?? null
  const replyFrom = findRow(rows, 'reply-from', 100, SMALL_EVENT, 1000)?.cpuUsPerEvent ?? null
  const ratio = plugin === null || replyFrom === null ? null : plugin / replyFrom
  return threshold('proxy CPU per event at 100 × 1000/s', '≤ 1.5× reply-from', ratio, (value) => value <= 1.5,
    (value) => `${value.toFixed(2)}× (${plugin?.toFixed(2) ?? '-'} vs ${replyFrom?.toFixed(2) ?? '-'} µs)`)
}

function ratioAgainstReplyFrom (rows: readonly ThroughputRow[]): TargetCheck {
  const ratios = fullSpeedRatios(rows, 'plugin', 'reply-from')
  const known = ratios.filter((entry) => entry.ratio !== null)
  if (known.length === 0) return notMeasured('full speed: plugin / reply-from, every client count and size', '≥ 0.9 (floor 0.5)')
  const worst = known.reduce((low, entry) => (entry.ratio as number) < (low.ratio as number) ? entry : low)
  const worstRatio = worst.ratio as number
  const floor = worstRatio >= 0.5 ? 'floor 0.5 held' : 'below the 0.5 floor'
  return {
    target: 'full speed: plugin / reply-from, every client count and size',
    goal: '≥ 0.9 (floor 0.5)',
    measured: `lowest ${worstRatio.toFixed(2)} (${worst.clients} × ${worst.eventBytes} B); ${floor}; ${known.map((entry) => `${entry.clients}×${entry.eventBytes}B ${(entry.ratio as number).toFixed(2)}`).join(', ')}`,
    status: worstRatio >= 0.9 ? 'met' : 'missed'
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

function threshold (target: string, goal: string, value: number | null, passes: (value: number) => boolean, format: (value: number) => string): TargetCheck {
  if (value === null) return notMeasured(target, goal)
  return { target, goal, measured: format(value), status: passes(value) ? 'met' : 'missed' }
}

function combine (target: string, goal: string, parts: ReadonlyArray<{ text: string | null, met: boolean }>): TargetCheck {
  if (parts.some((part) => part.text === null)) return notMeasured(target, goal)
  return { target, goal, measured: parts.map((part) => part.text).join('; '), status: parts.every((part) => part.met) ? 'met' : 'missed' }
}

function notMeasured (target: string, goal: string): TargetCheck {
  return { target, goal, measured: '-', status: 'not measured' }
}

function formatBytes (bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(2)} MB` : `${(bytes / 1024).toFixed(1)} KB`
}
