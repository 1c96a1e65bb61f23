import t, { type Test } from 'tap'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js'
import { startDemoUpstream, type DemoUpstream } from '../examples/demo/mcp-server.js'
import type { McpSseResilienceOptions } from '../lib/index.js'
import { SseClient } from './helpers/sse-client.js'
import { SseUpstream } from './helpers/sse-upstream.js'
import { startProxy } from './helpers/proxy.js'

type Extra = Omit<McpSseResilienceOptions, 'routes'>

/**
 * A 2024-11-05 upstream written by hand. Its sessions survive their streams, and a
 * GET with Last-Event-ID resumes the session it names (`resumes: true`); otherwise
 * every GET is a new session with a new endpoint, as the MCP SDK's server does.
 */
class LegacyUpstream {
  readonly log: string[] = []
  readonly posts: Array<{ session: string, body: Record<string, unknown> }> = []
  sessions = 0
  /** Answers a POST; by default 202, and a JSON-RPC response on the stream for a request. */
  onPost: (request: IncomingMessage, response: ServerResponse, body: Record<string, unknown>) => void = (_request, response, body) => {
    response.writeHead(202).end('Accepted')
    if ('id' in body) this.upstream.broadcast(`data: ${JSON.stringify({ jsonrpc: '2.0', id: body.id, result: {} })}\n\n`)
  }

  upstream!: SseUpstream

  constructor (readonly resumes: boolean) {}

  async start (): Promise<void> {
    this.upstream = await SseUpstream.start((request, response) => {
      const url = new URL(request.url ?? '/', 'http://upstream')
      if (request.method === 'POST') {
        this.#post(request, response, url.searchParams.get('sessionId') ?? '')
        return
      }
      this.upstream.openStream(request, response)
      const lastEventId = request.headers['last-event-id']
      const resumed = this.resumes && typeof lastEventId === 'string'
      const session = resumed ? `s${this.sessions}` : `s${++this.sessions}`
      const after = resumed ? Number(lastEventId) : this.log.length
      response.write(`event: endpoint\ndata: /messages?sessionId=${session}\n\n`)
      response.write(this.log.slice(after).map((data, index) => `id: ${after + index + 1}\ndata: ${data}\n\n`).join(''))
    })
  }

  #post (request: IncomingMessage, response: ServerResponse, session: string): void {
    let text = ''
    request.setEncoding('utf8')
    request.on('data', (chunk: string) => { text += chunk })
    request.on('end', () => {
      const body = JSON.parse(text) as Record<string, unknown>
      this.posts.push({ session, body })
      this.onPost(request, response, body)
    })
  }

  emit (data: string): void {
    this.log.push(data)
    this.upstream.broadcast(`id: ${this.log.length}\ndata: ${data}\n\n`)
  }

  /** Ends every open stream: `clean` with a normal close, otherwise the socket is destroyed. */
  drop (clean: boolean): void {
    for (const stream of this.upstream.streams) {
      if (clean) stream.end()
      else stream.socket?.destroy()
    }
  }
}

async function setup (test: Test, upstream: LegacyUpstream, extra: Extra = {}) {
  await upstream.start()
  test.teardown(async () => await upstream.upstream.close())
  const proxy = await startProxy(test, {
    routes: [{ kind: 'legacy-sse', path: '/sse', messagesPath: '/messages', upstream: upstream.upstream.url('/sse'), upstreamReplays: upstream.resumes }],
    reconnect: { baseDelayMs: 20 },
    ...extra
  })
  const client = await SseClient.open(proxy.url('/sse'))
  test.teardown(() => client.close())
  const [endpoint] = await client.waitForEvents(1)
  return { proxy, client, endpoint: proxy.url(endpoint?.data ?? '') }
}

async function post (url: string, message: Record<string, unknown>): Promise<Response> {
  return await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', ...message }) })
}

async function until (condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5))
}

const payloads = (client: SseClient) => client.events.slice(1).map((event) => event.data)

t.test('an upstream that honours Last-Event-ID: a dropped legacy stream resumes its session, for clean and abrupt closes', async (t) => {
  const upstream = new LegacyUpstream(true)
  const { client, endpoint, proxy } = await setup(t, upstream)
  upstream.emit('e1')
  upstream.emit('e2')
  await client.waitForEvents(3)
  upstream.drop(true)
  await upstream.upstream.waitForRequests(2)
  t.equal(upstream.upstream.requests[1]?.headers['last-event-id'], '2', 'the reconnect asks for what follows the last upstream id')
  upstream.emit('e3')
  await client.waitForEvents(4)
  upstream.drop(false)
  upstream.log.push('e4')
  await upstream.upstream.waitForRequests(3)
  upstream.emit('e5')
  await client.waitForEvents(6)
  t.same(payloads(client), ['e1', 'e2', 'e3', 'e4', 'e5'], 'contiguous: no gap, no duplicate')
  t.equal(client.events.filter((event) => event.event === 'endpoint').length, 1, 'the client saw one endpoint, its own')

  const accepted = await post(endpoint, { id: 7, method: 'tools/list' })
  t.equal(accepted.status, 202)
  t.same(upstream.posts.map((message) => message.session), ['s1'], 'the same upstream session, resumed')
  const metrics = await (await fetch(proxy.url('/metrics'))).text()
  t.match(metrics, /sse_reconnection_success_total\{route_kind="legacy-sse",route="\/sse"\} 2/)
  t.notMatch(metrics, /sse_sessions_reestablished_total\{route_kind="legacy-sse",route="\/sse"\} [1-9]/)
})

t.test('a reconnect that lands on a new upstream session: the proxy replays the handshake and keeps its answers from the client', async (t) => {
  const upstream = new LegacyUpstream(false)
  const { client, endpoint, proxy } = await setup(t, upstream)
  t.equal((await post(endpoint, { id: 1, method: 'initialize', params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'c', version: '1' } } })).status, 202)
  t.equal((await post(endpoint, { method: 'notifications/initialized' })).status, 202)
  t.equal((await post(endpoint, { id: 2, method: 'resources/subscribe', params: { uri: 'file:///a' } })).status, 202)
  await client.waitForEvents(3)
  upstream.drop(true)
  await upstream.upstream.waitForRequests(2 + 3)
  const accepted = await post(endpoint, { id: 3, method: 'tools/list' })
  t.equal(accepted.status, 202)
  await client.waitForEvents(6)
  t.same(upstream.posts.map(({ session, body }) => [session, body.method, body.id]), [
    ['s1', 'initialize', 1],
    ['s1', 'notifications/initialized', undefined],
    ['s1', 'resources/subscribe', 2],
    ['s2', 'initialize', 'mcp-sse-resilience-initialize'],
    ['s2', 'notifications/initialized', undefined],
    ['s2', 'resources/subscribe', 'mcp-sse-resilience-resubscribe-1'],
    ['s2', 'tools/list', 3]
  ], 'the client\'s message went to the new session only once it was initialized again')
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.same(client.events.slice(1).map((event) => JSON.parse(event.data).id ?? JSON.parse(event.data).reason ?? JSON.parse(event.data).method), [1, 2, 'upstream-gap', 'notifications/resources/updated', 3],
    'the answers to the proxy\'s own requests never reached the client; the gap and the subscribed resource did')
  t.match(await (await fetch(proxy.url('/metrics'))).text(), /sse_sessions_reestablished_total\{route_kind="legacy-sse",route="\/sse"\} 1/)
})

t.test('with sessions.reestablish false, or nothing recorded, a new upstream session is not initialized by the proxy', async (t) => {
  for (const extra of [{ sessions: { reestablish: false } }, {}]) {
    const upstream = new LegacyUpstream(false)
    const { client, endpoint } = await setup(t, upstream, extra)
    if (extra.sessions !== undefined) t.equal((await post(endpoint, { id: 1, method: 'initialize', params: {} })).status, 202)
    upstream.drop(true)
    await upstream.upstream.waitForRequests(extra.sessions === undefined ? 2 : 3)
    t.equal((await post(endpoint, { id: 2, method: 'tools/list' })).status, 202)
    t.same(upstream.posts.map(({ session, body }) => [session, body.method]).filter(([session]) => session === 's2'), [['s2', 'tools/list']])
    client.close()
  }
})

t.test('a POST while the upstream stream is down waits for it, up to health.connectTimeoutMs, then gets 503 with Retry-After', async (t) => {
  const upstream = new LegacyUpstream(true)
  const { endpoint } = await setup(t, upstream, { health: { connectTimeoutMs: 300 } })
  upstream.upstream.handler = (_request, response) => { response.writeHead(503).end() }
  upstream.drop(false)
  await until(() => upstream.upstream.requests.length >= 3)
  const started = Date.now()
  const refused = await post(endpoint, { id: 1, method: 'tools/list' })
  t.equal(refused.status, 503)
  t.equal(refused.headers.get('retry-after'), '1')
  t.match(await refused.json(), { error: { data: { code: 'FST_MCP_SSE_UPSTREAM_RECONNECTING' } } })
  t.ok(Date.now() - started >= 250, 'it waited for the stream first')
  t.same(upstream.posts, [], 'nothing reached the upstream')
})

t.test('a POST that raced an upstream restart and got 404 is sent again to the new session, once', async (t) => {
  const upstream = new LegacyUpstream(false)
  const { client, endpoint } = await setup(t, upstream)
  upstream.onPost = (_request, response, body) => {
    // The old session is gone: its stream ends, then its POST is refused.
    upstream.onPost = (_again, accepted, resent) => {
      accepted.writeHead(202).end('Accepted')
      upstream.upstream.broadcast(`data: ${JSON.stringify({ jsonrpc: '2.0', id: resent.id, result: { resent: true } })}\n\n`)
    }
    upstream.drop(true)
    setTimeout(() => response.writeHead(404).end('Session not found'), 50)
    t.equal(body.id, 1)
  }
  const accepted = await post(endpoint, { id: 1, method: 'tools/list' })
  t.equal(accepted.status, 202, await accepted.text())
  const [, gap, answer] = await client.waitForEvents(3)
  t.equal(gap?.event, 'resume-status', 'the new session is a gap')
  t.same(JSON.parse(answer?.data ?? '{}'), { jsonrpc: '2.0', id: 1, result: { resent: true } })
  t.same(upstream.posts.map((message) => message.session), ['s1', 's2'])
})

t.test('a 404 from an endpoint that did not move is the client\'s to see', async (t) => {
  const upstream = new LegacyUpstream(true)
  const { endpoint } = await setup(t, upstream)
  upstream.onPost = (_request, response) => { response.writeHead(404).end() }
  const refused = await post(endpoint, { id: 1, method: 'tools/list' })
  t.equal(refused.status, 404)
  t.match(await refused.json(), { error: { code: -32001 } })
})

t.test('the MCP SDK\'s legacy server restarts, losing its sessions: the SDK client\'s next tools/call works without initializing again', async (t) => {
  let upstream: DemoUpstream = await startDemoUpstream()
  const port = Number(new URL(upstream.origin).port)
  t.teardown(async () => await upstream.close())
  const proxy = await startProxy(t, {
    routes: [{ kind: 'legacy-sse', path: '/sse', messagesPath: '/messages', upstream: `${upstream.origin}/sse` }],
    reconnect: { baseDelayMs: 20 }
  })
  const client = new Client({ name: 'legacy-restart', version: '1.0.0' })
  const errors: Error[] = []
  client.onerror = (error) => errors.push(error)
  await client.connect(new SSEClientTransport(new URL(proxy.url('/sse'))))
  t.teardown(async () => await client.close())
  t.same((await client.callTool({ name: 'echo', arguments: { text: 'before' } })).content, [{ type: 'text', text: 'before' }])

  await upstream.close()
  upstream = await startDemoUpstream(port)
  const after = await client.callTool({ name: 'echo', arguments: { text: 'after' } })
  t.same(after.content, [{ type: 'text', text: 'after' }])
  t.equal(upstream.sessionIds.length, 1, 'the new process holds one session: the proxy\'s, initialized again')
  t.same(errors, [], 'the client saw nothing it did not ask for')
  t.match(await (await fetch(proxy.url('/metrics'))).text(), /sse_sessions_reestablished_total\{route_kind="legacy-sse",route="\/sse"\} 1/)
})
