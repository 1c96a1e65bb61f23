import { SMALL_EVENT, type SuitePlan } from '../plan.js'
import { progress } from '../progress.js'
import { startTrackerProbe } from '../tracker-probe-process.js'

export interface TrackerOpFigures {
  readonly opsPerSec: number
  readonly dedupeOpsPerSec: number
  readonly historyAppendOpsPerSec: number
}

/**
 * Scenario 2, first half: the trackers alone, in a process of their own. One
 * "op" is what the plugin does per event: the dedupe tracker's bookkeeping and one
 * history append. (The ratio plugin / plugin-bare comes from the throughput runs.)
 */
export async function runTrackerOverhead (plan: SuitePlan['tracker']): Promise<TrackerOpFigures> {
  const probe = await startTrackerProbe('tracker-probe')
  try {
    const rates = await probe.call('opRates', plan.opDurationMs, SMALL_EVENT)
    const opsPerSec = 1 / (1 / rates.dedupe + 1 / rates.historyAppend)
    progress(`tracker overhead: dedupe ${formatOps(rates.dedupe)}/s, history append ${formatOps(rates.historyAppend)}/s, both ${formatOps(opsPerSec)}/s`)
    return { opsPerSec, dedupeOpsPerSec: rates.dedupe, historyAppendOpsPerSec: rates.historyAppend }
  } finally {
    await probe.stop()
  }
}

function formatOps (perSecond: number): string {
  return `${(perSecond / 1e6).toFixed(2)}M`
}
