import t, { type Test } from 'tap'
import type { Redis } from 'ioredis'
import { startDemoUpstream } from '../../examples/demo/mcp-server.js'
import { sessionKey } from '../../lib/store/redis/keys.js'
import type { McpSseResilienceOptions } from '../../lib/index.js'
import { CountingUpstream } from '../helpers/counting-upstream.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startRedisServer } from '../helpers/redis-process.js'
import { RecordingMcpUpstream } from '../helpers/recording-mcp-upstream.js'
import { SseClient } from '../helpers/sse-client.js'
import { exactSequence, numbersOf, openMcpSession, openMcpSessionWithStream, waitForNumber } from '../helpers/numbered-events.js'
import { startTcpRelay } from '../helpers/tcp-relay.js'
import { TEST_REDIS_URL, testRedis } from '../helpers/test-redis.js'

// Two plugin instances in this process sharing one Redis: the same code paths as
// replicas in separate processes (test/cluster/replicas.test.ts), with coverage.

type Store = NonNullable<McpSseResilienceOptions['store']>

async function sseReplicas (test: Test, upstream: CountingUpstream, store: Store, count = 2): Promise<RunningProxy[]> {
  const options: McpSseResilienceOptions = {
    routes: [{ kind: 'sse', path: '/events', upstream: upstream.url(), upstreamReplays: upstream.replays, reconnect: { baseDelayMs: 20, maxRetries: 0 } }],
    store: { kind: 'redis', url: TEST_REDIS_URL, leaseTtlMs: 600, ...store }
  }
  const proxies: RunningProxy[] = []
  for (let i = 0; i < count; i++) proxies.push(await startProxy(test, options))
  return proxies
}

/** Two instances whose streams keep their upstream 1 s after their last client left. */
async function instancesWithOneSecondGrace (test: Test, keyPrefix: string): Promise<{ upstream: CountingUpstream, a: RunningProxy, b: RunningProxy }> {
  const upstream = await CountingUpstream.start({ replays: false })
  test.teardown(async () => await upstream.close())
  const options: McpSseResilienceOptions = {
    routes: [{ kind: 'sse', path: '/events', upstream: upstream.url() }],
    store: { kind: 'redis', url: TEST_REDIS_URL, keyPrefix },
    sessions: { detachGraceSeconds: 1 }
  }
  return { upstream, a: await startProxy(test, options), b: await startProxy(test, options) }
}

/** Two instances with one streamable-http route, /mcp, in front of `upstreamOrigin`. */
async function mcpInstances (test: Test, upstreamOrigin: string, store: Store): Promise<{ a: RunningProxy, b: RunningProxy }> {
  const options: McpSseResilienceOptions = {
    routes: [{ kind: 'streamable-http', path: '/mcp', upstream: `${upstreamOrigin}/mcp` }],
    store: { kind: 'redis', url: TEST_REDIS_URL, ...store }
  }
  return { a: await startProxy(test, options), b: await startProxy(test, options) }
}

async function metric (proxy: RunningProxy, name: string): Promise<number> {
  const text = await (await fetch(proxy.url('/metrics'))).text()
  const line = text.split('\n').find((candidate) => candidate.startsWith(name))
  return Number(line?.split(' ').at(-1) ?? 0)
}

async function until (condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

t.test('resume on the other instance: replay from Redis, then live, exact; the owner keeps the only upstream connection', async (t) => {
  const { keyPrefix } = testRedis(t)
  const upstream = await CountingUpstream.start({ replays: false })
  t.teardown(async () => await upstream.close())
  const [a, b] = await sseReplicas(t, upstream, { keyPrefix }) as [RunningProxy, RunningProxy]
  const onA = await SseClient.open(a.url('/events'))
  await waitForNumber(onA, 15)
  onA.close()
  await new Promise((resolve) => setTimeout(resolve, 100))
  const onB = await SseClient.open(b.url('/events'), { 'last-event-id': onA.events.at(-1)?.id ?? '' })
  t.equal(onB.headers['x-resume-status'], 'recovered')
  await waitForNumber(onB, (numbersOf(onA).at(-1) ?? 0) + 40)
  onB.close()
  t.ok(exactSequence([...numbersOf(onA), ...numbersOf(onB)]), 'no gap, no duplicate')
  t.equal(upstream.connections.length, 1)
  t.ok(await metric(a, 'sse_upstream_leases_held') >= 1, 'A holds the lease')
  t.equal(await metric(b, 'sse_upstream_leases_held'), 0)
  t.ok(await metric(b, 'sse_store_operations_total{op="read",result="ok"}') >= 1, 'store operations are counted')
})

t.test('an id of another route, or a stream Redis never had, is unknown on the other instance too', async (t) => {
  const { keyPrefix } = testRedis(t)
  const upstream = await CountingUpstream.start({ replays: false })
  t.teardown(async () => await upstream.close())
  const [a] = await sseReplicas(t, upstream, { keyPrefix }) as [RunningProxy]
  const other = await startProxy(t, {
    routes: [{ kind: 'sse', path: '/other', upstream: upstream.url() }],
    store: { kind: 'redis', url: TEST_REDIS_URL, keyPrefix }
  })
  const onA = await SseClient.open(a.url('/events'))
  await waitForNumber(onA, 3)
  const id = onA.events.at(-1)?.id ?? ''
  const stolen = await SseClient.open(other.url('/other'), { 'last-event-id': id })
  t.teardown(() => stolen.close())
  t.equal(stolen.headers['x-resume-status'], 'unrecoverable; reason=unknown', 'a stream of another route is not found')
  const never = await SseClient.open(other.url('/other'), { 'last-event-id': `${'A'.repeat(22)}${id.slice(22)}` })
  t.teardown(() => never.close())
  t.equal(never.headers['x-resume-status'], 'unrecoverable; reason=unknown')
  onA.close()
})

/**
 * Instance A streams to a client, then closes: B takes the upstream over. Resolves once B has
 * recorded past 30, with a client resuming on B from the last event A's client got.
 */
async function handedOverOnClose (test: Test, replays: boolean) {
  const { redis, keyPrefix } = testRedis(test)
  const upstream = await CountingUpstream.start({ replays })
  test.teardown(async () => await upstream.close())
  const [a, b] = await sseReplicas(test, upstream, { keyPrefix }) as [RunningProxy, RunningProxy]
  const onA = await SseClient.open(a.url('/events'))
  await waitForNumber(onA, 10)
  const lastSeen = onA.events.at(-1)?.id ?? ''
  await a.app.close()
  await onA.ended
  const takeover = await upstream.waitForConnections(2, 3000)
  const streamId = lastSeen.split('.')[0] ?? ''
  const sessionId = await redis.get(`${keyPrefix}{${streamId}}:sid`) ?? ''
  await until(async () => Number(await redis.hget(`${keyPrefix}{${sessionId}}:m:${streamId}`, 'last')) > 30, 5000, 'the new owner to record')
  const onB = await SseClient.open(b.url('/events'), { 'last-event-id': lastSeen })
  test.teardown(() => onB.close())
  return { b, onA, onB, takeover }
}

t.test('an instance that closes hands its streams over at once: the other one takes the upstream over from the cursor, even with no client', async (t) => {
  const { b, onA, onB, takeover } = await handedOverOnClose(t, true)
  t.ok(onA.retries.length > 0, 'the client was told when to come back')
  t.ok(Number(takeover.lastEventId) >= (numbersOf(onA).at(-1) ?? 0), 'the upstream is resumed after what was recorded')
  t.equal(await metric(b, 'sse_upstream_takeovers_total'), 1)
  t.equal(onB.headers['x-resume-status'], 'recovered', 'B owns the stream now and serves it locally')
  await waitForNumber(onB, 60)
  t.ok(exactSequence([...numbersOf(onA), ...numbersOf(onB)]))
})

t.test('a takeover from an upstream that cannot replay: the client resuming on the new owner is told where the gap is, never a silent one', async (t) => {
  const { b, onA, onB } = await handedOverOnClose(t, false)
  t.match(onB.headers['x-resume-status'], /^recovered; upstream-gaps=1$/, 'recovered, and one gap in what is replayed')
  await onB.waitForEvents(20)
  const [gap, ...after] = onB.events.slice(onB.events.findIndex((event) => event.event === 'resume-status'))
  t.match(JSON.parse(gap?.data ?? '{}'), { reason: 'upstream-gap', cause: 'takeover' })
  const before = numbersOf(onA).concat(onB.events.slice(0, onB.events.indexOf(gap!)).map((event) => Number(event.data)))
  t.ok(exactSequence(before), 'every event recorded before the takeover, once')
  const resumedAt = Number(after[0]?.data)
  t.ok(resumedAt > (before.at(-1) ?? 0), `the upstream went on from its own position (${resumedAt}), not from the cursor: what it sent meanwhile is gone, and the notice says so`)
  t.ok(after.every((event, index) => Number(event.data) === resumedAt + index), 'contiguous again after the gap')
  t.equal(await metric(b, 'sse_upstream_gaps_total{route_kind="sse",route="/events",cause="takeover"}'), 1)
})

t.test('a stream whose lease another replica took is fenced: its owner stops reading and sends its client away', async (t) => {
  const { redis, keyPrefix } = testRedis(t)
  const upstream = await CountingUpstream.start({ replays: true })
  t.teardown(async () => await upstream.close())
  const [a] = await sseReplicas(t, upstream, { keyPrefix }, 1) as [RunningProxy]
  const onA = await SseClient.open(a.url('/events'))
  await waitForNumber(onA, 5)
  const streamId = (onA.events.at(-1)?.id ?? '').split('.')[0] ?? ''
  const sessionId = await redis.get(`${keyPrefix}{${streamId}}:sid`) ?? ''
  // Another replica's claim, by hand: the lease goes, and a newer fencing token is issued.
  await redis.del(`${keyPrefix}{${sessionId}}:lease:${streamId}`)
  await redis.hincrby(`${keyPrefix}{${sessionId}}:m:${streamId}`, 'fence', 1)
  await redis.set(`${keyPrefix}{${sessionId}}:lease:${streamId}`, 'someone-else:9', 'PX', 60000)
  await onA.ended
  t.ok(onA.retries.includes(100), 'the client is told to come back at once')
  await until(() => upstream.connections[0]?.closedAt !== undefined, 3000, 'the upstream connection to close')
  const recorded = Number(await redis.hget(`${keyPrefix}{${sessionId}}:m:${streamId}`, 'last'))
  t.ok(recorded >= (numbersOf(onA).at(-1) ?? 0), 'nothing the client saw is missing from Redis')
  t.ok(exactSequence(numbersOf(onA)))
})

t.test('an MCP session works through either instance: POSTs, the standalone stream resumed on the other, DELETE', async (t) => {
  const { keyPrefix } = testRedis(t)
  const upstream = await startDemoUpstream()
  t.teardown(async () => await upstream.close())
  const { a, b } = await mcpInstances(t, upstream.origin, { keyPrefix })
  const { sessionId, headers } = await openMcpSession(a.url('/mcp'))
  await fetch(b.url('/mcp'), { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })
  const subscribe = await fetch(b.url('/mcp'), { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { text: 'via B' } } }) })
  t.match(await subscribe.text(), /via B/, 'a tools/call through B')

  const standalone = await SseClient.open(a.url('/mcp'), { 'mcp-session-id': sessionId })
  await fetch(b.url('/mcp'), { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'announce', arguments: {} } }) }).then(async (response) => await response.text())
  const [announced] = await standalone.waitForEvents(1)
  standalone.close()
  const resumed = await SseClient.open(b.url('/mcp'), { 'mcp-session-id': sessionId, 'last-event-id': announced?.id ?? '' })
  t.equal(resumed.headers['x-resume-status'], 'recovered', 'the standalone stream resumes on B, from Redis')
  await fetch(a.url('/mcp'), { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'announce', arguments: {} } }) }).then(async (response) => await response.text())
  const [next] = await resumed.waitForEvents(1)
  t.match(JSON.parse(next?.data ?? '{}'), { method: 'notifications/tools/list_changed' }, 'and goes on live')
  resumed.close()

  const stranger = await SseClient.open(b.url('/mcp'), { 'last-event-id': announced?.id ?? '' })
  t.teardown(() => stranger.close())
  t.not(stranger.headers['x-resume-status'], 'recovered', 'without the session, its stream is not found')

  const deleted = await fetch(b.url('/mcp'), { method: 'DELETE', headers })
  t.equal(deleted.status, 200)
  const after = await fetch(a.url('/mcp'), { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 10, method: 'tools/list' }) })
  t.equal(after.status, 404, 'deleted through B, gone on A')
})

t.test('a DELETE through one instance while the other holds the standalone stream: the upstream ends that stream first, and it does not open the session again', async (t) => {
  const { redis, keyPrefix } = testRedis(t)
  const upstream = await RecordingMcpUpstream.start()
  t.teardown(async () => await upstream.close())
  upstream.deleteAnswerDelayMs = 300
  const { a, b } = await mcpInstances(t, upstream.origin, { keyPrefix })
  const { sessionId, headers, standalone } = await openMcpSessionWithStream(t, a.url('/mcp'))

  const deleted = await fetch(b.url('/mcp'), { method: 'DELETE', headers })
  t.equal(deleted.status, 200)
  await standalone.ended
  t.equal(upstream.sessionIds.length, 1, 'no second upstream session')
  t.equal(await redis.exists(sessionKey(keyPrefix, sessionId)), 0, 'the session record is gone from Redis')
  for (const instance of [a, b]) {
    const after = await fetch(instance.url('/mcp'), { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }) })
    t.equal(after.status, 404, 'the session is gone on both instances')
  }
})

t.test('Redis restarted without its data: streams are let go, and every old id gets an explicit unrecoverable answer', async (t) => {
  const server = await startRedisServer(t)
  const upstream = await CountingUpstream.start({ replays: true })
  t.teardown(async () => await upstream.close())
  const [a] = await sseReplicas(t, upstream, { url: server.url, keyPrefix: 'restart:' }, 1) as [RunningProxy]
  const onA = await SseClient.open(a.url('/events'))
  await waitForNumber(onA, 10)
  await server.restart()
  await onA.ended
  const lastSeen = onA.events.at(-1)?.id ?? ''
  await until(async () => await metric(a, 'sse_store_resets_total') === 1, 5000, 'the new epoch to be noticed')
  const resumed = await SseClient.open(a.url('/events'), { 'last-event-id': lastSeen })
  t.teardown(() => resumed.close())
  t.equal(resumed.headers['x-resume-status'], 'unrecoverable; reason=store-reset', 'never wrong data: the client is told')
  t.ok(await metric(a, 'sse_store_unrecoverable_resumes_total{reason="store-reset"}') >= 1)
  const [notice] = await resumed.waitForEvents(1)
  t.equal(notice?.event, 'resume-status')
  await waitForNumber(resumed, 5)
  t.ok(exactSequence(numbersOf(onA)), 'what the client saw before was exact')
})

t.test('the connection to Redis is cut: owner and follower both recover, with no gap and no duplicate', async (t) => {
  const { keyPrefix } = testRedis(t)
  const relay = await startTcpRelay(t, Number(new URL(TEST_REDIS_URL).port || 6379))
  const upstream = await CountingUpstream.start({ replays: false })
  t.teardown(async () => await upstream.close())
  const [a, b] = await sseReplicas(t, upstream, { url: `redis://127.0.0.1:${relay.port}`, keyPrefix, leaseTtlMs: 3000 }) as [RunningProxy, RunningProxy]
  const onA = await SseClient.open(a.url('/events'))
  await waitForNumber(onA, 5)
  const follower = await SseClient.open(b.url('/events'), { 'last-event-id': onA.events.at(-1)?.id ?? '' })
  t.teardown(() => follower.close())
  await waitForNumber(follower, 10)
  relay.cutAll()
  await new Promise((resolve) => setTimeout(resolve, 300))
  relay.cutAll()
  const before = numbersOf(onA).at(-1) ?? 0
  await waitForNumber(onA, before + 60)
  await waitForNumber(follower, before + 60)
  t.ok(exactSequence(numbersOf(onA)), 'the owner\'s client: exact')
  t.ok(await metric(a, 'sse_store_connections_lost_total{connection="commands"}') >= 1, 'the cut is counted')
  for (const proxy of [a, b]) t.equal(await metric(proxy, 'sse_store_connections_up'), 2, 'and both connections are up again')
  const followed = numbersOf(follower)
  const start = followed[0] ?? 0
  t.ok(followed.every((n, index) => n === start + index), 'the follower: exact, across the cut')
  onA.close()
})

t.test('Redis unreachable: a new stream gets 503 with Retry-After; once it is back, streams open again', async (t) => {
  const { keyPrefix } = testRedis(t)
  const relay = await startTcpRelay(t, Number(new URL(TEST_REDIS_URL).port || 6379))
  const upstream = await CountingUpstream.start({ replays: false })
  t.teardown(async () => await upstream.close())
  const [a] = await sseReplicas(t, upstream, { url: `redis://127.0.0.1:${relay.port}`, keyPrefix }, 1) as [RunningProxy]
  relay.pause()
  await until(async () => (await fetch(a.url('/events'))).status === 503, 5000, 'a 503')
  const refused = await fetch(a.url('/events'))
  t.equal(refused.status, 503)
  t.equal(refused.headers.get('retry-after'), '5')
  t.match(await refused.json(), { error: { data: { code: 'FST_MCP_SSE_STORE_UNAVAILABLE' } } })
  t.equal(upstream.connections.length, 0, 'the upstream never saw the refused requests')
  relay.resume()
  await until(async () => {
    const client = await SseClient.open(a.url('/events'))
    client.close()
    return client.status === 200
  }, 10000, 'streams to open again')
  t.pass('streams open again')
})

t.test('a replica\'s Redis connections stay the same as its sessions grow from 10 to 1000', async (t) => {
  const server = await startRedisServer(t)
  const upstream = await CountingUpstream.start({ replays: false, intervalMs: 1000 })
  t.teardown(async () => await upstream.close())
  const [a] = await sseReplicas(t, upstream, { url: server.url, keyPrefix: 'conn:', leaseTtlMs: 5000 }, 1) as [RunningProxy]
  const { Redis: RedisClient } = await import('ioredis')
  const probe: Redis = new RedisClient(server.url)
  t.teardown(async () => await probe.quit())
  const proxyConnections = async (): Promise<number> => {
    const list = await probe.client('LIST') as string
    return list.split('\n').filter((line) => /name=mcp-sse-/.test(line)).length
  }
  const clients: SseClient[] = []
  t.teardown(() => { for (const client of clients) client.close() })
  const openUntil = async (count: number): Promise<void> => {
    while (clients.length < count) {
      const batch = await Promise.all(Array.from({ length: Math.min(100, count - clients.length) }, async () => await SseClient.open(a.url('/events'))))
      clients.push(...batch)
    }
    await until(async () => await metric(a, 'sse_upstream_leases_held') === count, 20000, `${count} leases`)
  }
  await openUntil(10)
  const at10 = await proxyConnections()
  await openUntil(1000)
  const at1000 = await proxyConnections()
  t.equal(at10, 2, 'one command connection and one subscriber')
  t.equal(at1000, at10, 'the same with 1000 sessions')
})

t.test('a follower trusts only the history: a skipped seq is filled from it, an injected event never reaches the client, and a follower left behind by eviction is cut', async (t) => {
  const { redis, keyPrefix } = testRedis(t)
  const upstream = await CountingUpstream.start({ replays: false, intervalMs: 20 })
  t.teardown(async () => await upstream.close())
  const options: McpSseResilienceOptions = {
    routes: [{ kind: 'sse', path: '/events', upstream: upstream.url() }],
    store: { kind: 'redis', url: TEST_REDIS_URL, keyPrefix },
    history: { maxEvents: 20 }
  }
  const a = await startProxy(t, options)
  const b = await startProxy(t, options)
  const onA = await SseClient.open(a.url('/events'))
  await waitForNumber(onA, 5)
  const lastSeen = onA.events.at(-1)?.id ?? ''
  const [streamId, epoch] = lastSeen.split('.')
  const sessionId = await redis.get(`${keyPrefix}{${streamId ?? ''}}:sid`) ?? ''
  const channel = `${keyPrefix}{${sessionId}}:live:${streamId ?? ''}`
  const follower = await SseClient.open(b.url('/events'), { 'last-event-id': lastSeen })
  await waitForNumber(follower, 10)
  // A message far ahead: as if pub/sub had lost what came between.
  const injected = `id: ${streamId ?? ''}.${epoch ?? ''}.999999\ndata: injected\n\n`
  await redis.publish(channel, `999999 ${Buffer.byteLength(injected)}\n${injected}`)
  await redis.publish(channel, 'not a message this proxy writes')
  await waitForNumber(follower, 20)
  t.notOk(follower.events.some((event) => event.data === 'injected'), 'what the history does not hold is never sent')
  const followed = numbersOf(follower)
  t.ok(followed.every((n, index) => n === (followed[0] ?? 0) + index), 'still exact')

  // Redis evicts everything under the follower, then a skipped seq makes it read: it cannot be served without a gap.
  const meta = `${keyPrefix}{${sessionId}}:m:${streamId ?? ''}`
  onA.close()
  await a.app.close()
  await redis.hset(meta, 'evicted', 1_000_000)
  await redis.publish(channel, '999999 1\nx')
  await follower.ended
  t.notOk(follower.completed, 'the follower is cut, and may resume to get the explicit answer')
})

t.test('an end published for a stream ends its followers once they have what is recorded', async (t) => {
  const { redis, keyPrefix } = testRedis(t)
  const upstream = await CountingUpstream.start({ replays: false })
  t.teardown(async () => await upstream.close())
  const options: McpSseResilienceOptions = {
    // One attempt after the upstream goes away, then the stream is over.
    routes: [{ kind: 'sse', path: '/events', upstream: upstream.url(), reconnect: { baseDelayMs: 20, maxRetries: 1 } }],
    store: { kind: 'redis', url: TEST_REDIS_URL, keyPrefix }
  }
  const a = await startProxy(t, options)
  const b = await startProxy(t, options)
  const onA = await SseClient.open(a.url('/events'))
  await waitForNumber(onA, 5)
  const lastSeen = onA.events.at(-1)?.id ?? ''
  const streamId = lastSeen.split('.')[0] ?? ''
  const sessionId = await redis.get(`${keyPrefix}{${streamId}}:sid`) ?? ''
  const follower = await SseClient.open(b.url('/events'), { 'last-event-id': lastSeen })
  await waitForNumber(follower, 10)
  await upstream.close()
  await onA.ended
  await follower.ended
  t.ok(follower.completed, 'the follower\'s response ended cleanly')
  const recorded = Number(await redis.hget(`${keyPrefix}{${sessionId}}:m:${streamId}`, 'last'))
  t.equal(follower.events.at(-1)?.id, `${lastSeen.replace(/\d+$/, '')}${recorded}`, 'with everything recorded')
  const late = await SseClient.open(b.url('/events'), { 'last-event-id': lastSeen })
  await late.ended
  t.equal(late.headers['x-resume-status'], 'recovered')
  t.ok(late.completed && late.events.length === follower.events.length, 'a resume after the end replays the rest and closes')
})

t.test('an MCP standalone stream is taken over when its instance closes, with the upstream session', async (t) => {
  const { keyPrefix } = testRedis(t)
  const upstream = await startDemoUpstream()
  t.teardown(async () => await upstream.close())
  const { a, b } = await mcpInstances(t, upstream.origin, { keyPrefix, leaseTtlMs: 600 })
  const { sessionId, headers } = await openMcpSession(a.url('/mcp'))
  await fetch(a.url('/mcp'), { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })
  const standalone = await SseClient.open(a.url('/mcp'), { 'mcp-session-id': sessionId })
  await fetch(a.url('/mcp'), { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'announce', arguments: {} } }) }).then(async (response) => await response.text())
  const [first] = await standalone.waitForEvents(1)
  await a.app.close()
  await standalone.ended
  await until(async () => await metric(b, 'sse_upstream_takeovers_total') === 1, 5000, 'B to take the standalone stream over')
  const resumed = await SseClient.open(b.url('/mcp'), { 'mcp-session-id': sessionId, 'last-event-id': first?.id ?? '' })
  t.teardown(() => resumed.close())
  t.equal(resumed.headers['x-resume-status'], 'recovered; upstream-gaps=1')
  await fetch(b.url('/mcp'), { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'announce', arguments: {} } }) }).then(async (response) => await response.text())
  const events = await resumed.waitForEvents(3)
  t.match(JSON.parse(events[0]?.data ?? '{}'), { reason: 'upstream-gap', cause: 'takeover' }, 'the demo server keeps no event store: the takeover is a gap, told in place')
  t.match(JSON.parse(events[1]?.data ?? '{}'), { method: 'notifications/tools/list_changed' }, 'and in MCP terms')
  t.match(JSON.parse(events[2]?.data ?? '{}'), { method: 'notifications/tools/list_changed' }, 'the taken-over standalone stream carries the upstream session\'s notifications')
  t.equal(upstream.sessionIds.length, 1, 'in the same upstream session')
})

t.test('while Redis is away, a resume of a stream held elsewhere and a session held elsewhere get 503; local ones are served', async (t) => {
  const { keyPrefix } = testRedis(t)
  const relay = await startTcpRelay(t, Number(new URL(TEST_REDIS_URL).port || 6379))
  const upstream = await startDemoUpstream()
  t.teardown(async () => await upstream.close())
  const local = await startProxy(t, {
    routes: [{ kind: 'streamable-http', path: '/mcp', upstream: `${upstream.origin}/mcp` }],
    store: { kind: 'redis', url: TEST_REDIS_URL, keyPrefix }
  })
  const cut = await startProxy(t, {
    routes: [{ kind: 'streamable-http', path: '/mcp', upstream: `${upstream.origin}/mcp` }],
    store: { kind: 'redis', url: `redis://127.0.0.1:${relay.port}`, keyPrefix }
  })
  const { sessionId, headers, text } = await openMcpSession(local.url('/mcp'))
  const [, eventId] = /^id: (.+)$/m.exec(text) ?? []
  relay.pause()
  await until(async () => (await fetch(cut.url('/mcp'), { method: 'POST', headers, body: '{"jsonrpc":"2.0","id":5,"method":"tools/list"}' })).status === 503, 5000, 'a 503 for the session')
  const resume = await fetch(cut.url('/mcp'), { headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId, 'last-event-id': eventId ?? '' } })
  t.equal(resume.status, 503, 'the resume cannot be looked up')
  t.equal(resume.headers.get('retry-after'), '5')
  const served = await fetch(local.url('/mcp'), { method: 'POST', headers, body: '{"jsonrpc":"2.0","id":6,"method":"tools/list"}' })
  t.equal(served.status, 200, 'the replica that reaches Redis serves the session')
  await served.text()
  relay.resume()
})

t.test('a stream whose client moved to another instance keeps its upstream past the grace period while followed there, and stops once no one follows', async (t) => {
  const { redis, keyPrefix } = testRedis(t)
  const { upstream, a, b } = await instancesWithOneSecondGrace(t, keyPrefix)
  const onA = await SseClient.open(a.url('/events'))
  await waitForNumber(onA, 5)
  onA.close()
  const follower = await SseClient.open(b.url('/events'), { 'last-event-id': onA.events.at(-1)?.id ?? '' })
  await new Promise((resolve) => setTimeout(resolve, 2500))
  const progress = numbersOf(follower).at(-1) ?? 0
  await waitForNumber(follower, progress + 20)
  t.equal(upstream.open, 1, 'past the grace period, the upstream still runs for the follower on B')
  follower.close()
  await until(() => upstream.open === 0, 5000, 'the upstream to stop')
  const streamId = (onA.events.at(-1)?.id ?? '').split('.')[0] ?? ''
  const sessionId = await redis.get(`${keyPrefix}{${streamId}}:sid`) ?? ''
  t.equal(await redis.hget(`${keyPrefix}{${sessionId}}:m:${streamId}`, 'finished'), '1', 'with no one following, it ended for good')
})

t.test('an owner cut off from Redis past its lease stops reading; another instance takes over from the cursor; the owner\'s late appends are refused', async (t) => {
  const { redis, keyPrefix } = testRedis(t)
  const relay = await startTcpRelay(t, Number(new URL(TEST_REDIS_URL).port || 6379))
  const upstream = await CountingUpstream.start({ replays: true })
  t.teardown(async () => await upstream.close())
  const route = { kind: 'sse' as const, path: '/events', upstream: upstream.url(), upstreamReplays: true, reconnect: { baseDelayMs: 20, maxRetries: 0 } }
  const a = await startProxy(t, { routes: [route], store: { kind: 'redis', url: `redis://127.0.0.1:${relay.port}`, keyPrefix, leaseTtlMs: 600 } })
  const b = await startProxy(t, { routes: [route], store: { kind: 'redis', url: TEST_REDIS_URL, keyPrefix, leaseTtlMs: 600 } })
  const onA = await SseClient.open(a.url('/events'))
  await waitForNumber(onA, 10)
  relay.pause()
  await onA.ended
  t.ok(onA.retries.includes(100), 'A lost its lease: its client is sent away to come back at once')
  const takeover = await upstream.waitForConnections(2, 5000)
  const lastSeen = onA.events.at(-1)?.id ?? ''
  const streamId = lastSeen.split('.')[0] ?? ''
  const sessionId = await redis.get(`${keyPrefix}{${streamId}}:sid`) ?? ''
  t.ok(Number(takeover.lastEventId) >= (numbersOf(onA).at(-1) ?? 0), 'B resumed the upstream after the recorded cursor')
  relay.resume()
  await until(() => upstream.connections[0]?.closedAt !== undefined, 5000, 'A to close its upstream connection')
  const onB = await SseClient.open(b.url('/events'), { 'last-event-id': lastSeen })
  t.teardown(() => onB.close())
  t.equal(onB.headers['x-resume-status'], 'recovered')
  await waitForNumber(onB, Number(takeover.lastEventId) + 30)
  t.ok(exactSequence([...numbersOf(onA), ...numbersOf(onB)]), 'exact: what A still tried to record once back was refused')
  const fence = Number(await redis.hget(`${keyPrefix}{${sessionId}}:m:${streamId}`, 'fence'))
  t.equal(fence, 2, 'one takeover, one new fencing token')
})

t.test('a Redis that hangs with its connections open: requests that need it get 503 within store.requestTimeoutMs, owners let go, and all recovers once it answers again', async (t) => {
  const server = await startRedisServer(t)
  const upstream = await CountingUpstream.start({ replays: true })
  t.teardown(async () => await upstream.close())
  const [a, b] = await sseReplicas(t, upstream, { url: server.url, keyPrefix: 'frozen:', requestTimeoutMs: 300 }) as [RunningProxy, RunningProxy]
  const onA = await SseClient.open(a.url('/events'))
  await waitForNumber(onA, 10)
  server.freeze()
  const lastSeen = onA.events.at(-1)?.id ?? ''
  const started = Date.now()
  const resume = await fetch(b.url('/events'), { headers: { accept: 'text/event-stream', 'last-event-id': lastSeen } })
  t.equal(resume.status, 503, 'a resume of a stream B does not hold cannot wait for a hung Redis')
  t.ok(Date.now() - started < 2000, `answered in ${Date.now() - started} ms`)
  await onA.ended
  t.ok(onA.retries.includes(100), 'the owner could not renew its lease: it let the stream go and sent its client away')
  server.thaw()
  await until(async () => await metric(a, 'sse_upstream_takeovers_total') + await metric(b, 'sse_upstream_takeovers_total') === 1, 5000, 'a takeover')
  const resumed = await SseClient.open(b.url('/events'), { 'last-event-id': lastSeen })
  t.teardown(() => resumed.close())
  t.equal(resumed.headers['x-resume-status'], 'recovered')
  await waitForNumber(resumed, (numbersOf(onA).at(-1) ?? 0) + 30)
  t.ok(exactSequence([...numbersOf(onA), ...numbersOf(resumed)]), 'exact across the hang')
})

t.test('a legacy-sse stream is taken over when its instance closes: the new owner initializes the new upstream session itself, and the client\'s POSTs and resume work there', async (t) => {
  const { keyPrefix } = testRedis(t)
  const upstream = await startDemoUpstream()
  t.teardown(async () => await upstream.close())
  const options: McpSseResilienceOptions = {
    routes: [{ kind: 'legacy-sse', path: '/sse', messagesPath: '/messages', upstream: `${upstream.origin}/sse` }],
    store: { kind: 'redis', url: TEST_REDIS_URL, keyPrefix, leaseTtlMs: 600 }
  }
  const a = await startProxy(t, options)
  const b = await startProxy(t, options)
  const legacy = await SseClient.open(a.url('/sse'))
  t.teardown(() => legacy.close())
  const [endpoint] = await legacy.waitForEvents(1)
  const post = async (proxy: RunningProxy, message: Record<string, unknown>): Promise<number> => {
    const answer = await fetch(proxy.url(endpoint?.data ?? ''), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', ...message }) })
    await answer.arrayBuffer()
    return answer.status
  }
  // Through B, which does not read the stream: the answers come on A's.
  t.equal(await post(b, { id: 1, method: 'initialize', params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }), 202)
  t.equal(await post(b, { method: 'notifications/initialized' }), 202)
  await legacy.waitForEvents(2)
  const [oldUpstreamSession] = upstream.sessionIds
  await a.app.close()
  await legacy.ended
  // The upstream session ends with A's connection: the next message for it gets 404 upstream.
  await until(async () => (await fetch(`${upstream.origin}/messages?sessionId=${oldUpstreamSession ?? ''}`, { method: 'POST' })).status === 404, 5000, 'the upstream to end the old session')
  t.equal(await post(b, { id: 2, method: 'tools/call', params: { name: 'echo', arguments: { text: 'on B' } } }), 202,
    'sent to the old upstream session, then, once B had opened the new one, there')
  t.equal(await metric(b, 'sse_upstream_takeovers_total'), 1)

  const resumed = await SseClient.open(b.url('/sse'), { 'last-event-id': legacy.events.at(-1)?.id ?? '' })
  t.teardown(() => resumed.close())
  t.match(resumed.headers['x-resume-status'], /^recovered/)
  await until(() => resumed.events.some((event) => event.data.includes('"id":2')), 5000, 'the answer on the resumed stream')
  const answer = resumed.events.find((event) => event.data.includes('"id":2'))
  t.match(JSON.parse(answer?.data ?? '{}'), { id: 2, result: { content: [{ text: 'on B' }] } }, 'the new upstream session was initialized: it answers the call')
  t.equal(upstream.sessionIds.length, 2, 'one new upstream session, opened by B')
  t.notOk(resumed.events.some((event) => event.data.includes('mcp-sse-resilience-')), 'the answers to B\'s own handshake never reached the client')
  t.match(await (await fetch(b.url('/metrics'))).text(), /sse_sessions_reestablished_total\{route_kind="legacy-sse",route="\/sse"\} 1/)
})

t.test('ids-only history: a follower that missed live events while Redis was away is cut, never sent empty events', async (t) => {
  const { keyPrefix } = testRedis(t)
  const relay = await startTcpRelay(t, Number(new URL(TEST_REDIS_URL).port || 6379))
  const upstream = await CountingUpstream.start({ replays: false, intervalMs: 20 })
  t.teardown(async () => await upstream.close())
  const route = { kind: 'sse' as const, path: '/events', upstream: upstream.url() }
  const a = await startProxy(t, { routes: [route], store: { kind: 'redis', url: TEST_REDIS_URL, keyPrefix }, history: { replay: false } })
  const b = await startProxy(t, { routes: [route], store: { kind: 'redis', url: `redis://127.0.0.1:${relay.port}`, keyPrefix }, history: { replay: false } })
  const onA = await SseClient.open(a.url('/events'))
  t.teardown(() => onA.close())
  await waitForNumber(onA, 5)
  const follower = await SseClient.open(b.url('/events'), { 'last-event-id': onA.events.at(-1)?.id ?? '' })
  await waitForNumber(follower, (numbersOf(onA).at(-1) ?? 0) + 5)
  // B's subscriber misses what is published meanwhile; the history, ids only, cannot fill that in.
  relay.pause()
  await new Promise((resolve) => setTimeout(resolve, 300))
  relay.resume()
  await follower.ended
  t.notOk(follower.completed, 'cut, so that it resumes and is told')
  t.ok(follower.events.every((event) => event.data !== ''), 'no empty event reached the client')
  const followed = numbersOf(follower)
  t.ok(followed.every((n, index) => n === (followed[0] ?? 0) + index), 'and what it got was exact')
})

t.test('an instance that starts while Redis is away answers 503, and serves once Redis is up', async (t) => {
  const server = await startRedisServer(t)
  await server.kill()
  const upstream = await CountingUpstream.start({ replays: false })
  t.teardown(async () => await upstream.close())
  const [a] = await sseReplicas(t, upstream, { url: server.url, keyPrefix: 'late:' }, 1) as [RunningProxy]
  const refused = await fetch(a.url('/events'))
  t.equal(refused.status, 503)
  await server.start()
  await until(async () => {
    const client = await SseClient.open(a.url('/events'))
    client.close()
    return client.status === 200
  }, 10000, 'streams to open')
  const client = await SseClient.open(a.url('/events'))
  t.teardown(() => client.close())
  await waitForNumber(client, numbersOf(client)[0] ?? 1)
  t.match(client.events[0]?.id, /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{8}\.1$/, 'ids carry the epoch Redis holds')
})

t.test('a follower that is reconnecting when the owner\'s grace period runs out still counts: the stream goes on', async (t) => {
  const { keyPrefix } = testRedis(t)
  const { upstream, a, b } = await instancesWithOneSecondGrace(t, keyPrefix)
  const onA = await SseClient.open(a.url('/events'))
  await waitForNumber(onA, 5)
  onA.close()
  const leftAt = Date.now()
  const first = await SseClient.open(b.url('/events'), { 'last-event-id': onA.events.at(-1)?.id ?? '' })
  await new Promise((resolve) => setTimeout(resolve, 800 - (Date.now() - leftAt)))
  first.close()
  // Away across the moment the owner's grace period runs out (1 s after the client left A).
  await new Promise((resolve) => setTimeout(resolve, 600))
  const again = await SseClient.open(b.url('/events'), { 'last-event-id': first.events.at(-1)?.id ?? onA.events.at(-1)?.id ?? '' })
  t.teardown(() => again.close())
  await waitForNumber(again, (numbersOf(first).at(-1) ?? numbersOf(onA).at(-1) ?? 0) + 100)
  t.equal(upstream.open, 1, 'the upstream still runs')
  t.ok(exactSequence([...numbersOf(onA), ...numbersOf(first), ...numbersOf(again)]), 'and the client\'s sequence is exact')
})
