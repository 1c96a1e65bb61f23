import t from 'tap'
import { randomUUID } from 'node:crypto'
import { Cluster, Redis } from 'ioredis'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { startDemoUpstream } from '../../examples/demo/mcp-server.js'
import { CountingUpstream } from '../helpers/counting-upstream.js'
import { exactSequence, numbersOf, waitForNumber } from '../helpers/numbered-events.js'
import { startRedisCluster } from '../helpers/redis-cluster.js'
import type { McpSseResilienceOptions } from '../../lib/index.js'
import { RedisFollowers } from '../../lib/store/redis/followers.js'
import { activeIndexKey, activeMember, leaseKey, liveChannel, streamIndexKey } from '../../lib/store/redis/keys.js'
import { LiveChannels } from '../../lib/store/redis/live-channels.js'
import { RedisStreamRegistry } from '../../lib/store/redis/stream-registry.js'
import { startProxy } from '../helpers/proxy.js'
import { startReplica, type Replica } from '../helpers/replica-process.js'
import { SseClient } from '../helpers/sse-client.js'

// Proxy replicas on a real 3-primary Redis Cluster, started once for this file; each test has its own key prefix.
const cluster = await startRedisCluster(t)
const STREAMS = 6
const LEASE_TTL_MS = 1000

async function keysPerNode (ports: readonly number[], keyPrefix: string): Promise<number[]> {
  return await Promise.all(ports.map(async (port) => {
    const redis = new Redis(port, '127.0.0.1')
    try {
      return (await redis.keys(`${keyPrefix}*`)).length
    } finally {
      redis.disconnect()
    }
  }))
}

t.test('on a Redis Cluster: clients move between replicas with no gap and no duplicate, and a killed owner\'s streams are taken over', async (t) => {
  const keyPrefix = `test:${randomUUID()}:`
  const upstream = await CountingUpstream.start({ replays: true, intervalMs: 10 })
  t.teardown(async () => await upstream.close())
  const options = {
    routes: [{ kind: 'sse', path: '/events', upstream: upstream.url(), upstreamReplays: true, reconnect: { baseDelayMs: 50, maxRetries: 0 } }],
    store: { kind: 'redis', cluster: cluster.urls.slice(0, 1), keyPrefix, leaseTtlMs: LEASE_TTL_MS },
    metrics: { enabled: false }
  }
  const [a, b] = await Promise.all([startReplica(t, options), startReplica(t, options)]) as [Replica, Replica]

  // Each sse stream is a session of its own: its keys go to the slot of its id.
  const onA = await Promise.all(Array.from({ length: STREAMS }, async () => await SseClient.open(`${a.url}/events`)))
  await Promise.all(onA.map(async (client) => await waitForNumber(client, 20)))
  const perNode = await keysPerNode(cluster.ports, keyPrefix)
  t.ok(perNode.filter((count) => count > 0).length >= 2, `the streams' keys are spread over the nodes (${perNode.join(', ')}), though the client was given one node`)

  for (const client of onA) client.close()
  await Promise.all(onA.map(async (client) => await client.ended))
  const onB = await Promise.all(onA.map(async (client) => await SseClient.open(`${b.url}/events`, { 'last-event-id': client.events.at(-1)?.id ?? '' })))
  t.teardown(() => { for (const client of onB) client.close() })
  t.same(onB.map((client) => client.headers['x-resume-status']), onB.map(() => 'recovered'), 'every stream resumed on the other replica')
  await Promise.all(onB.map(async (client, index) => await waitForNumber(client, (numbersOf(onA[index]!).at(-1) ?? 0) + 20)))
  t.equal(upstream.connections.length, STREAMS, 'replica A kept reading every upstream: B followed them from the cluster')

  // A dies without handing anything over: B takes the upstreams over once their leases run out.
  const seenBeforeKill = onB.map((client) => numbersOf(client).at(-1) ?? 0)
  await a.kill('SIGKILL')
  const killedAt = Date.now()
  const takeover = await upstream.waitForConnections(2 * STREAMS, LEASE_TTL_MS + 10000)
  t.ok(takeover.openedAt - killedAt <= LEASE_TTL_MS + 3000, `taken over within ${takeover.openedAt - killedAt} ms of the kill (lease ${LEASE_TTL_MS} ms)`)
  await Promise.all(onB.map(async (client, index) => await waitForNumber(client, (seenBeforeKill[index] ?? 0) + 100)))
  for (const [index, client] of onB.entries()) {
    const seen = [...numbersOf(onA[index]!), ...numbersOf(client)]
    t.ok(exactSequence(seen), `stream ${index + 1}: 1..${seen.length}, each once, across the move and the kill`)
  }
})

t.test('on a Redis Cluster: an MCP session opened through one replica is served, and ended, through the other', async (t) => {
  const keyPrefix = `test:${randomUUID()}:`
  const upstream = await startDemoUpstream()
  t.teardown(async () => await upstream.close())
  const options: McpSseResilienceOptions = {
    routes: [{ kind: 'streamable-http', path: '/mcp', upstream: `${upstream.origin}/mcp` }],
    store: { kind: 'redis', cluster: cluster.urls, keyPrefix, leaseTtlMs: LEASE_TTL_MS },
    metrics: { enabled: false }
  }
  // In this process, so that the cluster client's own code is measured by coverage too.
  const [a, b] = [await startProxy(t, options), await startProxy(t, options)] as const

  const throughA = new StreamableHTTPClientTransport(new URL(`${a.origin}/mcp`))
  const clientA = new Client({ name: 'replica-a', version: '1.0.0' })
  await clientA.connect(throughA)
  const sessionId = throughA.sessionId
  t.ok(sessionId, 'replica A opened the session')
  const throughB = new StreamableHTTPClientTransport(new URL(`${b.origin}/mcp`), { sessionId })
  const clientB = new Client({ name: 'replica-b', version: '1.0.0' })
  await clientB.connect(throughB)
  t.same(await clientB.callTool({ name: 'echo', arguments: { text: 'via B' } }), { content: [{ type: 'text', text: 'via B' }] }, 'replica B found the session in the cluster')
  t.equal(upstream.sessionIds.length, 1, 'one upstream session for both replicas')
  await throughB.terminateSession()
  const after = await fetch(`${a.origin}/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId ?? '' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' })
  })
  t.equal(after.status, 404, 'a session ended through B is gone on A too')
})

t.test('on a Redis Cluster: a follower counts wherever its replica subscribed, so that the owner keeps the upstream for it', async (t) => {
  const keyPrefix = `test:${randomUUID()}:`
  const nodes = cluster.ports.map((port) => ({ host: '127.0.0.1', port }))
  const [commands, subscriber] = [new Cluster(nodes), new Cluster(nodes)]
  t.teardown(() => {
    commands.disconnect()
    subscriber.disconnect()
  })
  const followers = new RedisFollowers(commands, keyPrefix)
  const live = new LiveChannels(subscriber)
  // A subscription is held by one node (the subscriber's), whichever holds the stream's slot.
  const streams = ['s1', 's2', 's3', 's4', 's5', 's6']
  t.same(await Promise.all(streams.map(async (streamId) => await followers.followedElsewhere('S', streamId))), streams.map(() => false), 'no follower yet')
  const stops = await Promise.all(streams.map(async (streamId) =>
    await live.listen(liveChannel(keyPrefix, 'S', streamId), { onEvent: () => {}, onEnd: () => {}, resync: () => {} })))
  t.same(await Promise.all(streams.map(async (streamId) => await followers.followedElsewhere('S', streamId))), streams.map(() => true), 'each stream\'s follower is counted')
  for (const stop of stops) stop()
})

t.test('on a Redis Cluster: one renewal of many leases, spread over the nodes, renews each held one and only those', async (t) => {
  const keyPrefix = `test:${randomUUID()}:`
  const commands = new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })), { enableAutoPipelining: true })
  t.teardown(() => commands.disconnect())
  const registry = new RedisStreamRegistry(commands, { keyPrefix, retainMs: 60_000 })
  const epoch = await registry.ensureEpoch()
  const now = Date.now()
  // Sessions whose keys land on every node, a few streams each.
  const streams = Array.from({ length: 60 }, (_, index) => ({ sessionId: `S${index % 20}`, streamId: `s${index}` }))
  const leases = await Promise.all(streams.map(async ({ sessionId, streamId }) => {
    await registry.register(sessionId, streamId, '{}', epoch)
    return { sessionId, streamId, token: await registry.claim(sessionId, streamId, 'replica-1', 30_000, now) ?? 0 }
  }))
  await commands.set(leaseKey(keyPrefix, 'S5', 's5'), 'replica-2:9')
  t.same(await registry.renewMany('replica-1', leases, 60_000, now), streams.map(({ streamId }) => streamId !== 's5'), 'every lease but the one taken over')
  t.ok(await commands.pttl(leaseKey(keyPrefix, 'S19', 's59')) > 50_000, 'extended')
  t.ok(await commands.pttl(streamIndexKey(keyPrefix, 's59')) > 59_000, 'its stream index kept, in a slot of its own')
  t.equal(await commands.zscore(activeIndexKey(keyPrefix, 'S19'), activeMember('S19', 's59')), String(now + 60_000), 'due in the active index when the new lease ends')
  t.equal(await commands.zscore(activeIndexKey(keyPrefix, 'S5'), activeMember('S5', 's5')), String(now + 30_000), 'the lost one is left as it was')
  t.ok((await keysPerNode(cluster.ports, keyPrefix)).every((count) => count > 0), 'the keys renewed are spread over every node')
})
