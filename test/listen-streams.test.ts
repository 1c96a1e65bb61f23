import t, { type Test } from 'tap'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import type { McpSseResilienceOptions } from '../lib/index.js'
import { startProxy, type RunningProxy } from './helpers/proxy.js'
import { startTcpRelay } from './helpers/tcp-relay.js'
import { COUNTER_URI, V2Upstream } from './helpers/v2-upstream.js'

// MCP 2026-07-28 subscriptions/listen streams outlive their upstream: the proxy listens again.
const SUBSCRIPTION_ID = 'io.modelcontextprotocol/subscriptionId'
const ACKNOWLEDGED = 'notifications/subscriptions/acknowledged'
const TOOLS_CHANGED = 'notifications/tools/list_changed'
const PROMPTS_CHANGED = 'notifications/prompts/list_changed'
const RESOURCE_UPDATED = 'notifications/resources/updated'
const FAST_RECONNECT = { baseDelayMs: 20, maxDelayMs: 200, jitter: 0 }

type Message = Record<string, unknown> & { method?: string, id?: unknown, params?: Record<string, unknown> & { _meta?: Record<string, unknown>, uri?: string } }

function listenBody (id: string | number, notifications: Record<string, unknown>): string {
  return JSON.stringify({
    jsonrpc: '2.0',
    id,
    method: 'subscriptions/listen',
    params: {
      notifications,
      _meta: {
        'io.modelcontextprotocol/protocolVersion': '2026-07-28',
        'io.modelcontextprotocol/clientCapabilities': {},
        'io.modelcontextprotocol/clientInfo': { name: 'raw-listener', version: '1.0.0' }
      }
    }
  })
}

/** A listen stream read at the byte level: every message and comment the client gets, as it gets them. */
class RawListen {
  readonly messages: Message[] = []
  keepalives = 0
  done = false
  readonly ended: Promise<void>
  readonly #abort = new AbortController()
  #buffer = ''
  #changed: (() => void) | undefined

  private constructor (response: Response) {
    this.ended = this.#read(response)
  }

  static async open (url: string, id: string | number, notifications: Record<string, unknown>, headers: Record<string, string> = {}): Promise<RawListen> {
    const abort = new AbortController()
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'subscriptions/listen', ...headers },
      body: listenBody(id, notifications),
      signal: abort.signal
    })
    const listen = new RawListen(response)
    listen.#abort.signal.addEventListener('abort', () => abort.abort())
    return listen
  }

  of (method: string): Message[] {
    return this.messages.filter((message) => message.method === method)
  }

  close (): void {
    this.#abort.abort()
  }

  /** Waits until `condition` holds, re-checked as the stream brings anything. */
  async until (condition: () => boolean, timeoutMs = 15000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`condition not met; got ${JSON.stringify(this.messages)}`)
      await Promise.race([new Promise<void>((resolve) => { this.#changed = resolve }), sleep(50)])
    }
  }

  async #read (response: Response): Promise<void> {
    const decoder = new TextDecoder()
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        this.#buffer += decoder.decode(chunk, { stream: true })
        let end = this.#buffer.indexOf('\n\n')
        while (end !== -1) {
          this.#take(this.#buffer.slice(0, end))
          this.#buffer = this.#buffer.slice(end + 2)
          end = this.#buffer.indexOf('\n\n')
        }
        this.#changed?.()
      }
    } catch {
      // Aborted by the test.
    }
    this.done = true
    this.#changed?.()
  }

  #take (block: string): void {
    if (block.startsWith(': keepalive')) this.keepalives++
    const data = block.split('\n').filter((line) => line.startsWith('data: ')).map((line) => line.slice(6)).join('\n')
    if (data !== '') this.messages.push(JSON.parse(data) as Message)
  }
}

async function setup (t: Test, options: Omit<McpSseResilienceOptions, 'routes'> = {}, upstreamUrl?: (upstream: V2Upstream) => Promise<string>): Promise<{ upstream: V2Upstream, proxy: RunningProxy }> {
  const upstream = await V2Upstream.start()
  t.teardown(async () => await upstream.close())
  const proxy = await startProxy(t, {
    routes: [{ kind: 'streamable-http', path: '/mcp', upstream: upstreamUrl === undefined ? upstream.url : await upstreamUrl(upstream) }],
    reconnect: FAST_RECONNECT,
    ...options
  })
  return { upstream, proxy }
}

async function v2Client (t: Test, proxy: RunningProxy): Promise<Client> {
  const client = new Client({ name: 'listen-test', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } })
  await client.connect(new StreamableHTTPClientTransport(new URL(proxy.url('/mcp'))))
  t.teardown(async () => await client.close())
  return client
}

function listensSeen (upstream: V2Upstream): number {
  return upstream.methods.filter((method) => method === 'subscriptions/listen').length
}

async function metricValue (proxy: RunningProxy, name: string): Promise<number> {
  const text = await (await fetch(proxy.url('/metrics'))).text()
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name}{route_kind="streamable-http",route="/mcp"}`))
  return line === undefined ? 0 : Number(line.split(' ').at(-1))
}

function stampedWith (listen: RawListen, id: unknown): boolean {
  return listen.messages.every((message) => (message.params?._meta?.[SUBSCRIPTION_ID] ?? message.id) === id)
}

t.test('acceptance: an upstream killed and restarted under open listen streams', async (t) => {
  const { upstream, proxy } = await setup(t)
  const client = await v2Client(t, proxy)
  const seen = { tools: 0, updated: [] as string[] }
  client.setNotificationHandler(TOOLS_CHANGED, () => { seen.tools++ })
  client.setNotificationHandler(RESOURCE_UPDATED, (notification) => { seen.updated.push(notification.params.uri) })
  const subscription = await client.listen({ toolsListChanged: true, resourceSubscriptions: [COUNTER_URI] })
  let closedAs: string | undefined
  subscription.closed.then((how) => { closedAs = how }, () => {})
  const raw = await RawListen.open(proxy.url('/mcp'), 'raw-1', { toolsListChanged: true, resourceSubscriptions: [COUNTER_URI] })
  await raw.until(() => raw.of(ACKNOWLEDGED).length === 1)

  upstream.notify.toolsChanged()
  await raw.until(() => raw.of(TOOLS_CHANGED).length === 1)
  await t.resolves(waitFor(() => seen.tools === 1), 'the SDK client gets live notifications through the proxy')

  await upstream.kill()
  await sleep(100)
  await upstream.start()
  // Once listened to again, each kind the stream listens to is told as changed.
  await raw.until(() => raw.of(TOOLS_CHANGED).length === 2 && raw.of(RESOURCE_UPDATED).length === 1)
  await waitFor(() => seen.tools === 2 && seen.updated.length === 1)
  t.same(seen.updated, [COUNTER_URI])
  t.equal(raw.of(RESOURCE_UPDATED)[0]?.params?.uri, COUNTER_URI)

  upstream.notify.resourceUpdated(COUNTER_URI)
  await raw.until(() => raw.of(RESOURCE_UPDATED).length === 2)
  await waitFor(() => seen.updated.length === 2)

  t.equal(raw.of(ACKNOWLEDGED).length, 1, 'the client saw one acknowledgement: its own')
  t.ok(stampedWith(raw, 'raw-1'), 'every message carries the client\'s own request id')
  t.notOk(raw.messages.some((message) => JSON.stringify(message).includes('mcp-sse-resilience')), 'the proxy\'s own id never shows')
  t.equal(raw.done, false, 'the raw stream is still open')
  t.equal(closedAs, undefined, 'the SDK client\'s subscription has not closed')
  t.equal(listensSeen(upstream), 4, 'two listens, then each listened to again once')
  t.equal(await metricValue(proxy, 'sse_reconnection_success_total'), 2)
  t.ok(await metricValue(proxy, 'sse_reconnection_attempts_total') >= 2)
  t.equal(await metricValue(proxy, 'sse_reconnection_failure_total'), 0)
  raw.close()
  await subscription.close()
})

t.test('a network cut between proxy and upstream, with no restart', async (t) => {
  let relay: Awaited<ReturnType<typeof startTcpRelay>> | undefined
  const { upstream, proxy } = await setup(t, {}, async (upstream) => {
    relay = await startTcpRelay(t, upstream.port)
    return `http://127.0.0.1:${relay.port}/mcp`
  })
  const raw = await RawListen.open(proxy.url('/mcp'), 42, { toolsListChanged: true, promptsListChanged: true })
  await raw.until(() => raw.of(ACKNOWLEDGED).length === 1)
  relay?.cutAll()
  // The upstream honours tools only (it has no prompts): what the gap tells is what was honoured.
  await raw.until(() => raw.of(TOOLS_CHANGED).length === 1)
  upstream.notify.toolsChanged()
  await raw.until(() => raw.of(TOOLS_CHANGED).length === 2)
  t.equal(raw.of(PROMPTS_CHANGED).length, 0, 'no notification of a kind the server did not honour')
  t.equal(raw.of(ACKNOWLEDGED).length, 1)
  t.ok(stampedWith(raw, 42), 'numeric ids come back as numbers')
  t.equal(listensSeen(upstream), 2)
  raw.close()
})

/** An upstream written by hand: it records each listen, and `answer` decides what each gets. */
async function handUpstream (t: Test, answer: (request: IncomingMessage, body: Message, response: ServerResponse, count: number) => void): Promise<{ url: string, listens: Array<{ headers: IncomingMessage['headers'], body: Message }> }> {
  const listens: Array<{ headers: IncomingMessage['headers'], body: Message }> = []
  const server = createServer((request, response) => {
    let text = ''
    request.on('data', (chunk: Buffer) => { text += chunk.toString() })
    request.once('end', () => {
      const body = JSON.parse(text) as Message
      if (body.method !== 'subscriptions/listen') {
        response.writeHead(202).end()
        return
      }
      listens.push({ headers: request.headers, body })
      answer(request, body, response, listens.length)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, listens }
}

function sse (response: ServerResponse, message: unknown): void {
  if (!response.headersSent) {
    response.writeHead(200, { 'content-type': 'text/event-stream' })
    response.flushHeaders()
  }
  response.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`)
}

function ack (id: unknown, notifications: Record<string, unknown>): Message {
  return { jsonrpc: '2.0', method: ACKNOWLEDGED, params: { notifications, _meta: { [SUBSCRIPTION_ID]: id } } }
}

t.test('a stalled upstream is listened to again, with the same params and headers under a new id', async (t) => {
  const upstream = await handUpstream(t, (_request, body, response, count) => {
    sse(response, ack(body.id, { toolsListChanged: true, resourceSubscriptions: ['file:///a'] }))
    // A line the SSE spec ignores, and a retry hint, change nothing of this.
    response.write('retry: 30\nbogus: line\n\n')
    // The first stream then goes silent; the second says something live.
    if (count === 2) sse(response, { jsonrpc: '2.0', method: TOOLS_CHANGED, params: { _meta: { [SUBSCRIPTION_ID]: body.id } } })
  })
  const proxy = await startProxy(t, {
    routes: [{ kind: 'streamable-http', path: '/mcp', upstream: upstream.url }],
    reconnect: FAST_RECONNECT,
    health: { idleTimeoutSeconds: 1, heartbeatSeconds: 0 }
  })
  const raw = await RawListen.open(proxy.url('/mcp'), 'mine', { toolsListChanged: true, resourceSubscriptions: ['file:///a', 'file:///b'] }, { authorization: 'Bearer t0ken' })
  await raw.until(() => raw.of(TOOLS_CHANGED).length === 2)
  t.same(raw.of(RESOURCE_UPDATED).map((message) => message.params?.uri), ['file:///a'], 'only the URIs the server honoured')
  t.equal(raw.of(ACKNOWLEDGED).length, 1)
  t.ok(stampedWith(raw, 'mine'))
  t.equal(upstream.listens.length, 2)
  const [first, second] = upstream.listens
  t.equal(first?.body.id, 'mine')
  t.match(second?.body.id, /^mcp-sse-resilience-listen-[0-9a-f]{24}$/)
  t.same(second?.body.params, first?.body.params, 'the same params')
  for (const name of ['mcp-protocol-version', 'mcp-method', 'authorization']) {
    t.equal(second?.headers[name], first?.headers[name], `the same ${name}`)
  }
  t.equal(await metricValue(proxy, 'sse_upstream_stalls_total'), 1)
  raw.close()
})

t.test('an upstream that drops before acknowledging: the client gets the next one as its own', async (t) => {
  const upstream = await handUpstream(t, (_request, body, response, count) => {
    if (count === 1) {
      sse(response, { jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'starting' } })
      response.write(': warming up\n\n')
      setTimeout(() => response.socket?.destroy(), 20)
      return
    }
    sse(response, ack(body.id, { toolsListChanged: true }))
    sse(response, { jsonrpc: '2.0', method: TOOLS_CHANGED, params: { _meta: { [SUBSCRIPTION_ID]: body.id } } })
  })
  const proxy = await startProxy(t, { routes: [{ kind: 'streamable-http', path: '/mcp', upstream: upstream.url }], reconnect: FAST_RECONNECT })
  const raw = await RawListen.open(proxy.url('/mcp'), 'early', { toolsListChanged: true })
  await raw.until(() => raw.of(TOOLS_CHANGED).length === 1)
  t.same(raw.messages.map((message) => message.method), ['notifications/message', ACKNOWLEDGED, TOOLS_CHANGED], 'one acknowledgement, and no gap before it')
  t.equal(raw.of(ACKNOWLEDGED)[0]?.params?._meta?.[SUBSCRIPTION_ID], 'early')
  raw.close()
})

t.test('a listen client that reads slowly holds the upstream back, and still gets everything', async (t) => {
  const total = 20000
  let sent = 0
  const upstream = await handUpstream(t, (_request, body, response) => {
    sse(response, ack(body.id, { resourceSubscriptions: ['file:///big'] }))
    const write = (): void => {
      while (sent < total) {
        const text = JSON.stringify({ jsonrpc: '2.0', method: RESOURCE_UPDATED, params: { uri: 'file:///big', n: sent++, pad: 'y'.repeat(1000), _meta: { [SUBSCRIPTION_ID]: body.id } } })
        if (!response.write(`data: ${text}\n\n`)) {
          response.once('drain', write)
          return
        }
      }
      sse(response, { jsonrpc: '2.0', id: body.id, result: { resultType: 'complete' } })
      response.end()
    }
    write()
  })
  const proxy = await startProxy(t, { routes: [{ kind: 'streamable-http', path: '/mcp', upstream: upstream.url }], reconnect: FAST_RECONNECT })
  const response = await fetch(proxy.url('/mcp'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'subscriptions/listen' },
    body: listenBody('slow', { resourceSubscriptions: ['file:///big'] })
  })
  const reader = (response.body as ReadableStream<Uint8Array>).getReader()
  await sleep(500)
  t.ok(sent < total, `the upstream could write only ${sent} of ${total} notifications (20 MB) while the client read nothing`)
  let text = ''
  const decoder = new TextDecoder()
  for (let chunk = await reader.read(); chunk.done !== true; chunk = await reader.read()) text += decoder.decode(chunk.value, { stream: true })
  const numbers = [...text.matchAll(/"n":(\d+)/g)].map((match) => Number(match[1]))
  t.equal(numbers.length, total)
  t.ok(numbers.every((value, index) => value === index), 'in order, none lost')
  t.match(text, /"id":"slow","result"/, 'then the listen response ends it')
})

t.test('a listen client sent a notification larger than its buffer is cut, and its upstream listen ends', async (t) => {
  let upstreamClosed: Promise<unknown> = Promise.reject(new Error('no listen reached the upstream'))
  upstreamClosed.catch(() => {})
  const upstream = await handUpstream(t, (_request, body, response) => {
    upstreamClosed = once(response, 'close')
    sse(response, ack(body.id, { resourceSubscriptions: ['file:///big'] }))
    sse(response, { jsonrpc: '2.0', method: RESOURCE_UPDATED, params: { uri: 'file:///big', pad: 'z'.repeat(4096), _meta: { [SUBSCRIPTION_ID]: body.id } } })
  })
  const proxy = await startProxy(t, { routes: [{ kind: 'streamable-http', path: '/mcp', upstream: upstream.url }], limits: { clientBufferBytes: 1024 } })
  const raw = await RawListen.open(proxy.url('/mcp'), 'small', { resourceSubscriptions: ['file:///big'] })
  await raw.ended
  await t.resolves(upstreamClosed, 'the upstream listen is closed')
  t.equal(raw.of(RESOURCE_UPDATED).length, 0)
  t.equal(await metricValue(proxy, 'sse_slow_consumer_disconnects_total'), 1)
  t.equal(upstream.listens.length, 1, 'a client that is gone is not listened for again')
})

t.test('after the policy\'s attempts the client\'s stream ends as a server ends one uncleanly', async (t) => {
  const { upstream, proxy } = await setup(t, { reconnect: { ...FAST_RECONNECT, maxRetries: 2 } })
  const client = await v2Client(t, proxy)
  const subscription = await client.listen({ toolsListChanged: true })
  const raw = await RawListen.open(proxy.url('/mcp'), 'doomed', { toolsListChanged: true })
  await raw.until(() => raw.of(ACKNOWLEDGED).length === 1)
  await upstream.kill()
  await raw.ended
  t.equal(raw.messages.length, 1, 'nothing after the acknowledgement: no listen response')
  t.equal(await subscription.closed, 'remote', 'the SDK client sees an unexpected end, and may listen again')
  t.equal(await metricValue(proxy, 'sse_reconnection_failure_total'), 2)
  t.equal(await metricValue(proxy, 'sse_reconnection_attempts_total'), 4)
  t.equal(await metricValue(proxy, 'sse_reconnection_success_total'), 0)
})

t.test('an upstream that refuses the listen again ends the stream at once', async (t) => {
  const upstream = await handUpstream(t, (_request, body, response, count) => {
    if (count === 1) {
      sse(response, ack(body.id, { toolsListChanged: true }))
      setTimeout(() => response.socket?.destroy(), 20)
      return
    }
    response.writeHead(403).end()
  })
  const proxy = await startProxy(t, { routes: [{ kind: 'streamable-http', path: '/mcp', upstream: upstream.url }], reconnect: FAST_RECONNECT })
  const raw = await RawListen.open(proxy.url('/mcp'), 1, { toolsListChanged: true })
  await raw.ended
  t.equal(raw.messages.length, 1)
  t.equal(upstream.listens.length, 2, 'no retry after an answer not worth retrying')
  t.equal(await metricValue(proxy, 'sse_reconnection_failure_total'), 1)
})

t.test('a client that leaves during the gap ends the pending listen and every further attempt', async (t) => {
  const pending: ServerResponse[] = []
  const upstream = await handUpstream(t, (_request, body, response, count) => {
    if (count === 1) {
      sse(response, ack(body.id, { toolsListChanged: true }))
      setTimeout(() => response.socket?.destroy(), 20)
      return
    }
    // Listened to again: no answer yet.
    pending.push(response)
  })
  const proxy = await startProxy(t, { routes: [{ kind: 'streamable-http', path: '/mcp', upstream: upstream.url }], reconnect: FAST_RECONNECT })
  const raw = await RawListen.open(proxy.url('/mcp'), 1, { toolsListChanged: true })
  await waitFor(() => pending.length === 1)
  const upstreamClosed = once(pending[0] as ServerResponse, 'close')
  raw.close()
  await t.resolves(upstreamClosed, 'the pending upstream listen is aborted')
  await waitFor(async () => await metricValue(proxy, 'sse_streams_active') === 0)
  await sleep(300)
  t.equal(upstream.listens.length, 2, 'no further listen once the client is gone')
})

t.test('a client that leaves while the next attempt is waiting stops it', async (t) => {
  const { upstream, proxy } = await setup(t, { reconnect: { baseDelayMs: 1000, jitter: 0 } })
  const raw = await RawListen.open(proxy.url('/mcp'), 1, { toolsListChanged: true })
  await raw.until(() => raw.of(ACKNOWLEDGED).length === 1)
  await upstream.kill()
  await waitFor(async () => await metricValue(proxy, 'sse_reconnection_attempts_total') === 1)
  raw.close()
  await upstream.start()
  await sleep(1300)
  t.equal(listensSeen(upstream), 1, 'the timer was cleared: no listen after the client left')
  t.equal(await metricValue(proxy, 'sse_reconnection_attempts_total'), 1)
})

t.test('a graceful end by the server is forwarded and ends the stream, with no reconnect', async (t) => {
  const { upstream, proxy } = await setup(t)
  const client = await v2Client(t, proxy)
  const subscription = await client.listen({ toolsListChanged: true })
  const raw = await RawListen.open(proxy.url('/mcp'), 'bye', { toolsListChanged: true })
  await raw.until(() => raw.of(ACKNOWLEDGED).length === 1)
  await upstream.handler.close()
  await raw.ended
  const last = raw.messages.at(-1)
  t.equal(last?.id, 'bye', 'the listen response, with the client\'s id')
  t.ok(last !== undefined && 'result' in last)
  t.equal(await subscription.closed, 'graceful')
  await sleep(200)
  t.equal(listensSeen(upstream), 2, 'no listen again')
  t.equal(await metricValue(proxy, 'sse_reconnection_attempts_total'), 0)
})

t.test('keep-alive comments on a quiet listen stream, also while the upstream is away', async (t) => {
  const { upstream, proxy } = await setup(t, { health: { heartbeatSeconds: 1 }, reconnect: { baseDelayMs: 60000, jitter: 0 } })
  const raw = await RawListen.open(proxy.url('/mcp'), 1, { toolsListChanged: true })
  await raw.until(() => raw.keepalives >= 1)
  await upstream.kill()
  const before = raw.keepalives
  await raw.until(() => raw.keepalives >= before + 2)
  t.equal(raw.done, false)
  raw.close()
})

t.test('other 2026-07-28 streams are relayed as before', async (t) => {
  const { proxy } = await setup(t)
  const client = await v2Client(t, proxy)
  const result = await client.callTool({ name: 'echo', arguments: { text: 'still here' } })
  t.same(result.content, [{ type: 'text', text: 'still here' }])
})

async function waitFor (condition: () => boolean | Promise<boolean>, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await sleep(20)
  }
}
