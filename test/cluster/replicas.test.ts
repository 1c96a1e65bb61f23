import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { startDemoUpstream } from '../../examples/demo/mcp-server.js'
import { CountingUpstream } from '../helpers/counting-upstream.js'
import { startReplica, type Replica } from '../helpers/replica-process.js'
import { SseClient } from '../helpers/sse-client.js'
import { exactSequence, numbersOf, waitForNumber } from '../helpers/numbered-events.js'

// Several replicas, as separate processes, sharing the Redis on 127.0.0.1:6379.
const REDIS_URL = 'redis://127.0.0.1:6379'

async function redisFor (test: Test, keyPrefix: string): Promise<Redis> {
  const redis = new Redis(REDIS_URL)
  test.teardown(async () => {
    const keys = await redis.keys(`${keyPrefix}*`)
    if (keys.length > 0) await redis.unlink(...keys)
    await redis.quit()
  })
  return redis
}

function replicaOptions (keyPrefix: string, upstream: CountingUpstream, leaseTtlMs = 1000): unknown {
  return {
    routes: [{ kind: 'sse', path: '/events', upstream: upstream.url(), upstreamReplays: upstream.replays, reconnect: { baseDelayMs: 50, maxRetries: 0 } }],
    store: { kind: 'redis', url: REDIS_URL, keyPrefix, leaseTtlMs },
    metrics: { enabled: false }
  }
}

async function replicas (test: Test, count: number, options: unknown): Promise<Replica[]> {
  return await Promise.all(Array.from({ length: count }, async () => await startReplica(test, options)))
}

t.test('a client streams through replica A, then resumes on replica B: nothing missing, nothing twice, though the upstream cannot replay', async (t) => {
  const keyPrefix = `test:${randomUUID()}:`
  await redisFor(t, keyPrefix)
  const upstream = await CountingUpstream.start({ replays: false, intervalMs: 10 })
  t.teardown(async () => await upstream.close())
  const [a, b] = await replicas(t, 2, replicaOptions(keyPrefix, upstream)) as [Replica, Replica]

  const onA = await SseClient.open(`${a.url}/events`)
  await waitForNumber(onA, 20)
  onA.close()
  await onA.ended
  // The upstream goes on meanwhile; replica A keeps reading and recording it.
  await new Promise((resolve) => setTimeout(resolve, 300))
  const lastSeen = onA.events.at(-1)?.id ?? ''
  const onB = await SseClient.open(`${b.url}/events`, { 'last-event-id': lastSeen })
  t.teardown(() => onB.close())
  t.equal(onB.headers['x-resume-status'], 'recovered')
  const resumedFrom = numbersOf(onA).at(-1) ?? 0
  await waitForNumber(onB, resumedFrom + 60)
  onB.close()

  const seen = [...numbersOf(onA), ...numbersOf(onB)]
  t.ok(exactSequence(seen), `1..${seen.length}, each once (resumed after ${resumedFrom})`)
  t.equal(upstream.connections.length, 1, 'replica A kept the only upstream connection: B served the resume from Redis')
  t.ok(onB.events.every((event) => event.id?.startsWith(lastSeen.replace(/\d+$/, ''))), 'the same stream, the same ids, on both replicas')
})

t.test('the owner replica is SIGKILLed mid-stream: another takes the upstream over from the recorded cursor, and the client\'s sequence is exact', async (t) => {
  const keyPrefix = `test:${randomUUID()}:`
  const redis = await redisFor(t, keyPrefix)
  const leaseTtlMs = 1000
  const upstream = await CountingUpstream.start({ replays: true, intervalMs: 10 })
  t.teardown(async () => await upstream.close())
  const [a, b] = await replicas(t, 2, replicaOptions(keyPrefix, upstream, leaseTtlMs)) as [Replica, Replica]

  const onA = await SseClient.open(`${a.url}/events`)
  await waitForNumber(onA, 30)
  await a.kill('SIGKILL')
  const killedAt = Date.now()
  const lastSeen = onA.events.at(-1)?.id ?? ''
  const streamId = lastSeen.split('.')[0] ?? ''
  const sessionId = await redis.get(`${keyPrefix}{${streamId}}:sid`) ?? ''
  const cursor = await redis.hget(`${keyPrefix}{${sessionId}}:m:${streamId}`, 'cursor')

  const onB = await SseClient.open(`${b.url}/events`, { 'last-event-id': lastSeen })
  t.teardown(() => onB.close())
  t.equal(onB.headers['x-resume-status'], 'recovered')
  const takeover = await upstream.waitForConnections(2, leaseTtlMs + 5000)
  t.ok(takeover.openedAt - killedAt <= leaseTtlMs + 2000, `taken over ${takeover.openedAt - killedAt} ms after the kill (lease ${leaseTtlMs} ms)`)
  t.equal(takeover.lastEventId, cursor, 'the new owner resumed the upstream from the recorded cursor')
  t.ok(Number(cursor) >= (numbersOf(onA).at(-1) ?? 0), 'the cursor is at least what the client saw')

  await waitForNumber(onB, Number(cursor) + 50)
  const seen = [...numbersOf(onA), ...numbersOf(onB)]
  t.ok(exactSequence(seen), `1..${seen.length}, each once, across the kill`)
})

t.test('the owner replica is SIGKILLed in front of an upstream that cannot replay: the client on another replica gets an explicit gap where events were lost, never recovered-and-silent', async (t) => {
  const keyPrefix = `test:${randomUUID()}:`
  await redisFor(t, keyPrefix)
  const upstream = await CountingUpstream.start({ replays: false, intervalMs: 10 })
  t.teardown(async () => await upstream.close())
  const [a, b] = await replicas(t, 2, replicaOptions(keyPrefix, upstream, 1000)) as [Replica, Replica]
  const onA = await SseClient.open(`${a.url}/events`)
  await waitForNumber(onA, 30)
  await a.kill('SIGKILL')
  const onB = await SseClient.open(`${b.url}/events`, { 'last-event-id': onA.events.at(-1)?.id ?? '' })
  t.teardown(() => onB.close())
  await upstream.waitForConnections(2, 6000)
  await onB.waitForEvents(onB.events.findIndex((event) => event.event === 'resume-status') + 30, 10000).catch(() => {})
  const gapAt = onB.events.findIndex((event) => event.event === 'resume-status')
  t.ok(gapAt >= 0, 'the gap is told in the stream')
  t.match(JSON.parse(onB.events[gapAt]?.data ?? '{}'), { reason: 'upstream-gap', cause: 'takeover' })
  const before = [...numbersOf(onA), ...onB.events.slice(0, gapAt).map((event) => Number(event.data))]
  const after = onB.events.slice(gapAt + 1).map((event) => Number(event.data))
  t.ok(exactSequence(before), `1..${before.length}, once each, up to the gap`)
  t.ok(after.length > 0 && after.every((n, index) => n === (after[0] ?? 0) + index), `then contiguous from ${after[0] ?? '?'}`)
  t.ok((after[0] ?? 0) > before.length + 1, `the numbers the upstream sent while no replica read it (${before.length + 1}..${(after[0] ?? 0) - 1}) are lost, and only there`)
})

t.test('a stopped owner (SIGSTOP past its lease) is fenced when it wakes: its late events are refused, and it stops reading', async (t) => {
  const keyPrefix = `test:${randomUUID()}:`
  await redisFor(t, keyPrefix)
  const leaseTtlMs = 1000
  const upstream = await CountingUpstream.start({ replays: true, intervalMs: 10 })
  t.teardown(async () => await upstream.close())
  const [a, b] = await replicas(t, 2, replicaOptions(keyPrefix, upstream, leaseTtlMs)) as [Replica, Replica]

  const onA = await SseClient.open(`${a.url}/events`)
  await waitForNumber(onA, 20)
  onA.close()
  const onB = await SseClient.open(`${b.url}/events`, { 'last-event-id': onA.events.at(-1)?.id ?? '' })
  t.teardown(() => onB.close())
  await a.stop()
  await upstream.waitForConnections(2, leaseTtlMs + 5000)
  const progress = numbersOf(onB).at(-1) ?? 0
  await a.cont()
  const first = upstream.connections[0]
  const deadline = Date.now() + 5000
  while (first?.closedAt === undefined && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  t.not(first?.closedAt, undefined, 'the woken replica closed its upstream connection')
  await waitForNumber(onB, progress + 80)
  const seen = [...numbersOf(onA), ...numbersOf(onB)]
  t.ok(exactSequence(seen), `1..${seen.length}, each once: nothing of the stale owner's got through`)
  t.equal(upstream.open, 1, 'one replica reads the upstream')
})

t.test('an MCP session opened through replica A works for requests through replica B', async (t) => {
  const keyPrefix = `test:${randomUUID()}:`
  await redisFor(t, keyPrefix)
  const upstream = await startDemoUpstream()
  t.teardown(async () => await upstream.close())
  const options = {
    routes: [{ kind: 'streamable-http', path: '/mcp', upstream: `${upstream.origin}/mcp` }],
    store: { kind: 'redis', url: REDIS_URL, keyPrefix },
    metrics: { enabled: false }
  }
  const [a, b] = await replicas(t, 2, options) as [Replica, Replica]

  const throughA = new StreamableHTTPClientTransport(new URL(`${a.url}/mcp`))
  const clientA = new Client({ name: 'replica-a', version: '1.0.0' })
  await clientA.connect(throughA)
  const sessionId = throughA.sessionId
  t.ok(sessionId, 'replica A opened the session')
  t.same(await clientA.callTool({ name: 'echo', arguments: { text: 'via A' } }), { content: [{ type: 'text', text: 'via A' }] })

  // A client that already holds a session id does not initialize again (MCP SDK): it only sends requests.
  const throughB = new StreamableHTTPClientTransport(new URL(`${b.url}/mcp`), { sessionId })
  const clientB = new Client({ name: 'replica-b', version: '1.0.0' })
  await clientB.connect(throughB)
  t.same(await clientB.callTool({ name: 'echo', arguments: { text: 'via B' } }), { content: [{ type: 'text', text: 'via B' }] }, 'replica B knows the session and its upstream session')
  t.equal(upstream.sessionIds.length, 1, 'one upstream session for both replicas')
  await throughA.terminateSession()
  const after = await fetch(`${b.url}/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId ?? '' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' })
  })
  t.equal(after.status, 404, 'a session deleted through A is gone on B too')
  for (const transport of [throughA, throughB]) {
    transport.onerror = () => {}
  }
  await clientA.close().catch(() => {})
  await clientB.close().catch(() => {})
})
