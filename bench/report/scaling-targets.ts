import { SMALL_EVENT } from '../plan.js'
import { combine, notMeasured, threshold } from './checks.js'
import { fullSpeedRatios } from './ratios.js'
import type { BenchResults, ReplicasFigures, ReplicasPeer, TargetCheck } from './results.js'

type Figures = Pick<BenchResults, 'replicas' | 'throughput'>

/** The scale-out targets of docs/scaling.md; the Redis store in several replicas is the row that counts. */
export function checkScalingTargets (figures: Figures): TargetCheck[] {
  return [
    addedOver(figures.replicas, 200, 'direct', 25),
    addedOver(figures.replicas, 200, 'plugin', 15),
    manyMoving(figures.replicas, 600),
    fullSpeedAgainstMemory(figures)
  ]
}

function row (rows: readonly ReplicasFigures[], peer: ReplicasPeer, clients: number): ReplicasFigures | undefined {
  return rows.find((entry) => entry.peer === peer && entry.clients === clients)
}

function addedOver (rows: readonly ReplicasFigures[], clients: number, base: 'direct' | 'plugin', limitMs: number): TargetCheck {
  const redis = row(rows, 'plugin-redis', clients)
  const other = row(rows, base, clients)
  const target = `${clients} clients × 50/s moving between ${redis?.replicas ?? 2} replicas: p99 added over ${base === 'direct' ? 'direct' : 'the memory store in the same run'}`
  const p99 = redis?.latencyP99Ms ?? null
  const baseP99 = other?.latencyP99Ms ?? null
  const added = p99 === null || baseP99 === null ? null : p99 - baseP99
  return threshold(target, `< ${limitMs} ms`, added, (value) => value < limitMs,
    (value) => `${value >= 0 ? '+' : ''}${value.toFixed(1)} ms (${p99?.toFixed(1) ?? '-'} vs ${baseP99?.toFixed(1) ?? '-'} ms)`)
}

function manyMoving (rows: readonly ReplicasFigures[], clients: number): TargetCheck {
  const target = `${clients} clients × 50/s moving: delivered, lost, duplicated, p99`
  const goal = '≥ 99% delivered, 0 lost, 0 duplicated, p99 < 100 ms'
  const redis = row(rows, 'plugin-redis', clients)
  if (redis === undefined || redis.latencyP99Ms === null || redis.lost === null || redis.duplicated === null) return notMeasured(target, goal)
  const met = redis.deliveredShare >= 0.99 && redis.lost === 0 && redis.duplicated === 0 && redis.latencyP99Ms < 100
  return {
    target,
    goal,
    measured: `${(redis.deliveredShare * 100).toFixed(1)}%, ${redis.lost} lost, ${redis.duplicated} duplicated, p99 ${redis.latencyP99Ms.toFixed(1)} ms, ${redis.stalls} stalls`,
    status: met ? 'met' : 'missed'
  }
}

function fullSpeedAgainstMemory ({ throughput }: Figures): TargetCheck {
  const ratios = fullSpeedRatios(throughput, 'plugin-redis', 'plugin').filter((entry) => entry.eventBytes === SMALL_EVENT && (entry.clients === 1 || entry.clients === 100))
  const target = 'full speed, Redis store / memory store, 1 and 100 clients, 200 B'
  if (ratios.length < 2) return notMeasured(target, '≥ 0.5')
  return combine(target, '≥ 0.5', ratios.map((entry) => ({
    text: entry.ratio === null ? null : `${entry.clients} client${entry.clients === 1 ? '' : 's'}: ${entry.ratio.toFixed(2)}`,
    met: entry.ratio !== null && entry.ratio >= 0.5
  })))
}
