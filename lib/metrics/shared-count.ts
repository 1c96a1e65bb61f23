import type { Gauge } from 'prom-client'

/**
 * How one plugin instance reports a count into a gauge that other instances may
 * report into too (they share their metrics when they export to the same place):
 * each adds the change of its own count, so the gauge reads their sum.
 */
export function countInto (gauge: Gauge): (count: number) => void {
  let last = 0
  return (count) => {
    gauge.inc(count - last)
    last = count
  }
}
