import { SMALL_EVENT, type SuitePlan } from '../plan.js'
import { progress } from '../progress.js'
import { MCP_PATH, sessionsOptions } from '../proxy-options.js'
import { originOf, startProxy } from '../proxy-process.js'
import type { MemoryFigures } from '../report/results.js'
import type { Testbed } from '../testbed.js'
import { startTrackerProbe } from '../tracker-probe-process.js'
import type { HistoryCost } from '../tracker/heap-cost.js'

const MB = 1024 * 1024
const SESSION_OPENERS = 32

/**
 * Scenario 3. Memory held per 1000 tracked events, on the V8 heap and off it
 * (external), replay and ids-only, each in a fresh process with forced GC; then the RSS of a proxy holding 1000 and 10000
 * idle MCP sessions.
 */
export async function runMemory (testbed: Testbed, plan: SuitePlan['memory']): Promise<MemoryFigures> {
  const replay = await historyCostPer1000(plan.heapEvents, true)
  const idsOnly = await historyCostPer1000(plan.heapEvents, false)
  progress(`memory: per 1000 events, with replay ${formatKb(replay.heap)} heap + ${formatKb(replay.external)} external, ` +
    `ids only ${formatKb(idsOnly.heap)} heap + ${formatKb(idsOnly.external)} external`)
  const rss = await idleSessionsRss(testbed, plan.sessionCounts)
  progress(`memory: proxy RSS ${rss.none.toFixed(1)} MB with no session, ${rss.few.toFixed(1)} MB with ${plan.sessionCounts[0]}, ${rss.many.toFixed(1)} MB with ${plan.sessionCounts[1]}`)
  return {
    bytesPer1000Replay: replay.heap + replay.external,
    bytesPer1000IdsOnly: idsOnly.heap + idsOnly.external,
    heapBytesPer1000Replay: replay.heap,
    heapBytesPer1000IdsOnly: idsOnly.heap,
    externalBytesPer1000Replay: replay.external,
    externalBytesPer1000IdsOnly: idsOnly.external,
    rss1000Sessions: rss.few,
    rss10000Sessions: rss.many,
    rssNoSessions: rss.none,
    eventBytes: SMALL_EVENT,
    trackedEvents: plan.heapEvents
  }
}

async function historyCostPer1000 (events: number, replay: boolean): Promise<HistoryCost> {
  const probe = await startTrackerProbe(replay ? 'heap-probe-replay' : 'heap-probe-ids-only')
  try {
    return await probe.call('historyCostPer1000', events, SMALL_EVENT, replay)
  } finally {
    await probe.stop()
  }
}

async function idleSessionsRss (testbed: Testbed, [few, many]: readonly [number, number]): Promise<{ none: number, few: number, many: number }> {
  const proxy = await startProxy({ kind: 'plugin', options: sessionsOptions(testbed.upstreamOrigin) }, 'sessions-proxy')
  const url = `${originOf(proxy)}${MCP_PATH}`
  const rssMb = async (): Promise<number> => (await proxy.call('sampleAfterGc')).rssBytes / MB
  try {
    const none = await rssMb()
    await openSessions(testbed, url, few)
    const fewRss = await rssMb()
    await openSessions(testbed, url, many - few)
    return { none, few: fewRss, many: await rssMb() }
  } finally {
    await proxy.stop()
  }
}

async function openSessions (testbed: Testbed, url: string, count: number): Promise<void> {
  const result = await testbed.client.call('openSessions', url, count, SESSION_OPENERS)
  if (result.failed > 0) throw new Error(`${result.failed} of ${count} initialize requests failed`)
}

function formatKb (bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KB`
}
