import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { CountingUpstream } from '../helpers/counting-upstream.js'
import { exactSequence, numbersOf, waitForNumber } from '../helpers/numbered-events.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startRedisServer, type RedisServer } from '../helpers/redis-process.js'
import { SseClient } from '../helpers/sse-client.js'
import { startTcpRelay, type TcpRelay } from '../helpers/tcp-relay.js'

// A Redis primary with a replica, each a redis-server the test starts, and the proxy
// reaching the primary through an endpoint that follows the failover (a TCP relay, as a
// managed service's primary endpoint or a proxy in front of Sentinel would).

interface Failover {
  readonly primary: RedisServer
  readonly replica: RedisServer
  readonly endpoint: TcpRelay
  /** Cuts the replication link, for good: what the primary takes from now on never reaches the replica. */
  readonly replicaFallsBehind: () => void
  /** Kills the primary, promotes the replica (REPLICAOF NO ONE), and points the endpoint at it. */
  readonly failOver: () => Promise<void>
}

async function primaryWithReplica (t: Test, options: { linkDelayMs?: number } = {}): Promise<Failover> {
  const [primary, replica] = await Promise.all([startRedisServer(t), startRedisServer(t)])
  const [onPrimary, onReplica] = [new Redis(primary.url), new Redis(replica.url)]
  for (const client of [onPrimary, onReplica]) client.on('error', () => {})
  t.teardown(() => {
    onPrimary.disconnect()
    onReplica.disconnect()
  })
  // Redis 7 waits repl-diskless-sync-delay (5 s) for more replicas before the first sync.
  await onPrimary.config('SET', 'repl-diskless-sync-delay', '0')
  // The replica reaches the primary through a link the test can slow down or cut.
  const link = await startTcpRelay(t, primary.port, { delayMs: options.linkDelayMs })
  await onReplica.replicaof('127.0.0.1', link.port)
  const deadline = Date.now() + 15_000
  while (!/master_link_status:up/.test(await onReplica.info('replication'))) {
    if (Date.now() > deadline) throw new Error('the replica did not attach')
    await sleep(50)
  }
  const endpoint = await startTcpRelay(t, primary.port)
  return {
    primary,
    replica,
    endpoint,
    replicaFallsBehind: () => link.pause(),
    failOver: async () => {
      await primary.kill()
      await onReplica.replicaof('NO', 'ONE')
      endpoint.retarget(replica.port)
    }
  }
}

async function proxyFor (t: Test, endpoint: TcpRelay, upstream: CountingUpstream, durable: boolean): Promise<RunningProxy> {
  return await startProxy(t, {
    routes: [{ kind: 'sse', path: '/events', upstream: upstream.url(), upstreamReplays: upstream.replays, reconnect: { baseDelayMs: 50, maxRetries: 0 } }],
    store: { kind: 'redis', url: `redis://127.0.0.1:${endpoint.port}`, keyPrefix: 'failover:', leaseTtlMs: 5000, durable },
    metrics: { enabled: false }
  })
}

/** Resolves once the primary holds `more` events of the stream past this id. */
async function recordedPast (primary: RedisServer, id: string, more: number): Promise<void> {
  const redis = new Redis(primary.url)
  try {
    const [streamId] = id.split('.')
    const sessionId = await redis.get(`failover:{${streamId ?? ''}}:sid`)
    while (Number(await redis.hget(`failover:{${sessionId ?? ''}}:m:${streamId ?? ''}`, 'last')) < seqOf(id) + more) await sleep(10)
  } finally {
    redis.disconnect()
  }
}

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

/** The seq an event id `<stream>.<epoch>.<seq>` names. */
const seqOf = (id: string | undefined): number => Number(id?.split('.').at(-1))

t.test('failover with store.durable: the promoted replica holds every event a client was sent, and the client resumes recovered', async (t) => {
  // Replication lags 2 × 200 ms behind the primary: without durable, the replica would miss the last events clients saw.
  const { endpoint, failOver } = await primaryWithReplica(t, { linkDelayMs: 200 })
  const upstream = await CountingUpstream.start({ replays: false, intervalMs: 10 })
  t.teardown(async () => await upstream.close())
  const proxy = await proxyFor(t, endpoint, upstream, true)

  const client = await SseClient.open(proxy.url('/events'))
  await waitForNumber(client, 30)
  // Mid-stream, appends in flight: the primary dies, and the endpoint leads to the replica promoted instead.
  await failOver()
  await waitForNumber(client, (numbersOf(client).at(-1) ?? 0) + 30)
  client.close()
  await client.ended
  t.ok(exactSequence(numbersOf(client)), `the client was sent 1..${numbersOf(client).length} across the failover, each once, and no gap notice`)

  const fromFirst = await SseClient.open(proxy.url('/events'), { 'last-event-id': client.events[0]?.id ?? '' })
  t.teardown(() => fromFirst.close())
  t.equal(fromFirst.headers['x-resume-status'], 'recovered', 'a resume from the first event is served in full by the promoted replica')
  await waitForNumber(fromFirst, (numbersOf(client).at(-1) ?? 0) + 20)
  t.same(numbersOf(fromFirst).slice(0, numbersOf(client).length - 1), numbersOf(client).slice(1), 'every event the client was sent is in the new primary, as it was sent')
  t.ok(exactSequence([1, ...numbersOf(fromFirst)]), 'and the stream goes on after them, nothing missing, nothing twice')
})

t.test('failover without store.durable: a client that saw events the promoted replica lacks is told unrecoverable, never recovered over a gap, and no id it saw is issued again', async (t) => {
  const { primary, endpoint, replicaFallsBehind, failOver } = await primaryWithReplica(t)
  const upstream = await CountingUpstream.start({ replays: false, intervalMs: 10 })
  t.teardown(async () => await upstream.close())
  const proxy = await proxyFor(t, endpoint, upstream, false)

  const client = await SseClient.open(proxy.url('/events'))
  await waitForNumber(client, 30)
  replicaFallsBehind()
  const beforeLag = client.events.at(-1)?.id ?? ''
  await waitForNumber(client, (numbersOf(client).at(-1) ?? 0) + 30)
  client.close()
  await client.ended
  const lastSeen = client.events.at(-1)?.id ?? ''
  // The owner goes on recording past what the client saw, on the primary alone.
  await recordedPast(primary, lastSeen, 5)
  await failOver()

  const resumed = await SseClient.open(proxy.url('/events'), { 'last-event-id': lastSeen })
  t.teardown(() => resumed.close())
  t.match(resumed.headers['x-resume-status'], /^unrecoverable; reason=(unknown|evicted)$/, `past what Redis holds: ${String(resumed.headers['x-resume-status'])}`)
  await resumed.waitForEvents(11)
  const [notice, ...live] = resumed.events
  t.equal(notice?.event, 'resume-status', 'the answer comes in band first')
  t.match(JSON.parse(notice?.data ?? '{}'), { recovered: false })
  t.ok(live.every((event) => seqOf(event.id) > seqOf(lastSeen)), `then live events, all past the client's id ${seqOf(lastSeen)}: the ids Redis lost are never issued again`)

  // Once the owner has appended to the promoted replica, the hole is booked: every id before its end is answered evicted.
  for (const id of [lastSeen, beforeLag]) {
    const again = await SseClient.open(proxy.url('/events'), { 'last-event-id': id })
    t.teardown(() => again.close())
    t.equal(again.headers['x-resume-status'], 'unrecoverable; reason=evicted', `a resume from seq ${seqOf(id)} is told evicted`)
    again.close()
  }
})
