/**
 * `npm run bench`: starts the upstream and the load generator, runs the scenarios,
 * prints the markdown report, and writes the JSON with --json.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { dirname } from 'node:path'
import { parseArguments, USAGE, type ScenarioName } from './cli.js'
import { describeMachine } from './machine.js'
import { SMALL_EVENT, suitePlan, type SuitePlan } from './plan.js'
import { progress } from './progress.js'
import { renderMarkdown } from './report/markdown.js'
import { fullSpeedCpuRatios, fullSpeedRatios, geometricMean } from './report/ratios.js'
import type { BenchResults, LoadFigures, MemoryFigures, ReconnectFigures } from './report/results.js'
import { checkScalingTargets } from './report/scaling-targets.js'
import { checkTargets } from './report/targets.js'
import { configureProxyLaunch } from './proxy-process.js'
import { runChurn } from './scenarios/churn.js'
import { runLoad } from './scenarios/load.js'
import { runMemory } from './scenarios/memory.js'
import { runReplicas } from './scenarios/replicas.js'
import { runReconnect } from './scenarios/reconnect.js'
import { runThroughput } from './scenarios/throughput.js'
import { runTrackerOverhead, type TrackerOpFigures } from './scenarios/tracker-overhead.js'
import { startTestbed, type Testbed } from './testbed.js'

type Figures = Omit<BenchResults, 'targets' | 'scalingTargets'>

async function main (): Promise<number> {
  const options = parseArguments(process.argv.slice(2))
  if (options === 'help') {
    console.log(USAGE)
    return 0
  }
  const plan = suitePlan(options)
  configureProxyLaunch({ nodeArgs: options.proxyNodeArgs, outputDir: options.proxyOutputDir })
  const startedAt = new Date()
  const wallStart = performance.now()
  const figures = emptyFigures(plan, options.scenarios, startedAt)
  progress(`${plan.mode} run: ${options.scenarios.join(', ')}`)
  const testbed = await startTestbed()
  let failed = false
  try {
    for (const scenario of options.scenarios) {
      try {
        await runScenario(scenario, testbed, plan, figures)
      } catch (error) {
        failed = true
        const message = error instanceof Error ? error.message : String(error)
        progress(`${scenario} failed: ${message}`)
        figures.notes.push(`${scenario} failed: ${message.split('\n')[0] ?? ''}`)
      }
    }
  } finally {
    await testbed.stop()
  }
  figures.run.wallSeconds = (performance.now() - wallStart) / 1000
  figures.run.loadAverage1mEnd = Number((loadavg()[0] ?? 0).toFixed(2))
  const results: BenchResults = { ...figures, targets: checkTargets(figures), scalingTargets: checkScalingTargets(figures) }
  process.stdout.write(renderMarkdown(results))
  if (options.jsonPath !== undefined) {
    await mkdir(dirname(options.jsonPath), { recursive: true })
    await writeFile(options.jsonPath, JSON.stringify(results, null, 2) + '\n')
    progress(`wrote ${options.jsonPath}`)
  }
  return failed ? 1 : 0
}

async function runScenario (scenario: ScenarioName, testbed: Testbed, plan: SuitePlan, figures: Figures): Promise<void> {
  switch (scenario) {
    case 'throughput': {
      const outcome = await runThroughput(testbed, plan.throughput)
      figures.throughput = outcome.rows
      figures.machine.nginx = outcome.nginxVersion
      figures.machine.redis = outcome.redisVersion ?? figures.machine.redis
      figures.run.skippedPeers = outcome.skippedPeers
      figures.notes.push(...outcome.notes)
      const ratioByCase = fullSpeedRatios(outcome.rows, 'plugin', 'plugin-bare')
      figures.trackerOverhead.ratioByCase = ratioByCase
      figures.trackerOverhead.ratio = geometricMean(ratioByCase)
      figures.trackerOverhead.cpuRatio = geometricMean(fullSpeedCpuRatios(outcome.rows, 'plugin-bare', 'plugin'))
      break
    }
    case 'tracker':
      Object.assign(figures.trackerOverhead, await runTrackerOverhead(plan.tracker) satisfies TrackerOpFigures)
      break
    case 'memory':
      figures.memory = await runMemory(testbed, plan.memory)
      break
    case 'reconnect': {
      const outcome = await runReconnect(testbed, plan.reconnect, plan.throughput.peers)
      figures.reconnect = outcome.figures
      figures.machine.redis = outcome.redisVersion ?? figures.machine.redis
      figures.notes.push(...outcome.notes)
      break
    }
    case 'load':
      figures.load = await runLoad(testbed, plan.load)
      break
    case 'replicas': {
      const outcome = await runReplicas(testbed, plan.replicas)
      figures.replicas = outcome.rows
      figures.machine.redis = outcome.redisVersion ?? figures.machine.redis
      figures.notes.push(...outcome.notes)
      break
    }
    case 'churn': {
      const outcome = await runChurn(testbed, plan.churn, plan.throughput.peers)
      figures.churn = outcome.rows
      figures.machine.redis = outcome.redisVersion ?? figures.machine.redis
      figures.notes.push(...outcome.notes)
      break
    }
  }
}

/** Every key of the JSON contract is there even when its scenario did not run: null means not measured. */
function emptyFigures (plan: SuitePlan, scenarios: readonly ScenarioName[], startedAt: Date): Figures {
  const memory: MemoryFigures = {
    bytesPer1000Replay: null,
    bytesPer1000IdsOnly: null,
    heapBytesPer1000Replay: null,
    heapBytesPer1000IdsOnly: null,
    externalBytesPer1000Replay: null,
    externalBytesPer1000IdsOnly: null,
    rss1000Sessions: null,
    rss10000Sessions: null,
    rssNoSessions: null,
    eventBytes: SMALL_EVENT,
    trackedEvents: null
  }
  const reconnect: ReconnectFigures = { upstreamP50Ms: null, upstreamP99Ms: null, clientResumeP50Ms: null, clientResumeP99Ms: null, upstreamDrops: 0, clientResumes: 0, clientResumesInOrder: 0, redisStore: null }
  const load: LoadFigures = {
    clients: plan.load.clients,
    eventsPerSecPerClient: plan.load.eventsPerSecPerClient,
    seconds: 0,
    lost: null,
    duplicated: null,
    rssStartMb: null,
    rssEndMb: null,
    rssHalfMb: null,
    rssGrowthSecondHalfPct: null,
    heapGrowthSecondHalfPct: null,
    rssSamplesMb: [],
    rssAfterGcMb: [],
    heapAfterGcMb: [],
    eventsDelivered: null,
    deliveredPerSec: null,
    cpuUsPerEvent: null,
    cpuPercent: null,
    cuts: null,
    midEventCuts: null,
    resumes: null,
    unrecoverable: {},
    serverCloses: null,
    openFailures: null,
    upstreamBacklogBytes: null,
    historyMaxEvents: 0
  }
  return {
    machine: describeMachine(),
    throughput: [],
    trackerOverhead: { opsPerSec: null, ratio: null, cpuRatio: null, dedupeOpsPerSec: null, historyAppendOpsPerSec: null, ratioByCase: [] },
    memory,
    reconnect,
    load,
    churn: [],
    replicas: [],
    run: { mode: plan.mode, runsPerFigure: plan.throughput.runs, scenarios: [...scenarios], skippedPeers: [], startedAt: startedAt.toISOString(), wallSeconds: 0, loadAverage1mEnd: 0 },
    notes: []
  }
}

process.once('SIGINT', () => process.exit(130))
main().then((code) => { process.exitCode = code }, (error: unknown) => {
  console.error(error instanceof Error ? error.message : error)
  process.exitCode = 1
})
