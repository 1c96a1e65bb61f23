import { PEER_NAMES } from '../peers.js'
import { findRow, fullSpeedRatios } from './ratios.js'
import type { BenchResults, CaseRatio, ChurnFigures, ReplicasFigures, TargetCheck, ThroughputRow } from './results.js'

/** The run as markdown: the throughput table, a section per other scenario, the targets. */
export function renderMarkdown (results: BenchResults): string {
  return [
    heading(results),
    throughputSection(results.throughput),
    trackerSection(results),
    memorySection(results),
    reconnectSection(results),
    loadSection(results),
    churnSection(results.churn),
    replicasSection(results.replicas),
    targetsSection('Targets', results.targets),
    targetsSection('Scale-out targets', results.scalingTargets),
    notesSection(results.notes)
  ].filter((section) => section !== '').join('\n\n') + '\n'
}

function heading ({ machine, run }: BenchResults): string {
  const mode = run.mode === 'quick' ? 'quick (smoke) run' : 'full run'
  return [
    `## Benchmark results: ${mode}, ${run.startedAt}`,
    '',
    `Machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGb} GB; Node ${machine.node}; ${machine.os}` +
      `${machine.nginx === null ? '' : `; ${machine.nginx}`}${machine.redis === null ? '' : `; ${machine.redis}`}. Load average (1 min) at the start and the end of the run: ${machine.loadAverage1m}, ${run.loadAverage1mEnd}. ` +
      `Throughput figures: median of ${run.runsPerFigure} run${run.runsPerFigure === 1 ? '' : 's'}. Wall time: ${Math.round(run.wallSeconds)} s.`
  ].join('\n')
}

function throughputSection (rows: readonly ThroughputRow[]): string {
  if (rows.length === 0) return ''
  const peerOrder = (row: ThroughputRow): number => PEER_NAMES.indexOf(row.scenario)
  const lines = [
    '### Throughput and latency',
    '',
    'Latency: from the upstream writing an event to the client reading it. Proxy CPU: the proxy process\'s user + system time over the events delivered (`direct` has no proxy). ' +
      'Loop delay: how late the proxy\'s event loop came back to a 1 ms timer over the window, p99 (Node proxies only).',
    '',
    '| peer | clients | event | offered per conn | delivered events/s | p50 ms | p99 ms | proxy CPU µs/event | proxy loop delay p99 ms |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|'
  ]
  let previousCase = ''
  for (const row of [...rows].sort((left, right) => caseKey(left).localeCompare(caseKey(right)) || peerOrder(left) - peerOrder(right))) {
    const thisCase = caseKey(row)
    if (previousCase !== '' && thisCase !== previousCase) lines.push('| | | | | | | | | |')
    previousCase = thisCase
    lines.push(`| ${row.scenario} | ${row.clients} | ${row.eventBytes} B | ${row.offeredPerConn === 0 ? 'full speed' : `${row.offeredPerConn}/s`} | ` +
      `${formatRate(row.eventsPerSec)}${row.streamsOpened < row.clients ? ` (${row.streamsOpened} streams open)` : ''} | ` +
      `${fixed(row.p50Ms, 2)} | ${fixed(row.p99Ms, 2)} | ${fixed(row.cpuUsPerEvent, 2)} | ${fixed(row.proxyLoopDelayP99Ms, 1)} |`)
  }
  const ratios = [
    ratioLine('plugin / reply-from at full speed', fullSpeedRatios(rows, 'plugin', 'reply-from')),
    ratioLine('plugin / plugin-bare at full speed', fullSpeedRatios(rows, 'plugin', 'plugin-bare')),
    ratioLine('plugin-redis / plugin at full speed', fullSpeedRatios(rows, 'plugin-redis', 'plugin')),
    redisCpuLine(rows)
  ].filter((line) => line !== '')
  if (ratios.length > 0) lines.push('', ...ratios)
  return lines.join('\n')
}

/** What the Redis store costs the proxy in CPU per event, case by case, against the memory store measured in the same run. */
function redisCpuLine (rows: readonly ThroughputRow[]): string {
  const parts: string[] = []
  for (const row of rows) {
    if (row.scenario !== 'plugin-redis') continue
    const memory = findRow(rows, 'plugin', row.clients, row.eventBytes, row.offeredPerConn)
    if (memory?.cpuUsPerEvent == null || row.cpuUsPerEvent === null || memory.cpuUsPerEvent === 0) continue
    const rate = row.offeredPerConn === 0 ? 'full speed' : `${row.offeredPerConn}/s`
    parts.push(`${row.clients} × ${row.eventBytes} B ${rate} ${(row.cpuUsPerEvent / memory.cpuUsPerEvent).toFixed(2)}`)
  }
  return parts.length === 0 ? '' : `proxy CPU per event, plugin-redis / plugin: ${parts.join(', ')}.  `
}

/** Sorts full speed before fixed rates, small events before large, few clients before many. */
function caseKey (row: ThroughputRow): string {
  return [row.offeredPerConn === 0 ? 0 : 1, row.eventBytes, row.clients, row.offeredPerConn].map((part) => String(part).padStart(8, '0')).join('/')
}

function ratioLine (label: string, ratios: readonly CaseRatio[]): string {
  if (ratios.length === 0) return ''
  return `${label}: ${ratios.map((entry) => `${entry.clients} × ${entry.eventBytes} B ${fixed(entry.ratio, 2)}`).join(', ')}.  `
}

function trackerSection ({ trackerOverhead }: BenchResults): string {
  if (trackerOverhead.opsPerSec === null && trackerOverhead.ratio === null) return ''
  return [
    '### Tracking overhead',
    '',
    '| what | figure |',
    '|---|---:|',
    `| dedupe tracker, per event (remember) | ${formatOps(trackerOverhead.dedupeOpsPerSec)} |`,
    `| history append, one event | ${formatOps(trackerOverhead.historyAppendOpsPerSec)} |`,
    `| both, per event | ${formatOps(trackerOverhead.opsPerSec)} |`,
    `| throughput plugin / plugin-bare, full speed (geometric mean) | ${fixed(trackerOverhead.ratio, 2)} |`,
    `| proxy CPU per event plugin-bare / plugin, full speed (geometric mean) | ${fixed(trackerOverhead.cpuRatio, 2)} |`
  ].join('\n')
}

function memorySection ({ memory }: BenchResults): string {
  if (memory.bytesPer1000Replay === null && memory.rss1000Sessions === null) return ''
  return [
    '### Memory',
    '',
    '| what | figure |',
    '|---|---:|',
    `| history per 1000 events, replay (${memory.eventBytes} B events): heap + external | ${formatKb(memory.heapBytesPer1000Replay)} + ${formatKb(memory.externalBytesPer1000Replay)} = ${formatKb(memory.bytesPer1000Replay)} |`,
    `| history per 1000 events, ids only: heap + external | ${formatKb(memory.heapBytesPer1000IdsOnly)} + ${formatKb(memory.externalBytesPer1000IdsOnly)} = ${formatKb(memory.bytesPer1000IdsOnly)} |`,
    `| proxy RSS, no session | ${fixed(memory.rssNoSessions, 1)} MB |`,
    `| proxy RSS, 1000 idle sessions | ${fixed(memory.rss1000Sessions, 1)} MB |`,
    `| proxy RSS, 10000 idle sessions | ${fixed(memory.rss10000Sessions, 1)} MB |`
  ].join('\n')
}

function reconnectSection ({ reconnect }: BenchResults): string {
  if (reconnect.upstreamP50Ms === null && reconnect.clientResumeP50Ms === null) return ''
  return [
    '### Reconnection',
    '',
    '| what | p50 ms | p99 ms |',
    '|---|---:|---:|',
    `| upstream closes, first event of the new connection at the client (${reconnect.upstreamDrops} drops) | ${fixed(reconnect.upstreamP50Ms, 2)} | ${fixed(reconnect.upstreamP99Ms, 2)} |`,
    `| client resumes with Last-Event-ID, first replayed event (${reconnect.clientResumes} resumes, ${reconnect.clientResumesInOrder} recovered in order) | ${fixed(reconnect.clientResumeP50Ms, 2)} | ${fixed(reconnect.clientResumeP99Ms, 2)} |`,
    ...redisReconnectRows(reconnect.redisStore)
  ].join('\n')
}

function redisReconnectRows (redis: BenchResults['reconnect']['redisStore']): string[] {
  if (redis === null) return []
  return [
    `| Redis store: upstream closes, first event of the new connection at the client (${redis.upstreamDrops} drops) | ${fixed(redis.upstreamP50Ms, 2)} | ${fixed(redis.upstreamP99Ms, 2)} |`,
    `| Redis store: client resumes on the replica that reads the upstream (${redis.sameReplicaResumes} resumes, ${redis.sameReplicaResumesInOrder} recovered in order) | ${fixed(redis.sameReplicaResumeP50Ms, 2)} | ${fixed(redis.sameReplicaResumeP99Ms, 2)} |`,
    `| Redis store: client resumes on another replica, replay then live from Redis (${redis.otherReplicaResumes} resumes, ${redis.otherReplicaResumesInOrder} recovered in order) | ${fixed(redis.otherReplicaResumeP50Ms, 2)} | ${fixed(redis.otherReplicaResumeP99Ms, 2)} |`
  ]
}

function loadSection ({ load }: BenchResults): string {
  if (load.lost === null) return ''
  const unrecoverable = Object.entries(load.unrecoverable).map(([reason, count]) => `${reason} ${count}`).join(', ')
  return [
    '### Load under churn',
    '',
    '| what | figure |',
    '|---|---:|',
    `| clients × events/s, seconds | ${load.clients} × ${load.eventsPerSecPerClient}, ${load.seconds} s |`,
    `| events delivered | ${load.eventsDelivered ?? '-'} (${formatRate(load.deliveredPerSec)}/s) |`,
    `| lost / duplicated | ${load.lost} / ${load.duplicated ?? '-'} |`,
    `| cuts (mid-event) / resumes / unrecoverable | ${load.cuts ?? '-'} (${load.midEventCuts ?? '-'}) / ${load.resumes ?? '-'} / ${unrecoverable === '' ? 0 : unrecoverable} |`,
    `| streams the proxy ended | ${load.serverCloses ?? '-'} |`,
    `| proxy CPU | ${fixed(load.cpuUsPerEvent, 2)} µs/event, ${fixed(load.cpuPercent, 0)}% of a core |`,
    `| proxy RSS: start / mean of the third quarter / mean of the last quarter | ${fixed(load.rssStartMb, 1)} / ${fixed(load.rssHalfMb, 1)} / ${fixed(load.rssEndMb, 1)} MB (${fixed(load.rssGrowthSecondHalfPct, 1)}% over the second half) |`,
    `| proxy RSS as sampled: lowest / highest | ${fixed(lowest(load.rssSamplesMb), 0)} / ${fixed(highest(load.rssSamplesMb), 0)} MB |`,
    `| proxy heap after a forced GC, start and each tenth of the run | ${load.heapAfterGcMb.map((value) => value.toFixed(0)).join(', ')} MB (${fixed(load.heapGrowthSecondHalfPct, 1)}% over the second half) |`,
    `| upstream backlog at the end | ${formatKb(load.upstreamBacklogBytes)} |`
  ].join('\n')
}

function churnSection (rows: readonly ChurnFigures[]): string {
  if (rows.length === 0) return ''
  const first = rows[0] as ChurnFigures
  const column = (label: string, cell: (row: ChurnFigures) => string): string => `| ${label} | ${rows.map(cell).join(' | ')} |`
  const gc = (row: ChurnFigures, kind: 'minor' | 'major'): string => {
    const figures = row.proxyGc[kind]
    const perSecond = figures.count / row.seconds
    return figures.count === 0 ? 'none' : `${figures.count} (${perSecond.toFixed(1)}/s), mean ${(figures.totalMs / figures.count).toFixed(1)} ms, max ${figures.maxMs.toFixed(1)} ms`
  }
  return [
    '### Churn',
    '',
    `${first.clients} streams × ${first.eventsPerSecPerClient} events/s of ${first.eventBytes} B; each client cuts its connection after ${first.connectedMs[0] / 1000}–${first.connectedMs[1] / 1000} s ` +
      `(evenly spread) and resumes with Last-Event-ID. Counts cover the whole run; latency (live events only), loop delay and GC cover ${first.seconds} s after a ${first.warmupSeconds} s warm-up.`,
    '',
    `| what | ${rows.map((row) => row.peer).join(' | ')} |`,
    `|---|${rows.map(() => '---:').join('|')}|`,
    column('events delivered', (row) => String(row.eventsDelivered)),
    column('lost / duplicated', (row) => `${row.lost} / ${row.duplicated}`),
    column('cuts (mid-event) / resumes (with upstream gaps) / unrecoverable', (row) => `${row.cuts} (${row.midEventCuts}) / ${row.resumes} (${row.resumesWithUpstreamGaps}) / ${formatReasons(row.unrecoverable)}`),
    column('streams the proxy ended / failed opens', (row) => `${row.serverCloses} / ${row.openFailures}`),
    column('latency p50 / p99 / max ms', (row) => `${fixed(row.latencyP50Ms, 1)} / ${fixed(row.latencyP99Ms, 1)} / ${fixed(row.latencyMaxMs, 0)}`),
    column('resume: GET to response head, p50 / p99 / max ms', (row) => `${fixed(row.resumeP50Ms, 1)} / ${fixed(row.resumeP99Ms, 1)} / ${fixed(row.resumeMaxMs, 0)}`),
    column('resume in the proxy, p50 / p99 ms: waiting to be accepted; then to be parsed; then for the head', (row) => {
      const stages = row.resumeStages
      return `${fixed(stages.acceptWaitP50Ms, 1)} / ${fixed(stages.acceptWaitP99Ms, 1)}; ${fixed(stages.toRequestP50Ms, 1)} / ${fixed(stages.toRequestP99Ms, 1)}; ${fixed(stages.toHeadP50Ms, 1)} / ${fixed(stages.toHeadP99Ms, 1)}`
    }),
    column('proxy event-loop delay p50 / p99 / max ms', (row) => `${fixed(row.proxyLoopDelayP50Ms, 1)} / ${fixed(row.proxyLoopDelayP99Ms, 1)} / ${fixed(row.proxyLoopDelayMaxMs, 0)}`),
    column('proxy scavenges', (row) => gc(row, 'minor')),
    column('proxy mark-compacts', (row) => gc(row, 'major')),
    column('proxy CPU', (row) => `${row.proxyCpuPercent.toFixed(0)}% of a core`),
    column('load generator\'s loop delay p99 ms', (row) => fixed(row.clientLoopDelayP99Ms, 1))
  ].join('\n')
}

function percent (value: number | null): string {
  return value === null ? '—' : `${value.toFixed(0)}%`
}

function formatReasons (reasons: Record<string, number>): string {
  const parts = Object.entries(reasons).map(([reason, count]) => `${reason} ${count}`)
  return parts.length === 0 ? '0' : parts.join(', ')
}

function replicasSection (rows: readonly ReplicasFigures[]): string {
  if (rows.length === 0) return ''
  const first = rows[0] as ReplicasFigures
  const front = (row: ReplicasFigures): string => row.peer === 'direct' ? 'direct' : row.peer === 'plugin' ? 'memory store, 1 process' : `Redis store, ${row.replicas} replicas`
  return [
    '### Clients moving between replicas',
    '',
    `Each client reads ${first.eventsPerSecPerClient} events/s of ${first.eventBytes} B, cuts its connection after 2–7 s and resumes with Last-Event-ID: on the other replica ` +
      'for the Redis store, on the same process for the memory store; direct goes to the upstream, which starts again after the id it is given (the floor). ' +
      `Latency of live events over the window after a ${first.warmupSeconds} s warm-up; lost and duplicated over the whole run; stalls: a client reading nothing for 5 s. ` +
      'CPU in percent of one core; Redis and the whole machine include the upstream and the load generator\'s share where they use it.',
    '',
    '| clients | front | window s | delivered | lost / dup | p50 ms | p99 ms | max ms | resume p99 ms (accept wait; request to head) | resumes / unrecoverable | stalls | CPU: proxies; Redis; whole machine | loop delay p99 ms |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---:|',
    ...rows.map((row) => `| ${row.clients} | ${front(row)} | ${row.seconds} | ${(row.deliveredShare * 100).toFixed(1)}% | ` +
      `${row.lost === null ? '—' : `${row.lost} / ${row.duplicated ?? '-'}`} | ${fixed(row.latencyP50Ms, 1)} | ${fixed(row.latencyP99Ms, 1)} | ${fixed(row.latencyMaxMs, 0)} | ` +
      `${fixed(row.resumeP99Ms, 1)} (${fixed(row.resumeAcceptWaitP99Ms, 1)}; ${fixed(row.resumeToHeadP99Ms, 1)}) | ${row.resumes} / ${formatReasons(row.unrecoverable)} | ${row.stalls} | ` +
      `${percent(row.proxyCpuPercent)}; ${percent(row.redisCpuPercent)}; ${percent(row.machineBusyPercent)} | ${fixed(row.proxyLoopDelayP99Ms, 1)} |`)
  ].join('\n')
}

function targetsSection (title: string, targets: readonly TargetCheck[]): string {
  if (targets.every((check) => check.status === 'not measured')) return ''
  const met = targets.filter((check) => check.status === 'met').length
  const measured = targets.filter((check) => check.status !== 'not measured').length
  return [
    `### ${title}`,
    '',
    `${met} of ${measured} measured targets met.`,
    '',
    '| target | goal | measured | status |',
    '|---|---|---|---|',
    ...targets.map((check) => `| ${check.target} | ${check.goal} | ${check.measured} | ${check.status === 'met' ? '**met**' : check.status} |`)
  ].join('\n')
}

function notesSection (notes: readonly string[]): string {
  if (notes.length === 0) return ''
  return ['### Notes', '', ...notes.map((note) => `- ${note}`)].join('\n')
}

function lowest (values: readonly number[]): number | null {
  return values.length === 0 ? null : Math.min(...values)
}

function highest (values: readonly number[]): number | null {
  return values.length === 0 ? null : Math.max(...values)
}

function fixed (value: number | null, digits: number): string {
  return value === null ? '-' : value.toFixed(digits)
}

function formatRate (perSecond: number | null): string {
  if (perSecond === null) return '-'
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)}M`
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)}k`
  return perSecond.toFixed(0)
}

function formatOps (perSecond: number | null): string {
  return perSecond === null ? '-' : `${(perSecond / 1e6).toFixed(2)}M/s`
}

function formatKb (bytes: number | null): string {
  return bytes === null ? '-' : `${(bytes / 1024).toFixed(1)} KB`
}
