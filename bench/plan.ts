import type { CliOptions } from './cli.js'
import type { PeerName } from './peers.js'

export interface ThroughputCase {
  readonly clients: number
  readonly eventBytes: number
  /** Events per second per connection; 0 is full speed. */
  readonly offeredPerConn: number
}

/** How much of everything a run does: the full suite, or the quick smoke version. */
export interface SuitePlan {
  readonly mode: 'full' | 'quick'
  readonly throughput: {
    readonly cases: readonly ThroughputCase[]
    readonly peers: readonly PeerName[]
    readonly runs: number
    readonly warmupMs: number
    readonly windowMs: number
    /** Opening ends when no stream opened for this long: a peer that queues streams is measured with those it opened. */
    readonly openStallMs: number
  }
  readonly tracker: { readonly opDurationMs: number }
  readonly memory: { readonly heapEvents: number, readonly sessionCounts: readonly [number, number] }
  readonly reconnect: { readonly drops: number, readonly dropAfterMs: number, readonly resumes: number, readonly awayMs: number }
  readonly load: {
    readonly clients: number
    readonly eventsPerSecPerClient: number
    readonly seconds: number
    readonly sampleEveryMs: number
    readonly meanConnectedMs: number
    readonly maxAwayMs: number
    readonly midEventShare: number
  }
  readonly churn: ClientsComingAndGoing & { readonly clients: number, readonly seconds: number }
  readonly replicas: ClientsComingAndGoing & {
    /** Each client count is measured on every front in turn, for its own window. */
    readonly cases: ReadonlyArray<{ readonly clients: number, readonly seconds: number }>
    readonly replicas: number
  }
}

/** Clients on slow streams that cut their connections and resume with Last-Event-ID. */
export interface ClientsComingAndGoing {
  readonly eventsPerSecPerClient: number
  readonly eventBytes: number
  /** Each client stays connected for a time spread evenly between these, then cuts and resumes. */
  readonly connectedMinMs: number
  readonly connectedMaxMs: number
  readonly maxAwayMs: number
  readonly midEventShare: number
  /** Before the measured window: the clients' first connections, the JIT. */
  readonly warmupSeconds: number
}

export const SMALL_EVENT = 200
export const LARGE_EVENT = 2048

/** Full speed with 1, 100 and 1000 clients, and the two fixed rates, at each size; quick leaves out the fixed rates at 2 KB. */
function throughputCases (quick: boolean, only: readonly ThroughputCase[] | undefined): ThroughputCase[] {
  if (only !== undefined) return [...only]
  return [SMALL_EVENT, LARGE_EVENT].flatMap((eventBytes) => [
    { clients: 1, eventBytes, offeredPerConn: 0 },
    { clients: 100, eventBytes, offeredPerConn: 0 },
    { clients: 1000, eventBytes, offeredPerConn: 0 },
    ...quick && eventBytes === LARGE_EVENT
      ? []
      : [{ clients: 100, eventBytes, offeredPerConn: 1000 }, { clients: 1000, eventBytes, offeredPerConn: 50 }]
  ])
}

export function suitePlan (options: CliOptions): SuitePlan {
  const quick = options.quick
  // 100 to 350 events at 50/s, then a cut (half of them in the middle of an event) and a resume.
  const comingAndGoing: ClientsComingAndGoing = {
    eventsPerSecPerClient: 50,
    eventBytes: SMALL_EVENT,
    connectedMinMs: 2000,
    connectedMaxMs: 7000,
    maxAwayMs: 100,
    midEventShare: 0.5,
    warmupSeconds: quick ? 5 : 10
  }
  return {
    mode: quick ? 'quick' : 'full',
    throughput: {
      cases: throughputCases(quick, options.cases),
      peers: options.peers,
      runs: options.runs ?? (quick ? 1 : 3),
      warmupMs: quick ? 250 : 1000,
      windowMs: options.windowSeconds === undefined ? (quick ? 500 : 2500) : options.windowSeconds * 1000,
      openStallMs: quick ? 500 : 1000
    },
    tracker: { opDurationMs: quick ? 500 : 2000 },
    memory: { heapEvents: quick ? 50_000 : 200_000, sessionCounts: [1000, 10_000] },
    reconnect: { drops: quick ? 100 : 300, dropAfterMs: 10, resumes: quick ? 100 : 300, awayMs: 10 },
    load: {
      clients: 100,
      eventsPerSecPerClient: 1000,
      seconds: options.loadSeconds ?? (quick ? 60 : 600),
      sampleEveryMs: quick ? 1000 : 5000,
      meanConnectedMs: 2000,
      maxAwayMs: 500,
      midEventShare: 0.5
    },
    churn: { ...comingAndGoing, clients: 600, seconds: options.churnSeconds ?? (quick ? 30 : 120) },
    replicas: {
      ...comingAndGoing,
      cases: quick ? [{ clients: 200, seconds: 10 }] : [{ clients: 200, seconds: 30 }, { clients: 600, seconds: 25 }],
      replicas: 2
    }
  }
}
