import { PEER_NAMES, type PeerName } from './peers.js'
import type { ThroughputCase } from './plan.js'

/** Every peer but plugin-redis, which writes to a Redis: it runs only when `--peers` names it. */
export const DEFAULT_PEERS: readonly PeerName[] = PEER_NAMES.filter((name) => name !== 'plugin-redis')

export const SCENARIO_NAMES = ['throughput', 'tracker', 'memory', 'reconnect', 'load', 'churn', 'replicas'] as const
export type ScenarioName = typeof SCENARIO_NAMES[number]

export interface CliOptions {
  readonly quick: boolean
  readonly jsonPath: string | undefined
  readonly scenarios: readonly ScenarioName[]
  readonly peers: readonly PeerName[]
  readonly runs: number | undefined
  readonly loadSeconds: number | undefined
  readonly churnSeconds: number | undefined
  /** The throughput measurement window, in place of the plan's. */
  readonly windowSeconds: number | undefined
  /** Throughput cases to run instead of the plan's. */
  readonly cases: readonly ThroughputCase[] | undefined
  /** Node options for every proxy process, e.g. --trace-gc --cpu-prof. */
  readonly proxyNodeArgs: readonly string[]
  readonly proxyOutputDir: string
}

export const DEFAULT_PROXY_OUTPUT_DIR = 'bench/results/proxy'

export const USAGE = `npm run bench -- [options]

  --quick              the smoke version (about 3 minutes): shorter windows, one run per figure, a 60 s load
  --json FILE          also write the figures as JSON
  --only LIST          run only these scenarios, comma-separated: ${SCENARIO_NAMES.join(', ')}
  --peers LIST         throughput peers, comma-separated: ${PEER_NAMES.join(', ')}
                       (default: all but plugin-redis). plugin-redis writes to the Redis 7.0+ at $BENCH_REDIS_URL
                       (default redis://127.0.0.1:6379), under bench:<uuid>: keys it deletes; the reconnect and
                       churn scenarios then also run through the Redis store. Without a Redis it is skipped, with a note
  --runs N             runs per throughput figure (default: 3, quick: 1)
  --load-seconds N     length of the load scenario (default: 600, quick: 60)
  --churn-seconds N    measured window of the churn scenario, after its warm-up (default: 120, quick: 30)
  --window-seconds N   throughput measurement window (default: 2.5, quick: 0.5); longer for profiles
  --cases LIST         throughput cases to run, comma-separated, each CLIENTSxBYTES@RATE (RATE 0: full speed),
                       e.g. 1000x200@50
  --proxy-node-args A  Node options for every proxy process, in one argument, e.g.
                       "--trace-gc --cpu-prof --cpu-prof-dir=bench/results/proxy"; each proxy's stdout then
                       goes to a file of its own in --proxy-output
  --proxy-output DIR   where those files go (default: ${DEFAULT_PROXY_OUTPUT_DIR})
  --help`

export function parseArguments (argv: readonly string[]): CliOptions | 'help' {
  let quick = false
  let jsonPath: string | undefined
  let scenarios: readonly ScenarioName[] = SCENARIO_NAMES
  let peers: readonly PeerName[] = DEFAULT_PEERS
  let runs: number | undefined
  let loadSeconds: number | undefined
  let churnSeconds: number | undefined
  let windowSeconds: number | undefined
  let cases: ThroughputCase[] | undefined
  let proxyNodeArgs: string[] = []
  let proxyOutputDir = DEFAULT_PROXY_OUTPUT_DIR
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index]
    const value = (): string => {
      const next = argv[++index]
      if (next === undefined) throw new Error(`${String(argument)} needs a value`)
      return next
    }
    switch (argument) {
      case '--quick': quick = true; break
      case '--json': jsonPath = value(); break
      case '--only': scenarios = listOf(value(), SCENARIO_NAMES, '--only'); break
      case '--peers': peers = listOf(value(), PEER_NAMES, '--peers'); break
      case '--runs': runs = positiveInteger(value(), '--runs'); break
      case '--load-seconds': loadSeconds = positiveInteger(value(), '--load-seconds'); break
      case '--churn-seconds': churnSeconds = positiveInteger(value(), '--churn-seconds'); break
      case '--window-seconds': windowSeconds = positiveInteger(value(), '--window-seconds'); break
      case '--cases': cases = value().split(',').filter((text) => text.trim() !== '').map(parseCase); break
      case '--proxy-node-args': proxyNodeArgs = value().split(/\s+/).filter((text) => text !== ''); break
      case '--proxy-output': proxyOutputDir = value(); break
      case '--help': case '-h': return 'help'
      default: throw new Error(`unknown argument ${String(argument)}\n\n${USAGE}`)
    }
  }
  return { quick, jsonPath, scenarios, peers, runs, loadSeconds, churnSeconds, windowSeconds, cases, proxyNodeArgs, proxyOutputDir }
}

function parseCase (text: string): ThroughputCase {
  const match = /^\s*(\d+)x(\d+)@(\d+)\s*$/.exec(text)
  if (match === null) throw new Error(`--cases: ${text} is not CLIENTSxBYTES@RATE, e.g. 1000x200@50`)
  const [clients, eventBytes, offeredPerConn] = [match[1], match[2], match[3]].map(Number) as [number, number, number]
  if (clients < 1 || eventBytes < 1) throw new Error(`--cases: ${text} needs at least one client and one byte`)
  return { clients, eventBytes, offeredPerConn }
}

function listOf<Name extends string> (text: string, allowed: readonly Name[], flag: string): Name[] {
  const names = text.split(',').map((name) => name.trim()).filter((name) => name !== '')
  for (const name of names) {
    if (!(allowed as readonly string[]).includes(name)) throw new Error(`${flag}: unknown ${name}; one of ${allowed.join(', ')}`)
  }
  // Checked against `allowed` just above.
  return names as Name[]
}

function positiveInteger (text: string, flag: string): number {
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${flag}: ${text} is not a positive integer`)
  return value
}
