import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Redis } from 'ioredis'
import { createParser } from 'eventsource-parser'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js'
import { startDemoUpstream, type DemoUpstream } from '../../examples/demo/mcp-server.js'
import { startReplica, type Replica } from '../helpers/replica-process.js'

// Two replicas, as separate processes, sharing the Redis on 127.0.0.1:6379, behind a
// balancer that sends each request to the next replica: no stickiness at all.
const REDIS_URL = 'redis://127.0.0.1:6379'
const LEASE_TTL_MS = 1000

async function cleanRedis (test: Test, keyPrefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL)
  test.teardown(async () => {
    const keys = await redis.keys(`${keyPrefix}*`)
    if (keys.length > 0) await redis.unlink(...keys)
    await redis.quit()
  })
}

interface Routed {
  readonly method: string
  readonly path: string
  readonly replica: number
  readonly headers: IncomingHttpHeaders
}

interface Balancer {
  readonly url: string
  /** Each request, with the replica that answered it. */
  readonly routed: Routed[]
}

/**
 * Round robin per request, over fresh connections to the replicas. A replica that
 * refuses the connection (it is dead) is skipped; a response it was streaming is cut.
 */
async function startBalancer (test: Test, replicas: readonly Replica[]): Promise<Balancer> {
  const routed: Routed[] = []
  let next = 0
  const server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.once('end', () => attempt(0))
    function attempt (tries: number): void {
      const index = next++ % replicas.length
      const target = new URL(replicas[index]?.url ?? '')
      const outgoing = httpRequest({ host: target.hostname, port: target.port, method: request.method, path: request.url, headers: request.headers, agent: false }, (answer) => {
        routed.push({ method: request.method ?? '', path: request.url ?? '', replica: index, headers: request.headers })
        response.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(response)
        answer.once('close', () => { if (!answer.complete) response.destroy() })
        response.once('close', () => answer.destroy())
      })
      outgoing.once('error', () => {
        if (!response.headersSent && tries + 1 < replicas.length) attempt(tries + 1)
        else response.destroy()
      })
      outgoing.end(Buffer.concat(chunks))
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  test.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, routed }
}

interface SeenStream {
  /** Every event id the client received, in order, across its connections. */
  readonly ids: string[]
  /** Each connection's X-Resume-Status (absent on the first). */
  readonly resumeStatuses: Array<string | null>
}

/**
 * The SDK's SSEClientTransport (1.32) gives EventSource a fetch that replaces its headers,
 * Last-Event-ID with them (docs/troubleshooting.md). This fetch puts it back, as a standard
 * EventSource sends it, and notes the ids the client received.
 */
function resumingFetch (seen: SeenStream): typeof fetch {
  return async (url, init) => {
    const headers = new Headers(init?.headers)
    const last = seen.ids.at(-1)
    if (last !== undefined) headers.set('last-event-id', last)
    const response = await fetch(url, { ...init, headers })
    seen.resumeStatuses.push(response.headers.get('x-resume-status'))
    if (response.body === null) return response
    const parser = createParser({ onEvent: (event) => { if (event.id !== undefined) seen.ids.push(event.id) } })
    const decoder = new TextDecoder()
    const body = response.body.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({
      transform (chunk, controller) {
        parser.feed(decoder.decode(chunk, { stream: true }))
        controller.enqueue(chunk)
      }
    }))
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers })
  }
}

async function setup (test: Test) {
  const keyPrefix = `test:legacy:${randomUUID()}:`
  await cleanRedis(test, keyPrefix)
  const upstream = await startDemoUpstream()
  test.teardown(async () => await upstream.close())
  const options = {
    routes: [{ kind: 'legacy-sse', path: '/sse', messagesPath: '/messages', upstream: `${upstream.origin}/sse`, reconnect: { baseDelayMs: 50 } }],
    store: { kind: 'redis', url: REDIS_URL, keyPrefix, leaseTtlMs: LEASE_TTL_MS },
    metrics: { enabled: false }
  }
  const replicas = await Promise.all([startReplica(test, options), startReplica(test, options)])
  const balancer = await startBalancer(test, replicas)
  const seen: SeenStream = { ids: [], resumeStatuses: [] }
  const client = new Client({ name: 'legacy-replicas', version: '1.0.0' })
  // Dropped streams are reported here; the transport goes on (EventSource reconnects).
  client.onerror = () => {}
  await client.connect(new SSEClientTransport(new URL(`${balancer.url}/sse`), { eventSourceInit: { fetch: resumingFetch(seen) } }))
  test.teardown(async () => await client.close())
  return { upstream, replicas, balancer, seen, client }
}

async function echo (client: Client, text: string): Promise<unknown> {
  return (await client.callTool({ name: 'echo', arguments: { text } })).content
}

/** The seqs of the ids: one stream, each seq once, none missing. */
function exactIds (test: Test, ids: readonly string[]): void {
  const streams = new Set(ids.map((id) => id.slice(0, id.lastIndexOf('.'))))
  test.equal(streams.size, 1, 'one stream, the same ids on both replicas')
  const seqs = ids.map((id) => Number(id.slice(id.lastIndexOf('.') + 1)))
  test.same(seqs, seqs.map((_, index) => index + 1), `seqs 1..${seqs.length}, each once`)
}

async function until (condition: () => boolean | Promise<boolean>, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await condition()) {
    if (Date.now() > deadline) throw new Error('timed out')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** Whether the upstream still takes messages for this legacy session of its own. */
async function upstreamHas (upstream: DemoUpstream, sessionId: string): Promise<boolean> {
  const answer = await fetch(`${upstream.origin}/messages?sessionId=${sessionId}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","method":"notifications/ping-probe"}' })
  await answer.arrayBuffer()
  return answer.status !== 404
}

t.test('the SDK legacy client\'s POSTs alternate between replicas: every answer comes on its stream, from one upstream session', async (t) => {
  const { upstream, balancer, seen, client } = await setup(t)
  for (let call = 1; call <= 6; call++) t.same(await echo(client, `call ${call}`), [{ type: 'text', text: `call ${call}` }])
  const posts = balancer.routed.filter((request) => request.method === 'POST')
  const streamedBy = balancer.routed.find((request) => request.method === 'GET')?.replica
  t.ok(posts.some((post) => post.replica === streamedBy) && posts.some((post) => post.replica !== streamedBy),
    'POSTs reached the replica that reads the stream and the one that does not')
  t.equal(upstream.sessionIds.length, 1, 'one upstream session for both replicas')
  t.equal(balancer.routed.filter((request) => request.method === 'GET').length, 1, 'the stream never dropped')
  exactIds(t, seen.ids)
})

t.test('the replica that reads a legacy stream is SIGKILLed: the other takes it over, the client resumes there, and its calls work, with nothing lost or repeated', async (t) => {
  const { upstream, replicas, balancer, seen, client } = await setup(t)
  t.same(await echo(client, 'before'), [{ type: 'text', text: 'before' }])
  const owner = balancer.routed.find((request) => request.method === 'GET')?.replica ?? 0
  const oldSession = upstream.sessionIds[0] ?? ''
  await replicas[owner]?.kill('SIGKILL')
  // The upstream session ends with the dead replica's connection: a message for it now gets 404.
  await until(async () => !await upstreamHas(upstream, oldSession))

  // Sent before the client is back, to the survivor, before its sweep has taken the stream over.
  const during = echo(client, 'during')
  await until(() => balancer.routed.filter((request) => request.method === 'GET').length === 2)
  t.same(await during, [{ type: 'text', text: 'during' }], 'a message sent while no replica read the stream waited for the takeover')
  t.same(await echo(client, 'after'), [{ type: 'text', text: 'after' }], 'the next call works, without initializing again')

  const [, resumed] = balancer.routed.filter((request) => request.method === 'GET')
  t.not(resumed?.replica, owner, 'the client came back to the survivor')
  t.ok(typeof resumed?.headers['last-event-id'] === 'string', 'with Last-Event-ID')
  t.equal(seen.resumeStatuses.length, 2)
  t.equal(seen.resumeStatuses[0], null, 'a fresh stream at first')
  // The new upstream session is a gap (what the old one owed is lost), told in the stream and in the header.
  t.match(seen.resumeStatuses[1], /^recovered(; upstream-gaps=1)?$/, 'then everything recorded, with the gap the takeover left if it came first')
  exactIds(t, seen.ids)
  t.equal(upstream.sessionIds.length, 2, 'the survivor opened one new upstream session, and initialized it itself')
})
