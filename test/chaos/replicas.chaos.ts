import t from 'tap'
import { randomUUID } from 'node:crypto'
import { readdir, readFile, readlink } from 'node:fs/promises'
import type { IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Redis } from 'ioredis'
import { CountingUpstream, type UpstreamConnection } from '../helpers/counting-upstream.js'
import { startReplica, type Replica } from '../helpers/replica-process.js'
import { deleteKeys, keysUnder } from '../helpers/test-redis.js'
import { Prng, randomSeed } from './prng.js'
import { envNumber } from './chaos-env.js'
import { ReplicaChaosClient, type ReplicaTarget } from './replica-chaos-client.js'

/*
 * The chaos soak across replicas: `npm run test:chaos:replicas`. See docs/reliability.md,
 * "Chaos across replicas".
 *
 * Three proxy replicas, each its own process, share the Redis on 127.0.0.1:6379 under a
 * fresh key prefix. N clients each open an sse stream on a random replica, to one
 * CountingUpstream that numbers every stream 1, 2, 3 … and honours Last-Event-ID. For
 * CHAOS_SECONDS, faults drawn from a seeded PRNG: client connections cut (some in the
 * middle of an event) and resumed on a random replica; a replica SIGKILLed and a fresh one
 * started in its place; a replica SIGSTOPped past its lease, then SIGCONTed. A client
 * whose connection drops, for whatever reason, resumes with its last id on a random live
 * replica. Every client checks its whole sequence by payload: each number from the first
 * to the last, once, in order. Afterwards every client must catch up past what the
 * upstream sent after the faults stopped.
 *
 * A stream that ends under its client is reported with what the client and the upstream
 * saw around its end: see "A stream ends under a client that is reconnecting" in
 * docs/reliability.md (open at the time of writing; CHAOS_GRACE_SECONDS=5 makes it frequent).
 */

const SECONDS = envNumber('CHAOS_SECONDS', 60)
const SEED = envNumber('CHAOS_SEED', randomSeed()) >>> 0
const CLIENTS = envNumber('CHAOS_REPLICA_CLIENTS', 16)
// sessions.detachGraceSeconds of the replicas. See docs/reliability.md, "Chaos across replicas", for what it changes.
const GRACE_SECONDS = envNumber('CHAOS_GRACE_SECONDS', 30)
const REPLICAS = 3
const REDIS_URL = 'redis://127.0.0.1:6379'
const LEASE_TTL_MS = 1000
// Each stream's upstream sends one event every 20 ms: 50 per second per client.
const INTERVAL_MS = 20
// After the faults, each client must get this many events past what the upstream had sent by then.
const CATCH_UP_EVENTS = 20
// A client with no event for this long is stuck (a hang): the longest legitimate silence is a
// replica stopped for 3 s, plus a lease and a sweep for its streams to be taken over.
const STALL_MS = 10_000
// A takeover this soon after a kill is put down to it: the lease (1 s), a sweep, and a connection upstream.
const TAKEOVER_WITHIN_MS = 3000
// A replica woken from SIGSTOP lets go of the streams it lost within this (its lease is taken, its appends fenced).
const OVERLAP_AFTER_WAKE_MS = 2000

/** The replicas' options: a short lease, a grace and a history far longer than any fault. */
function replicaOptions (keyPrefix: string, upstreamUrl: string): unknown {
  return {
    routes: [{ kind: 'sse', path: '/events', upstream: upstreamUrl, upstreamReplays: true }],
    store: { kind: 'redis', url: REDIS_URL, keyPrefix, leaseTtlMs: LEASE_TTL_MS },
    reconnect: { baseDelayMs: 50, maxDelayMs: 500, maxRetries: 0 },
    sessions: { detachGraceSeconds: GRACE_SECONDS },
    // 10 000 events per stream: over 3 minutes of one stream, longer than the TTL.
    history: { ttlSeconds: 120, maxEvents: 10_000 },
    metrics: { enabled: false }
  }
}

t.setTimeout((SECONDS + 180) * 1000)

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)))

/** A place in the pool of replicas, and the process in it; a killed one is replaced by a new slot. */
class ReplicaSlot implements ReplicaTarget {
  state: 'running' | 'stopped' | 'dead' = 'running'

  constructor (readonly name: string, readonly replica: Replica) {}

  get origin (): string {
    return this.replica.url
  }

  get dead (): boolean {
    return this.state === 'dead'
  }
}

interface FaultRecord {
  kind: 'kill' | 'stop'
  /** Ms since the start of the soak: when the signal was sent, and when the replica ran again (SIGCONT, or its replacement listening). */
  at: number
  endedAt: number
  replica: string
  ms: number
  clientsOn: number
  /** Upstream streams the replica read when it was hit (undefined without /proc). */
  streamsRead: number | undefined
}

t.test('chaos across replicas: cuts, SIGKILLed and SIGSTOPped replicas lose nothing and duplicate nothing, and every resume is recovered', async (t) => {
  const startedAt = Date.now()
  const clock = (): number => Date.now() - startedAt
  t.comment(`seed ${SEED} (replay the fault schedule with CHAOS_SEED=${SEED}); ${SECONDS} s of faults; ${CLIENTS} clients, ${REPLICAS} replicas, detachGraceSeconds ${GRACE_SECONDS}`)
  const keyPrefix = `chaos:${randomUUID()}:`
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 })
  const upstream = await CountingUpstream.start({ replays: true, intervalMs: INTERVAL_MS })
  const options = replicaOptions(keyPrefix, upstream.url())
  const upstreamPort = (upstream.server.address() as AddressInfo).port
  // Which client's stream each upstream connection is: the proxy passes the client's query on.
  const streamOf = new Map<UpstreamConnection, string>()
  upstream.server.on('request', (request: IncomingMessage) => {
    const connection = upstream.connections.at(-1)
    if (connection !== undefined) streamOf.set(connection, new URL(request.url ?? '/', 'http://upstream').searchParams.get('client') ?? '?')
  })
  const everySlot: ReplicaSlot[] = []
  const clients: ReplicaChaosClient[] = []
  /** Closes everything, and deletes every key of this run: killed replicas leave their leases and histories behind. */
  const cleanUp = async (): Promise<number> => {
    for (const client of clients) client.close()
    await Promise.all(everySlot.map(async (slot) => await slot.replica.kill('SIGKILL')))
    await upstream.close()
    const keys = (await keysUnder(redis, keyPrefix)).length
    await deleteKeys(redis, keyPrefix)
    return keys
  }
  t.teardown(async () => {
    await cleanUp()
    await redis.quit()
  })

  let replicasStarted = 0
  const startSlot = async (): Promise<ReplicaSlot> => {
    const slot = new ReplicaSlot(`r${++replicasStarted}`, await startReplica(t, options))
    everySlot.push(slot)
    return slot
  }
  const slots: ReplicaSlot[] = await Promise.all(Array.from({ length: REPLICAS }, startSlot))

  /** A load balancer's choice: any replica that is not dead (a stopped one too: it does not know), preferably not `avoid`. */
  const pick = (prng: Prng, avoid?: ReplicaTarget): ReplicaTarget | undefined => {
    const live = slots.filter((slot) => !slot.dead)
    const preferred = live.filter((slot) => slot !== avoid)
    const from = preferred.length > 0 ? preferred : live
    return from.length === 0 ? undefined : prng.pick(from)
  }

  for (let index = 1; index <= CLIENTS; index++) {
    const name = `c${index}`
    clients.push(new ReplicaChaosClient(name, `/events?client=${name}`, Prng.derive(SEED, name), { pick, clock }))
  }
  await Promise.all(clients.map(async (client) => await client.open()))
  const watchdog = setInterval(() => {
    const now = Date.now()
    for (const client of clients) client.watch(now, STALL_MS)
  }, 500)
  t.teardown(() => clearInterval(watchdog))

  // ---- faults, until the deadline ----
  const deadline = Date.now() + SECONDS * 1000
  const running = (): boolean => Date.now() < deadline
  const untilDeadline = (ms: number): number => Math.min(ms, deadline - Date.now())
  const faults: FaultRecord[] = []
  let cutsOrdered = 0

  async function killLoop (prng: Prng): Promise<void> {
    await sleep(untilDeadline(prng.between(2000, 5000)))
    while (running()) {
      const runningSlots = slots.filter((slot) => slot.state === 'running')
      // Never the last one running: a stopped replica does not count.
      if (runningSlots.length >= 2) {
        const victim = prng.pick(runningSlots)
        const position = slots.indexOf(victim)
        const downMs = prng.between(1000, 3000)
        const clientsOn = clients.filter((client) => client.replica === victim && client.connected).length
        victim.state = 'dead'
        const streamsRead = await upstreamStreamsReadBy(victim.replica.pid, upstreamPort)
        const fault: FaultRecord = { kind: 'kill', at: clock(), endedAt: Infinity, replica: victim.name, ms: Math.round(downMs), clientsOn, streamsRead }
        faults.push(fault)
        await victim.replica.kill('SIGKILL')
        await sleep(downMs)
        slots[position] = await startSlot()
        fault.endedAt = clock()
      }
      await sleep(untilDeadline(prng.between(6000, 11000)))
    }
  }

  async function stopLoop (prng: Prng): Promise<void> {
    await sleep(untilDeadline(prng.between(4000, 8000)))
    while (running()) {
      const runningSlots = slots.filter((slot) => slot.state === 'running')
      if (runningSlots.length >= 2) {
        const victim = prng.pick(runningSlots)
        // Past the 1 s lease: the replica's streams are taken over while it sleeps, and it is fenced when it wakes.
        const stoppedMs = prng.between(1500, 3000)
        const clientsOn = clients.filter((client) => client.replica === victim && client.connected).length
        victim.state = 'stopped'
        const streamsRead = await upstreamStreamsReadBy(victim.replica.pid, upstreamPort)
        const fault: FaultRecord = { kind: 'stop', at: clock(), endedAt: Infinity, replica: victim.name, ms: Math.round(stoppedMs), clientsOn, streamsRead }
        faults.push(fault)
        await victim.replica.stop()
        await sleep(stoppedMs)
        await victim.replica.cont()
        fault.endedAt = clock()
        victim.state = 'running'
      }
      await sleep(untilDeadline(prng.between(7000, 13000)))
    }
  }

  async function cutLoop (prng: Prng): Promise<void> {
    while (running()) {
      await sleep(untilDeadline(prng.between(150, 450)))
      const client = prng.pick(clients)
      const midEvent = prng.chance(0.5)
      const resumeAfterMs = prng.between(0, 1500)
      if (!client.cuttable) continue
      client.cut(midEvent, resumeAfterMs)
      cutsOrdered++
    }
  }

  await Promise.all([
    killLoop(Prng.derive(SEED, 'kills')),
    stopLoop(Prng.derive(SEED, 'stops')),
    cutLoop(Prng.derive(SEED, 'cuts'))
  ])
  const faultsEndedAt = Date.now()
  for (const client of clients) client.lastAtStop = client.check.last

  // ---- catch up: past a number the upstream sent after the faults stopped ----
  // The cursor Redis records for a stream is the upstream's number of its last recorded event:
  // read after the faults, anything past it was sent after them.
  await sleep(500)
  const targets = new Map<ReplicaChaosClient, number>()
  for (const client of clients) {
    const cursor = client.lastEventId === undefined ? 0 : await recordedCursor(redis, keyPrefix, client.lastEventId)
    targets.set(client, Math.max(client.lastAtStop, cursor) + CATCH_UP_EVENTS)
  }
  const behind = (): ReplicaChaosClient[] => clients.filter((client) => client.check.last < (targets.get(client) ?? 0))
  const catchUpDeadline = Date.now() + 30_000
  // A client whose stream has ended for good will not catch up: no need to wait for it.
  while (behind().some((client) => client.streamEnded === undefined) && Date.now() < catchUpDeadline) await sleep(100)
  const caughtUpMs = Date.now() - faultsEndedAt
  const notCaughtUp = behind()
  // Anything sent twice would arrive about now.
  await sleep(1000)
  clearInterval(watchdog)

  // One reader per upstream stream, once every replica runs again: a fenced owner let its stream go.
  const oneReaderDeadline = Date.now() + 5000
  while (upstream.open !== CLIENTS && Date.now() < oneReaderDeadline) await sleep(100)
  const upstreamOpen = upstream.open

  // ---- the figures ----
  const sum = (pick: (client: ReplicaChaosClient) => number): number => clients.reduce((total, client) => total + pick(client), 0)
  const upstreamResumed = upstream.connections.filter((connection) => connection.lastEventId !== undefined)
  const kills = faults.filter((fault) => fault.kind === 'kill')
  const stops = faults.filter((fault) => fault.kind === 'stop')
  const readers = upstream.connections.map((connection) => ({
    stream: streamOf.get(connection) ?? '?',
    from: connection.openedAt - startedAt,
    to: (connection.closedAt ?? Date.now()) - startedAt,
    takeover: connection.lastEventId !== undefined
  }))
  const takeovers = attributeTakeovers(readers.filter((reader) => reader.takeover).map((reader) => reader.from), faults)
  // Two replicas reading one upstream stream at once. Expected only while the older one is stopped,
  // and until it notices, once woken, that it was fenced.
  const overlaps = overlapsOf(readers).map((overlap) => {
    const stop = stops.find((fault) => fault.at <= overlap.from && overlap.from <= fault.endedAt)
    return { ...overlap, afterWakeMs: stop === undefined ? undefined : overlap.to - stop.endedAt }
  })
  const unexplainedOverlaps = overlaps.filter((overlap) => overlap.afterWakeMs === undefined || overlap.afterWakeMs > OVERLAP_AFTER_WAKE_MS)
  // Streams that ended for good under their client: what the upstream and the client saw around the end.
  const endedStreams = clients.filter((client) => client.streamEnded !== undefined).map((client) => {
    const own = readers.filter((reader) => reader.stream === client.name)
    const last = own.reduce<typeof own[number] | undefined>((latest, reader) => latest === undefined || reader.to > latest.to ? reader : latest, undefined)
    const endedAt = last?.to ?? 0
    return {
      client,
      endedAt,
      text: `${client.name}: its stream ended for good at ${endedAt} ms, with number ${client.check.last}: the last replica to read its upstream ` +
        `closed the connection then, after ${((endedAt - (last?.from ?? 0)) / 1000).toFixed(1)} s of reading it (${last?.takeover === true ? 'a takeover' : 'the stream\'s first owner'}), ` +
        `and no replica took it over. Since ${client.streamEnded ?? 0} ms, every resume (${client.emptyEndsInARow} in a row) is answered 200 ` +
        'X-Resume-Status: recovered, replays nothing and ends.'
    }
  })
  const report = {
    seed: SEED,
    faultSeconds: SECONDS,
    clients: CLIENTS,
    detachGraceSeconds: GRACE_SECONDS,
    replicas: { atOnce: REPLICAS, started: replicasStarted },
    faults: {
      cuts: sum((client) => client.cuts),
      midEventCuts: sum((client) => client.midEventCuts),
      cutsOrdered,
      kills: kills.length,
      stops: stops.length,
      schedule: faults.map((fault) => `${fault.at} ms ${fault.kind} ${fault.replica} for ${fault.ms} ms: ${fault.clientsOn} clients on it` +
        (fault.streamsRead === undefined ? '' : `, it read ${fault.streamsRead} upstream streams`) +
        (fault.kind === 'kill' && takeovers.firstAfter.has(fault) ? `, the first taken over ${takeovers.firstAfter.get(fault) ?? 0} ms after the kill` : '')),
      upstreamStreamsReadByReplicasHit: { kills: sumOf(kills.map((fault) => fault.streamsRead ?? 0)), stops: sumOf(stops.map((fault) => fault.streamsRead ?? 0)) }
    },
    clientSide: {
      connections: sum((client) => client.connects),
      resumes: sum((client) => client.resumes),
      dropsByKill: sum((client) => client.dropsByKill),
      dropsOther: sum((client) => client.drops),
      dropsOtherEndedCleanly: sum((client) => client.cleanEnds),
      connectErrors: sum((client) => client.connectErrors),
      answered503: sum((client) => client.unavailable),
      stalls: sum((client) => client.stalls)
    },
    upstream: {
      streamsOpened: upstream.connections.length - upstreamResumed.length,
      takeovers: upstreamResumed.length,
      takeoversAfterKill: takeovers.afterKill,
      takeoversDuringStop: takeovers.duringStop,
      takeoversOther: takeovers.other,
      firstTakeoverAfterKillMs: summary([...takeovers.firstAfter.values()]),
      twoReadersAtOnce: overlaps.length,
      twoReadersLongestAfterWakeMs: Math.max(0, ...overlaps.map((overlap) => overlap.afterWakeMs ?? 0)),
      twoReadersUnexplained: unexplainedOverlaps.map((overlap) => `${overlap.stream} ${overlap.from}..${overlap.to} ms`),
      openAtEnd: upstreamOpen
    },
    events: {
      checked: sum((client) => client.check.received),
      lost: sum((client) => client.check.lost),
      duplicated: sum((client) => client.check.duplicated),
      outOfOrder: sum((client) => client.check.outOfOrder),
      foreign: sum((client) => client.foreign),
      unrecoverable: sum((client) => client.unrecoverable),
      resumesNotAnsweredRecovered: sum((client) => client.unanswered),
      badStatus: sum((client) => client.badStatus)
    },
    catchUp: { ms: caughtUpMs, notCaughtUp: notCaughtUp.map((client) => `${client.name} at ${client.check.last} of ${targets.get(client) ?? 0}`) },
    streamsEndedForGood: endedStreams.map((ended) => `${ended.client.name} at ${ended.endedAt} ms`),
    seconds: { faults: Math.round((faultsEndedAt - startedAt) / 1000), total: Math.round((Date.now() - startedAt) / 1000) }
  }
  for (const line of JSON.stringify(report, null, 2).split('\n')) t.comment(line)

  const { events } = report
  const anomalies = events.lost + events.duplicated + events.outOfOrder + events.foreign + events.unrecoverable +
    events.resumesNotAnsweredRecovered + events.badStatus + report.clientSide.stalls + notCaughtUp.length + endedStreams.length +
    unexplainedOverlaps.length
  if (anomalies > 0) {
    // Printed so that it cannot be missed: the seed, what went wrong, and each client's last connections.
    t.comment('='.repeat(78))
    t.comment(`ANOMALY with seed ${SEED}: replay the same faults with CHAOS_SEED=${SEED} (not the same interleaving: it may take a few runs)`)
    for (const client of clients.filter((c) => c.notes.length > 0 || (notCaughtUp.includes(c) && c.streamEnded === undefined))) {
      t.comment(`${client.name}: ${client.notes.join('\n  ')}`)
      t.comment(`  its last connections: ${client.traces().join('\n    ')}`)
    }
    for (const ended of endedStreams) {
      t.comment(ended.text)
      const around = ended.client.tracesAround(ended.endedAt, 1500)
      const where = ended.client.whereAt(ended.endedAt)
      const state = where === undefined
        ? 'between two connections'
        : 'streaming' in where ? `streaming from ${where.streaming}` : `waiting for ${where.waiting} to answer its resume (a replica follows the stream for it only once it handles the resume)`
      t.comment(`  the client was ${state} then; its connections within 1.5 s of the end:\n    ${around.join('\n    ')}`)
      if (where === undefined || 'waiting' in where) {
        t.comment('  An sse stream of an endless upstream ends only when its owner gives it up: after sessions.detachGraceSeconds with no ' +
          'client of its own, the owner asks Redis whether another replica follows the stream (PUBSUB NUMSUB), once, at that instant ' +
          '(lib/session/proxied-stream.ts, #awaitClient). A client that is between two connections at that instant (cut, its ' +
          'replica killed, or its resume waiting on a stopped replica) is followed by no replica, and its stream ends although it ' +
          'was away for far less than the grace. ' +
          'See docs/reliability.md, "Chaos across replicas".')
      }
    }
    for (const overlap of unexplainedOverlaps) {
      t.comment(`two replicas read the upstream of ${overlap.stream} at once from ${overlap.from} to ${overlap.to} ms, ` +
        (overlap.afterWakeMs === undefined ? 'while no replica was stopped' : `until ${overlap.afterWakeMs} ms after the stopped one woke`))
    }
    t.comment('='.repeat(78))
  }

  t.equal(events.lost, 0, `no gap (${events.checked} events checked)`)
  t.equal(events.duplicated, 0, 'no duplicate')
  t.equal(events.outOfOrder, 0, 'none out of order')
  t.equal(events.foreign, 0, 'every event is one of the upstream\'s numbers')
  t.equal(events.unrecoverable, 0, 'no resume answered unrecoverable')
  t.equal(events.resumesNotAnsweredRecovered, 0, 'every resume answered X-Resume-Status: recovered')
  t.equal(events.badStatus, 0, 'no answer but 200 and 503')
  t.equal(report.clientSide.stalls, 0, `no client stuck for ${STALL_MS / 1000} s`)
  t.same(report.streamsEndedForGood, [], 'no stream ended under its client (an endless upstream, a client away for at most 1.5 s at a time)')
  t.same(report.catchUp.notCaughtUp, [], `every client caught up to ${CATCH_UP_EVENTS} events past what the upstream had sent when the faults stopped`)
  t.equal(report.upstream.streamsOpened, CLIENTS, 'one upstream stream per client: no resume opened a fresh one')
  t.same(report.upstream.twoReadersUnexplained, [], `two replicas read one upstream stream at once only while one of them is stopped, and at most ${OVERLAP_AFTER_WAKE_MS} ms after it wakes`)
  t.equal(upstreamOpen, CLIENTS, 'one upstream connection per stream at the end: no replica still reads a stream it lost')
  if (SECONDS >= 20) t.ok(kills.length >= 1 && stops.length >= 1 && report.faults.midEventCuts >= 1 && report.clientSide.dropsByKill >= 1, 'every kind of fault happened')

  const keysDeleted = await cleanUp()
  t.comment(`${keysDeleted} keys under ${keyPrefix} deleted; total ${Math.round((Date.now() - startedAt) / 1000)} s`)
})

/** Ms since the soak's start at which two connections of one stream were open at once. */
function overlapsOf (readers: ReadonlyArray<{ stream: string, from: number, to: number }>): Array<{ stream: string, from: number, to: number }> {
  const overlaps: Array<{ stream: string, from: number, to: number }> = []
  for (const stream of new Set(readers.map((reader) => reader.stream))) {
    const edges = readers.filter((reader) => reader.stream === stream)
      .flatMap((reader) => [{ at: reader.from, step: 1 }, { at: reader.to, step: -1 }])
      .sort((a, b) => a.at - b.at || a.step - b.step)
    let open = 0
    let from = 0
    for (const edge of edges) {
      open += edge.step
      if (edge.step === 1 && open === 2) from = edge.at
      if (edge.step === -1 && open === 1) overlaps.push({ stream, from, to: edge.at })
    }
  }
  return overlaps
}

/** Each takeover (an upstream connection with Last-Event-ID, opened at ms since the start) put down to the fault before it. */
function attributeTakeovers (openedAt: readonly number[], faults: readonly FaultRecord[]): { afterKill: number, duringStop: number, other: number, firstAfter: Map<FaultRecord, number> } {
  const figures = { afterKill: 0, duringStop: 0, other: 0, firstAfter: new Map<FaultRecord, number>() }
  for (const at of openedAt) {
    const stop = faults.find((fault) => fault.kind === 'stop' && fault.at <= at && at <= fault.endedAt)
    const kill = faults.filter((fault) => fault.kind === 'kill' && fault.at <= at && at - fault.at <= TAKEOVER_WITHIN_MS).at(-1)
    if (stop !== undefined) figures.duringStop++
    else if (kill !== undefined) figures.afterKill++
    else figures.other++
  }
  // Only for a kill of a replica that read streams, and not counting the takeovers of a replica stopped meanwhile.
  for (const kill of faults.filter((fault) => fault.kind === 'kill' && fault.streamsRead !== 0)) {
    const delays = openedAt
      .filter((at) => !faults.some((fault) => fault.kind === 'stop' && fault.at <= at && at <= fault.endedAt))
      .map((at) => at - kill.at)
      .filter((delay) => delay >= 0 && delay <= TAKEOVER_WITHIN_MS)
    if (delays.length > 0) figures.firstAfter.set(kill, Math.min(...delays))
  }
  return figures
}

function sumOf (values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0)
}

function summary (values: readonly number[]): { count: number, min: number, max: number } {
  return { count: values.length, min: values.length === 0 ? 0 : Math.min(...values), max: values.length === 0 ? 0 : Math.max(...values) }
}

/**
 * How many upstream streams a replica reads now: its TCP connections to the upstream's port,
 * found through /proc (Linux). Undefined where there is no /proc: the figure is then left out.
 */
async function upstreamStreamsReadBy (pid: number, upstreamPort: number): Promise<number | undefined> {
  try {
    const inodes = new Set<string>()
    for (const fd of await readdir(`/proc/${pid}/fd`)) {
      const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')
      const match = /^socket:\[(\d+)\]$/.exec(link)
      if (match?.[1] !== undefined) inodes.add(match[1])
    }
    const table = (await readFile('/proc/net/tcp', 'utf8')) + (await readFile('/proc/net/tcp6', 'utf8').catch(() => ''))
    let count = 0
    for (const line of table.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/)
      const remotePort = Number.parseInt(fields[2]?.split(':')[1] ?? '', 16)
      // State 01: established.
      if (remotePort === upstreamPort && fields[3] === '01' && inodes.has(fields[9] ?? '')) count++
    }
    return count
  } catch {
    return undefined
  }
}

/** The upstream's number of the last event Redis recorded for the stream of `lastEventId` (`<stream>.<epoch>.<seq>`). */
async function recordedCursor (redis: Redis, keyPrefix: string, lastEventId: string): Promise<number> {
  const streamId = lastEventId.split('.')[0] ?? ''
  const sessionId = await redis.get(`${keyPrefix}{${streamId}}:sid`)
  if (sessionId === null) return 0
  return Number(await redis.hget(`${keyPrefix}{${sessionId}}:m:${streamId}`, 'cursor') ?? 0)
}
