import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import type { AddressInfo, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import { Agent } from 'undici'
import { mcpSseResilience, type McpSseResilienceOptions } from '../../lib/index.js'
import { CallGate, ChaosMcpClient } from './chaos-mcp-client.js'
import { ChaosSseClient } from './chaos-sse-client.js'
import { Prng, randomSeed } from './prng.js'
import { envNumber } from './chaos-env.js'
import { activeResources, metric, processListeners, resourcesAbove, scrape, settledHeapUsed, traceTimers } from './process-state.js'
import { UpstreamProcess } from './upstream-process.js'

/*
 * The chaos soak. `npm run test:chaos` runs the short form;
 * CHAOS_SECONDS=600 npm run test:chaos the long one. See docs/reliability.md.
 *
 * K clients on an sse route and on a streamable-http route, through the proxy
 * (in this process, so that it can be inspected), to upstreams in child processes
 * that are killed with SIGKILL and started again on the same port. Clients are
 * cut at random, some in the middle of an event, and resume with Last-Event-ID;
 * one client reads slowly. Every client checks, by payload number, that it gets
 * exactly the upstream's sequence: no gap, no duplicate. Then every session ends,
 * and the process must be back where it started: no session, no history, no
 * socket or timer more than before the soak, and the heap within a bound.
 */

const SECONDS = envNumber('CHAOS_SECONDS', 75)
const SEED = envNumber('CHAOS_SEED', randomSeed()) >>> 0
const SSE_CLIENTS = envNumber('CHAOS_SSE_CLIENTS', 24)
const MCP_CLIENTS = envNumber('CHAOS_MCP_CLIENTS', 12)
const HEAP_SLACK_MB = envNumber('CHAOS_HEAP_SLACK_MB', 24)
// 1: tool calls go on while the MCP upstream is killed (see docs/reliability.md, "Known interactions").
const CALLS_ACROSS_KILLS = process.env.CHAOS_CALLS_ACROSS_KILLS === '1'

// Upstream production: every sse topic 20 events/s, the slow client's topic 80 events/s of 16 KiB (1.3 MB/s), every MCP topic 10/s.
const SSE_TICK_MS = 50
const SLOW_PAD_BYTES = 16384
const SLOW_PER_TICK = 4
const MCP_TICK_MS = 100
// A fresh MCP subscription starts this many events before what the server last sent (at least once).
const MCP_REWIND = 100

// The window the invariant holds in. Clients resume within about 2 s of a cut, the slow client
// is paused at most 6 s, an upstream is down at most a few seconds: the history and the grace
// period cover several times that. TTL and grace are short so that the sessions end quickly.
const GRACE_SECONDS = 8
const TTL_SECONDS = 20
const PROXY_OPTIONS: Omit<McpSseResilienceOptions, 'routes'> = {
  reconnect: { baseDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.2, maxRetries: 0, dedupeWindow: 1000 },
  history: { maxEvents: 10_000, maxBytes: 32 * 1024 * 1024, ttlSeconds: TTL_SECONDS },
  sessions: { detachGraceSeconds: GRACE_SECONDS },
  health: { heartbeatSeconds: 5 },
  limits: { clientBufferBytes: 256 * 1024, clientStallSeconds: 20 }
}

t.setTimeout((SECONDS + 240) * 1000)

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)))

async function waitFor (what: string, timeoutMs: number, done: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(250)
  }
}

/** Counts the proxy's log lines by message, and keeps the first warnings and errors. */
class LogTally extends Writable {
  readonly byMessage = new Map<string, number>()
  readonly warnings: string[] = []

  override _write (chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line === '') continue
      const entry = JSON.parse(line) as { level: number, msg?: string, reason?: string, err?: { message?: string } }
      const message = entry.msg ?? ''
      this.byMessage.set(message, (this.byMessage.get(message) ?? 0) + 1)
      if (entry.level >= 40 && this.warnings.length < 10) this.warnings.push(`${message} ${entry.reason ?? entry.err?.message ?? ''}`)
    }
    done()
  }
}

t.test('chaos soak: upstream kills, client cuts (mid-event too) and a slow reader lose nothing and duplicate nothing; afterwards nothing is left', async (t) => {
  const startedAt = Date.now()
  t.comment(`seed ${SEED} (replay the fault schedule with CHAOS_SEED=${SEED}); ${SECONDS} s of faults; ${SSE_CLIENTS}+1 sse clients, ${MCP_CLIENTS} MCP clients`)
  const stateDir = mkdtempSync(join(tmpdir(), 'mcp-sse-chaos-'))
  const sseUpstream = new UpstreamProcess('sse upstream', './sse-upstream-process.ts', { port: 0, stateFile: join(stateDir, 'sse.json'), tickMs: SSE_TICK_MS })
  const mcpUpstream = new UpstreamProcess('mcp upstream', './mcp-upstream-process.ts', { port: 0, stateFile: join(stateDir, 'mcp.json'), tickMs: MCP_TICK_MS, rewind: MCP_REWIND })
  const sseClients: ChaosSseClient[] = []
  const mcpClients: ChaosMcpClient[] = []
  const clientAgent = new Agent()
  const log = new LogTally()
  const app = Fastify({ logger: { level: 'info', stream: log }, forceCloseConnections: true })
  t.teardown(async () => {
    const step = async (name: string, action: () => unknown): Promise<void> => {
      const started = Date.now()
      await action()
      if (Date.now() - started > 1000) process.stderr.write(`chaos teardown: ${name} took ${Date.now() - started} ms\n`)
    }
    for (const client of sseClients) client.close()
    await step('MCP clients', async () => await Promise.all(mcpClients.map(async (client) => await client.client.close().catch(() => {}))))
    await step('client agent', async () => await clientAgent.close().catch(() => {}))
    await step('proxy', async () => await app.close())
    await step('upstreams', async () => await Promise.all([sseUpstream.close(), mcpUpstream.close()]))
    rmSync(stateDir, { recursive: true, force: true })
  })

  await Promise.all([sseUpstream.start(), mcpUpstream.start()])
  await app.register(mcpSseResilience, {
    routes: [
      // Both keep a log that survives their restarts, and go on after the Last-Event-ID they get.
      { kind: 'sse', path: '/events', upstream: `${sseUpstream.origin()}/events`, upstreamReplays: true },
      { kind: 'streamable-http', path: '/mcp', upstream: `${mcpUpstream.origin()}/mcp`, upstreamReplays: true }
    ],
    ...PROXY_OPTIONS
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const proxySockets = new Map<number, Socket>()
  app.server.on('connection', (socket: Socket) => {
    const port = socket.remotePort ?? 0
    proxySockets.set(port, socket)
    socket.once('close', () => { if (proxySockets.get(port) === socket) proxySockets.delete(port) })
  })

  const pendingTimers = process.env.CHAOS_TRACE_TIMERS === '1' ? traceTimers() : undefined
  // The baseline: proxy and upstreams up, no client yet.
  const baseline = { resources: activeResources(), heapUsed: await settledHeapUsed(), listeners: processListeners() }

  // ---- clients ----
  // Each client draws from a generator of its own: where its mid-event cuts fall, how long it waits to resume.
  const random = (name: string): () => number => {
    const prng = Prng.derive(SEED, name)
    return () => prng.next()
  }
  for (let index = 1; index <= SSE_CLIENTS; index++) {
    const name = `sse-${index}`
    const pad = Prng.derive(SEED, `${name} pad`).int(0, 400)
    sseClients.push(new ChaosSseClient(name, `${origin}/events?stream=${name}&pad=${pad}&perTick=1`, random(name), [20, 800]))
  }
  const slow = new ChaosSseClient('slow', `${origin}/events?stream=slow&pad=${SLOW_PAD_BYTES}&perTick=${SLOW_PER_TICK}`, random('slow'), [20, 800])
  const mcpKills: Array<{ from: number, to: number }> = []
  const gate = new CallGate()
  for (let index = 1; index <= MCP_CLIENTS; index++) {
    mcpClients.push(new ChaosMcpClient(`mcp-${index}`, {
      url: `${origin}/mcp`,
      agent: clientAgent,
      random: random(`mcp-${index}`),
      gate,
      killedBetween: (from, to) => mcpKills.some((kill) => kill.from <= to && kill.to >= from)
    }))
  }
  slow.pause()
  await Promise.all([...sseClients, slow].map(async (client) => await client.open()))
  await Promise.all(mcpClients.map(async (client) => await client.start()))
  for (const client of mcpClients) {
    const pauses = Prng.derive(SEED, `${client.name} calls`)
    client.startCalling(10, 40, () => pauses.between(200, 1500))
  }

  // ---- faults, until the deadline ----
  const deadline = Date.now() + SECONDS * 1000
  const running = (): boolean => Date.now() < deadline
  const faults = { sseKills: 0, mcpKills: 0, slowPauses: 0, slowPausedMs: 0, slowBackpressured: 0 }
  let slowMaxQueuedAtProxy = 0

  async function killLoop (upstream: UpstreamProcess, prng: Prng, everyMs: [number, number], onKill: (window: { from: number, to: number }) => void, callGate?: CallGate): Promise<void> {
    await sleep(prng.between(everyMs[0] / 2, everyMs[1]))
    while (running()) {
      const downMs = prng.between(200, 2500)
      await callGate?.hold()
      const window = { from: Date.now(), to: Infinity }
      onKill(window)
      await upstream.restart(downMs)
      window.to = Date.now()
      callGate?.release()
      await sleep(Math.min(prng.between(everyMs[0], everyMs[1]), deadline - Date.now()))
    }
  }

  async function cutLoop (prng: Prng): Promise<void> {
    const candidates: Array<ChaosSseClient | ChaosMcpClient> = [...sseClients, ...mcpClients]
    while (running()) {
      await sleep(Math.min(prng.between(150, 500), deadline - Date.now()))
      const client = prng.pick(candidates)
      const midEvent = prng.chance(0.6)
      if (client.cuttable) client.cut(midEvent)
    }
  }

  /**
   * The slow client reads in short bursts between long pauses, from its first byte on: so the
   * kernel never grows its socket buffers (as it does for a client that has read fast), and the
   * proxy soon has a full socket on its side.
   */
  async function slowLoop (prng: Prng): Promise<void> {
    while (running()) {
      const pausedMs = Math.min(prng.between(3000, 8000), deadline - Date.now())
      faults.slowPauses++
      faults.slowPausedMs += pausedMs
      slow.pause()
      const until = Date.now() + pausedMs
      let felt = false
      while (Date.now() < until) {
        // What waits in the proxy's socket for the slow client: the proxy felt its backpressure.
        const socket = proxySockets.get(slow.localPort ?? -1)
        const queued = socket?.writableLength ?? 0
        if (queued > 0 && !felt) {
          felt = true
          faults.slowBackpressured++
        }
        slowMaxQueuedAtProxy = Math.max(slowMaxQueuedAtProxy, queued)
        await sleep(100)
      }
      slow.resume()
      await sleep(Math.min(prng.between(100, 500), deadline - Date.now()))
    }
  }

  await Promise.all([
    killLoop(sseUpstream, Prng.derive(SEED, 'sse-kills'), [6000, 14000], () => { faults.sseKills++ }),
    killLoop(mcpUpstream, Prng.derive(SEED, 'mcp-kills'), [8000, 16000], (window) => { faults.mcpKills++; mcpKills.push(window) }, CALLS_ACROSS_KILLS ? undefined : gate),
    cutLoop(Prng.derive(SEED, 'cuts')),
    slowLoop(Prng.derive(SEED, 'slow'))
  ])
  const faultsEndedAt = Date.now()

  // ---- drain: the upstreams stop producing; every client must get to the end of its topic ----
  slow.resume()
  await Promise.all(mcpClients.map(async (client) => await client.stopCalling()))
  const [sseFinal, mcpFinal] = await Promise.all([sseUpstream.stop(), mcpUpstream.stop()])
  const finalOf = (name: string, finals: Record<string, number>): number => finals[name] ?? 0
  const allSse = [...sseClients, slow]
  await waitFor('every client to reach the end of its topic', 90_000, () =>
    allSse.every((client) => client.check.last >= finalOf(client.name, sseFinal)) &&
    mcpClients.every((client) => client.check.last >= finalOf(client.name, mcpFinal))
  ).catch((error: Error) => t.comment(error.message))
  // Anything sent twice would arrive about now.
  await sleep(1000)
  const drainedAt = Date.now()

  // ---- the invariant ----
  const checks = [
    ...allSse.map((client) => ({ check: client.check, upstream: finalOf(client.name, sseFinal), foreign: client.foreign })),
    ...mcpClients.map((client) => ({ check: client.check, upstream: finalOf(client.name, mcpFinal), foreign: client.foreign }))
  ]
  const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0)
  const calls = {
    completed: sum(mcpClients.map((c) => c.calls.completed)),
    failed: sum(mcpClients.map((c) => c.calls.failed)),
    failedWithoutKill: sum(mcpClients.map((c) => c.calls.failedWithoutKill)),
    progressChecked: sum(mcpClients.map((c) => c.calls.progressChecked)),
    progressLost: sum(mcpClients.map((c) => c.calls.progressLost)),
    progressDuplicated: sum(mcpClients.map((c) => c.calls.progressDuplicated))
  }
  const lost = sum(checks.map(({ check, upstream }) => check.lost + check.missingTail(upstream))) + calls.progressLost
  const duplicated = sum(checks.map(({ check }) => check.duplicated)) + calls.progressDuplicated
  const outOfOrder = sum(checks.map(({ check }) => check.outOfOrder))
  const foreign = sum(checks.map(({ foreign }) => foreign))
  const sseEvents = sum(allSse.map((client) => client.check.received))
  const mcpTicks = sum(mcpClients.map((client) => client.check.received))
  const upstreamEvents = sum(checks.map(({ upstream }) => upstream))
  const cuts = {
    sse: sum(sseClients.map((c) => c.cuts)),
    sseMidEvent: sum(sseClients.map((c) => c.midEventCuts)),
    mcp: sum(mcpClients.map((c) => c.cuts)),
    mcpMidEvent: sum(mcpClients.map((c) => c.midEventCuts))
  }
  const unrecovered = sum(allSse.map((c) => c.unrecovered))
  const metricsText = await scrape(`${origin}/metrics`)
  const proxyFigures = Object.fromEntries([
    'sse_reconnection_attempts_total', 'sse_reconnection_success_total', 'sse_reconnection_failure_total',
    'sse_events_deduplicated_total', 'sse_sessions_reestablished_total', 'sse_client_reconnections_total',
    'sse_events_replayed_total', 'sse_last_event_id_hits_total', 'sse_last_event_id_misses_total',
    'sse_slow_consumer_disconnects_total', 'sse_events_forwarded_total'
  ].map((name) => [name.replace(/^sse_/, '').replace(/_total$/, ''), metric(metricsText, name)]))

  const report = {
    seed: SEED,
    faultSeconds: SECONDS,
    clients: { sse: SSE_CLIENTS + 1, mcp: MCP_CLIENTS },
    faults: {
      total: faults.sseKills + faults.mcpKills + cuts.sse + cuts.mcp + faults.slowPauses,
      sseUpstreamKills: faults.sseKills,
      mcpUpstreamKills: faults.mcpKills,
      upstreamDowntimeMs: { sse: summary(sseUpstream.downtimesMs), mcp: summary(mcpUpstream.downtimesMs) },
      clientCuts: cuts.sse + cuts.mcp,
      clientCutsMidEvent: cuts.sseMidEvent + cuts.mcpMidEvent,
      sseCuts: cuts.sse,
      mcpCuts: cuts.mcp,
      slowReaderPauses: faults.slowPauses,
      slowReaderPausedSeconds: Math.round(faults.slowPausedMs / 100) / 10,
      slowReaderPausesThatFilledTheProxysSocket: faults.slowBackpressured,
      slowReaderMaxBytesQueuedAtProxy: slowMaxQueuedAtProxy
    },
    events: { checked: sseEvents + mcpTicks + calls.progressChecked, sse: sseEvents, mcpTicks, mcpProgress: calls.progressChecked, upstreamSequenceTotal: upstreamEvents },
    lost,
    duplicated,
    outOfOrder,
    foreign,
    unrecoveredResumes: unrecovered,
    unexpectedStreamEnds: sum(allSse.map((c) => c.unexpectedEnds)),
    sdkGetsWithoutLastEventId: sum(mcpClients.map((c) => c.getsWithoutLastEventId)),
    callsAcrossKills: CALLS_ACROSS_KILLS,
    toolCalls: calls,
    proxy: proxyFigures,
    proxyWarnings: log.warnings,
    seconds: { faults: Math.round((faultsEndedAt - startedAt) / 1000), drain: Math.round((drainedAt - faultsEndedAt) / 1000) }
  }
  for (const line of JSON.stringify(report, null, 2).split('\n')) t.comment(line)
  const problems = [...allSse, ...mcpClients].filter((client) => client.problems.length > 0 || client.check.notes.length > 0)
  for (const client of problems.slice(0, 10)) t.comment(`${client.name}: ${[...client.check.notes, ...client.problems].join('; ')}`)

  t.equal(lost, 0, `no event lost (${report.events.checked} checked)`)
  t.equal(duplicated, 0, 'no event duplicated')
  t.equal(outOfOrder, 0, 'none out of order')
  t.equal(foreign, 0, 'no client saw another client\'s events')
  t.equal(unrecovered, 0, 'every resume was answered recovered')
  t.equal(calls.failedWithoutKill, 0, 'no tool call failed but for an upstream killed under it')
  t.ok(faults.sseKills >= 1 && faults.mcpKills >= 1 && cuts.sseMidEvent >= 1 && cuts.mcpMidEvent >= 1 && faults.slowBackpressured >= 1, 'every kind of fault happened (the slow reader filled the proxy\'s socket)')

  // ---- every session ends; the process must be back at its baseline ----
  for (const client of allSse) client.close()
  await Promise.all(mcpClients.map(async (client) => await client.end()))
  await clientAgent.close()
  const endedAt = Date.now()
  let after = ''
  await waitFor('every session and its history to be gone', (GRACE_SECONDS + TTL_SECONDS + 60) * 1000, async () => {
    after = await scrape(`${origin}/metrics`)
    return metric(after, 'sse_sessions_active') === 0 && metric(after, 'sse_history_events') === 0 && metric(after, 'sse_streams_active') === 0
  }).catch((error: Error) => t.comment(error.message))
  const sessionsGoneMs = Date.now() - endedAt
  t.equal(metric(after, 'sse_sessions_active'), 0, 'sse_sessions_active 0')
  t.equal(metric(after, 'sse_history_events'), 0, 'sse_history_events 0')
  t.equal(metric(after, 'sse_history_bytes'), 0, 'sse_history_bytes 0')
  t.equal(metric(after, 'sse_streams_active'), 0, 'sse_streams_active 0')

  // Idle upstream connections in the proxy's pool close after their keep-alive (a few seconds).
  await waitFor('sockets and timers back to the baseline', 30_000, () => Object.keys(resourcesAbove(baseline.resources, activeResources())).length === 0)
    .catch((error: Error) => t.comment(error.message))
  const resources = activeResources()
  const connections = await new Promise<number>((resolve) => app.server.getConnections((_error, count) => resolve(count)))
  const heapUsed = await settledHeapUsed()
  const leaks = {
    sessionsGoneSeconds: Math.round(sessionsGoneMs / 100) / 10,
    // Not the proxy's process, so not asserted: sessions the proxy opened upstream and never ended (docs/reliability.md, "Findings").
    mcpUpstreamSessionsLeft: await mcpUpstream.sessions(),
    resourcesBaseline: baseline.resources,
    resourcesAfter: resources,
    above: resourcesAbove(baseline.resources, resources),
    proxyConnections: connections,
    processListeners: { baseline: baseline.listeners, after: processListeners() },
    heapUsedMB: { baseline: mb(baseline.heapUsed), after: mb(heapUsed), slack: HEAP_SLACK_MB }
  }
  for (const line of JSON.stringify(leaks, null, 2).split('\n')) t.comment(line)
  for (const stack of pendingTimers?.() ?? []) t.comment(`timer still pending, created at:\n${stack}`)
  t.same(leaks.above, {}, 'no more sockets, timers or handles than before the soak')
  t.equal(connections, 0, 'the proxy holds no client connection')
  t.equal(leaks.processListeners.after, leaks.processListeners.baseline, 'no listener left on process')
  t.ok(heapUsed <= baseline.heapUsed + HEAP_SLACK_MB * 1024 * 1024, `heap after GC within ${HEAP_SLACK_MB} MB of the baseline (${leaks.heapUsedMB.baseline} -> ${leaks.heapUsedMB.after} MB)`)
  t.comment(`total ${Math.round((Date.now() - startedAt) / 1000)} s`)

  const reportFile = process.env.CHAOS_REPORT
  if (reportFile !== undefined && reportFile !== '') writeFileSync(reportFile, JSON.stringify({ ...report, leaks, totalSeconds: Math.round((Date.now() - startedAt) / 1000) }, null, 2))
})

function summary (values: readonly number[]): { count: number, min: number, max: number } {
  return { count: values.length, min: values.length === 0 ? 0 : Math.min(...values), max: values.length === 0 ? 0 : Math.max(...values) }
}

function mb (bytes: number): number {
  return Math.round(bytes / 1024 / 102.4) / 10
}
