/**
 * The trackers alone, in a process of their own (started with --expose-gc): heap
 * held per tracked event, and operations per second.
 */
import { announceReady, serveCalls } from '../ipc/serve.js'
import { historyCostPer1000, type HistoryCost } from '../tracker/heap-cost.js'
import { trackerOpRates, type TrackerOpRates } from '../tracker/op-rate.js'

export type TrackerProbeApi = {
  historyCostPer1000: (events: number, eventBytes: number, replay: boolean) => Promise<HistoryCost>
  opRates: (durationMs: number, eventBytes: number) => Promise<TrackerOpRates>
}

serveCalls<TrackerProbeApi>({
  historyCostPer1000: async (events, eventBytes, replay) => historyCostPer1000(events, eventBytes, replay),
  opRates: async (durationMs, eventBytes) => trackerOpRates(durationMs, eventBytes)
})

announceReady({})
