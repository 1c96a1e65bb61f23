/** The few statistics the bench reports: medians of runs, percentiles of latencies. */

export function median (values: readonly number[]): number | null {
  if (values.length === 0) return null
  const sorted = [...values].sort((left, right) => left - right)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] as number : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}

/** Median of the values that are numbers; null when none is. */
export function medianOfKnown (values: ReadonlyArray<number | null>): number | null {
  return median(values.filter((value): value is number => value !== null))
}

/** Nearest-rank percentile of sorted values. */
export function percentile (sorted: Float64Array, fraction: number): number | null {
  if (sorted.length === 0) return null
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))
  return sorted[rank] as number
}

export function latencySummary (samples: readonly number[]): { p50Ms: number | null, p99Ms: number | null } {
  const sorted = Float64Array.from(samples).sort()
  return { p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99) }
}
