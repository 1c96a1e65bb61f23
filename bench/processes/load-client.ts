/**
 * The load generator, in its own process: the clients of every scenario, driven
 * by the harness, step by step, over IPC.
 */
import { ChurnFleet, type ChurnCounts, type ChurnLatency, type ChurnSpec } from '../client/churn-fleet.js'
import { timeResumes, type ResumeTimings } from '../client/resume-probe.js'
import { openSessions, type SessionsOpened } from '../client/session-opener.js'
import { StreamFleet, type FleetOpening, type FleetSpec, type FleetWindow } from '../client/stream-fleet.js'
import { timeUpstreamDrops } from '../client/upstream-drop-probe.js'
import { announceReady, serveCalls } from '../ipc/serve.js'
import { PauseMonitor, type PauseFigures } from '../pauses/pause-monitor.js'

export type LoadClientApi = {
  openFleet: (spec: FleetSpec) => Promise<FleetOpening>
  startWindow: () => Promise<void>
  endWindow: () => Promise<FleetWindow>
  closeFleet: () => Promise<void>
  timeUpstreamDrops: (url: string, drops: number, timeoutMs: number) => Promise<number[]>
  /** With `resumeUrl`: opened on `url`, resumed on `resumeUrl` (another replica). */
  timeResumes: (url: string, resumes: number, awayMs: number, eventsBetween: number, resumeUrl?: string) => Promise<ResumeTimings>
  startChurn: (spec: ChurnSpec) => Promise<void>
  churnCounts: () => Promise<ChurnCounts>
  stopChurn: () => Promise<ChurnCounts>
  /** Latency of live events since the last call, and this process's own pauses over the same time (a late client inflates latency too). */
  takeChurnLatency: () => Promise<{ latency: ChurnLatency, clientPauses: PauseFigures }>
  openSessions: (url: string, count: number, concurrency: number) => Promise<SessionsOpened>
  cpuMicros: () => Promise<number>
}

const fleet = new StreamFleet()
const pauses = new PauseMonitor()
let churn: ChurnFleet | undefined

serveCalls<LoadClientApi>({
  openFleet: async (spec) => await fleet.open(spec),
  startWindow: async () => fleet.startWindow(),
  endWindow: async () => fleet.endWindow(),
  closeFleet: async () => await fleet.close(),
  timeUpstreamDrops,
  timeResumes,
  startChurn: async (spec) => {
    churn = new ChurnFleet()
    churn.start(spec)
  },
  churnCounts: async () => ({ ...requireChurn().counts }),
  stopChurn: async () => requireChurn().stop(),
  takeChurnLatency: async () => {
    const latency = requireChurn().takeLatency()
    const clientPauses = pauses.read()
    pauses.reset()
    return { latency, clientPauses }
  },
  openSessions,
  cpuMicros: async () => {
    const cpu = process.cpuUsage()
    return cpu.user + cpu.system
  }
})

function requireChurn (): ChurnFleet {
  if (churn === undefined) throw new Error('no churn running')
  return churn
}

announceReady({})
