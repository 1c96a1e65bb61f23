import { ChildHandle } from './ipc/child-handle.js'
import type { TrackerProbeApi } from './processes/tracker-probe.js'

export type TrackerProbe = ChildHandle<TrackerProbeApi>

/** A fresh process for the trackers alone, with --expose-gc for heap figures. */
export async function startTrackerProbe (label: string): Promise<TrackerProbe> {
  return await ChildHandle.fork<TrackerProbeApi>(new URL('./processes/tracker-probe.js', import.meta.url), { label, execArgv: ['--expose-gc'] })
}
