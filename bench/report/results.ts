import type { ChurnCounts } from '../client/churn-fleet.js'
import type { MachineInfo } from '../machine.js'
import type { ResumeStages } from '../pauses/connection-timings.js'
import type { GcFigures } from '../pauses/pause-monitor.js'
import type { PeerName } from '../peers.js'

/** The JSON the bench writes. The first keys of each object are the contract; the rest are extras. */
export interface BenchResults {
  machine: MachineInfo
  throughput: ThroughputRow[]
  trackerOverhead: TrackerOverhead
  memory: MemoryFigures
  reconnect: ReconnectFigures
  load: LoadFigures
  /** The churn scenario, one row per store (plugin, plugin-redis); empty when it did not run. */
  churn: ChurnFigures[]
  /** Clients moving between replicas: one row per front and client count; empty when it did not run. */
  replicas: ReplicasFigures[]
  run: RunInfo
  targets: TargetCheck[]
  /** The scale-out targets (docs/scaling.md), checked against the replicas and throughput figures. */
  scalingTargets: TargetCheck[]
  notes: string[]
}

export interface ThroughputRow {
  scenario: PeerName
  clients: number
  eventBytes: number
  /** 0 for full speed. */
  offeredPerConn: number
  eventsPerSec: number | null
  p50Ms: number | null
  p99Ms: number | null
  /** The proxy process's CPU (user + system) over the events delivered; null for direct. */
  cpuUsPerEvent: number | null
  /** The bench upstream's own CPU per event: what `direct` costs at the source. */
  upstreamCpuUsPerEvent: number | null
  runs: number
  /** Streams that got their response head (a pooled proxy queues the rest). */
  streamsOpened: number
  /** Streams that the far end closed during the measurement windows, over all runs. */
  streamsEnded: number
  /** How late the proxy's event loop came back to a 1 ms timer over the window, p99 (median of runs); null for direct and nginx. */
  proxyLoopDelayP99Ms: number | null
  /** The proxy's GC pauses over each run's window (PerformanceObserver 'gc'); empty for direct and nginx. */
  proxyGcByRun: GcFigures[]
}

export interface TrackerOverhead {
  /** One event through both trackers: dedupe check and history append. */
  opsPerSec: number | null
  /** plugin / plugin-bare throughput at full speed: geometric mean over client counts and sizes. */
  ratio: number | null
  /**
   * plugin-bare's proxy CPU per event over plugin's at full speed, geometric mean: the same
   * question as `ratio` asked of the steadiest figure on a noisy machine (1: history and dedupe cost nothing).
   */
  cpuRatio: number | null
  dedupeOpsPerSec: number | null
  historyAppendOpsPerSec: number | null
  ratioByCase: CaseRatio[]
}

export interface CaseRatio {
  clients: number
  eventBytes: number
  ratio: number | null
}

export interface MemoryFigures {
  /** Heap and external together: what the history costs, wherever it keeps its bytes. */
  bytesPer1000Replay: number | null
  bytesPer1000IdsOnly: number | null
  /** The V8 heap's share (heapUsed). */
  heapBytesPer1000Replay: number | null
  heapBytesPer1000IdsOnly: number | null
  /** Off the V8 heap: process.memoryUsage().external, which includes arrayBuffers (Node's Buffers). */
  externalBytesPer1000Replay: number | null
  externalBytesPer1000IdsOnly: number | null
  /** Proxy RSS in MB. */
  rss1000Sessions: number | null
  rss10000Sessions: number | null
  rssNoSessions: number | null
  eventBytes: number
  trackedEvents: number | null
}

export interface ReconnectFigures {
  upstreamP50Ms: number | null
  upstreamP99Ms: number | null
  clientResumeP50Ms: number | null
  clientResumeP99Ms: number | null
  upstreamDrops: number
  clientResumes: number
  /** Resumes answered `recovered` whose first event followed the last one seen. */
  clientResumesInOrder: number
  /** The same through the Redis store (`--peers` with plugin-redis); null when it did not run. */
  redisStore: RedisReconnectFigures | null
}

/**
 * The reconnection scenario through two replicas sharing one Redis (store.kind
 * redis), the stream read by replica A: upstream drops; client resumes on A, which
 * reads the upstream (history from Redis); client resumes on B, which does not
 * (replay from Redis, then live through pub/sub).
 */
export interface RedisReconnectFigures {
  upstreamP50Ms: number | null
  upstreamP99Ms: number | null
  upstreamDrops: number
  sameReplicaResumeP50Ms: number | null
  sameReplicaResumeP99Ms: number | null
  sameReplicaResumes: number
  sameReplicaResumesInOrder: number
  otherReplicaResumeP50Ms: number | null
  otherReplicaResumeP99Ms: number | null
  otherReplicaResumes: number
  otherReplicaResumesInOrder: number
}

export interface LoadFigures {
  clients: number
  eventsPerSecPerClient: number
  seconds: number
  lost: number | null
  duplicated: number | null
  /** The proxy's RSS when the clients started. */
  rssStartMb: number | null
  /** Mean RSS over the last quarter of the run: RSS saws with the GC cycle, a mean spans several cycles. */
  rssEndMb: number | null
  /** Mean RSS over the third quarter of the run. */
  rssHalfMb: number | null
  /** rssEndMb over rssHalfMb, in percent: the growth across the second half. */
  rssGrowthSecondHalfPct: number | null
  /** Growth of the heap after a forced full GC from the middle of the run to its end, in percent: live memory. */
  heapGrowthSecondHalfPct: number | null
  /** RSS as sampled along the run (every `sampleEveryMs`), sawing with the GC cycle. */
  rssSamplesMb: number[]
  /** RSS and heap right after a forced full GC, at the start and at each tenth of the run. */
  rssAfterGcMb: number[]
  heapAfterGcMb: number[]
  eventsDelivered: number | null
  deliveredPerSec: number | null
  cpuUsPerEvent: number | null
  /** Proxy CPU over the run, in percent of one core. */
  cpuPercent: number | null
  cuts: number | null
  midEventCuts: number | null
  resumes: number | null
  unrecoverable: Record<string, number>
  serverCloses: number | null
  openFailures: number | null
  /** Bytes waiting in the upstream's socket buffers at the end: grows when the proxy cannot keep up. */
  upstreamBacklogBytes: number | null
  historyMaxEvents: number
}

/** The fleet's counts (bench/client/churn-fleet.ts), with what the run measured around them. */
export interface ChurnFigures extends Omit<ChurnCounts, 'events'> {
  peer: PeerName
  clients: number
  eventsPerSecPerClient: number
  eventBytes: number
  /** Each client stays connected for a time spread evenly between these (ms), then cuts and resumes. */
  connectedMs: [number, number]
  warmupSeconds: number
  /** The measured window, after the warm-up. */
  seconds: number
  /** Events the clients read over the whole run, warm-up included; lost and duplicated likewise. */
  eventsDelivered: number
  /** From the upstream writing a live event to the client reading it, over the window. */
  latencyP50Ms: number | null
  latencyP99Ms: number | null
  latencyMaxMs: number | null
  latencySamples: number
  /** Events written before the client's GET (replayed): not in the latency figures. */
  replayedEvents: number
  /** From a resuming client's GET to its response head, over the window. */
  resumeP50Ms: number | null
  resumeP99Ms: number | null
  resumeMaxMs: number | null
  /** The same resumes seen from inside the proxy: waiting to be accepted, then to be parsed, then for the head. */
  resumeStages: ResumeStages
  /** How late the proxy's event loop came back to a 1 ms timer, over the window. */
  proxyLoopDelayP50Ms: number | null
  proxyLoopDelayP99Ms: number | null
  proxyLoopDelayMaxMs: number | null
  proxyGc: GcFigures
  /** Proxy CPU over the window, in percent of one core. */
  proxyCpuPercent: number
  /** The load generator's own loop delay: when it is late, latency is inflated on the client's side. */
  clientLoopDelayP99Ms: number | null
}

/** The upstream directly, the memory store in one process, the Redis store in several. */
export type ReplicasPeer = Extract<PeerName, 'direct' | 'plugin' | 'plugin-redis'>

export interface ReplicasFigures {
  peer: ReplicasPeer
  /** Processes the clients move between: 1 for direct and the memory store. */
  replicas: number
  clients: number
  eventsPerSecPerClient: number
  eventBytes: number
  warmupSeconds: number
  seconds: number
  /** Events read over the window, over clients × rate × window. */
  deliveredShare: number
  /** Over the whole run; null for direct, whose upstream does not replay the time away. */
  lost: number | null
  duplicated: number | null
  /** Live events, from the upstream writing one to the client reading it, over the window. */
  latencyP50Ms: number | null
  latencyP99Ms: number | null
  latencyMaxMs: number | null
  resumeP99Ms: number | null
  /** Inside the proxies, the worst replica's p99: waiting to be accepted; from the request to the response head. */
  resumeAcceptWaitP99Ms: number | null
  resumeToHeadP99Ms: number | null
  resumes: number
  unrecoverable: Record<string, number>
  /** Times over the window a client read nothing for 5 s or more. */
  stalls: number
  openFailures: number
  /** All proxy processes together, in percent of one core; null for direct. */
  proxyCpuPercent: number | null
  /** The Redis server's CPU over the window (INFO cpu), whoever used it: the bench's Redis is its own. */
  redisCpuPercent: number | null
  /** Every process on the machine together (/proc/stat), in percent of one core: how close the box was to its cores. */
  machineBusyPercent: number | null
  /** The worst of the proxy processes. */
  proxyLoopDelayP99Ms: number | null
}

export interface RunInfo {
  mode: 'full' | 'quick'
  runsPerFigure: number
  scenarios: string[]
  skippedPeers: Array<{ name: PeerName, reason: string }>
  startedAt: string
  wallSeconds: number
  /** The machine's 1-minute load average at the end: with machine.loadAverage1m, how busy it was besides the bench. */
  loadAverage1mEnd: number
}

export interface TargetCheck {
  target: string
  goal: string
  measured: string
  status: 'met' | 'missed' | 'not measured'
}
