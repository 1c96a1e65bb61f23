import { PEER_NAMES, type PeerName } from './peers.js'

/** Every peer but plugin-redis, which writes to a Redis: it runs only when `--peers` names it. */
export const DEFAULT_PEERS: readonly PeerName[] = PEER_NAMES.filter((name) => name !== 'plugin-redis')

export const SCENARIO_NAMES = ['throughput', 'tracker', 'memory', 'reconnect', 'load'] as const
export type ScenarioName = typeof SCENARIO_NAMES[number]

export interface CliOptions {
  readonly quick: boolean
  readonly jsonPath: string | undefined
  readonly scenarios: readonly ScenarioName[]
  readonly peers: readonly PeerName[]
  readonly runs: number | undefined
  readonly loadSeconds: number | undefined
}

export const USAGE = `npm run bench -- [options]

  --quick              the smoke version (under 3 minutes): shorter windows, one run per figure, a 60 s load
  --json FILE          also write the figures as JSON
  --only LIST          run only these scenarios, comma-separated: ${SCENARIO_NAMES.join(', ')}
  --peers LIST         throughput peers, comma-separated: ${PEER_NAMES.join(', ')}
                       (default: all but plugin-redis). plugin-redis writes to the Redis 7.0+ at $BENCH_REDIS_URL
                       (default redis://127.0.0.1:6379), under bench:<uuid>: keys it deletes; it also runs the
                       reconnect scenario through the Redis store. Without a Redis it is skipped, with a note
  --runs N             runs per throughput figure (default: 3, quick: 1)
  --load-seconds N     length of the load scenario (default: 600, quick: 60)
  --help`

export function parseArguments (argv: readonly string[]): CliOptions | 'help' {
  let quick = false
  let jsonPath: string | undefined
  let scenarios: readonly ScenarioName[] = SCENARIO_NAMES
  let peers: readonly PeerName[] = DEFAULT_PEERS
  let runs: number | undefined
  let loadSeconds: number | undefined
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
      case '--help': case '-h': return 'help'
      default: throw new Error(`unknown argument ${String(argument)}\n\n${USAGE}`)
    }
  }
  return { quick, jsonPath, scenarios, peers, runs, loadSeconds }
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
