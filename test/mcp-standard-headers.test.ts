import t, { type Test } from 'tap'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { MCP_ACCEPT } from './helpers/exchange.js'
import { startProxy, type RunningProxy } from './helpers/proxy.js'
import { proxyOnEveryRouteKind } from './helpers/recording-mcp-upstream.js'
import { SseClient } from './helpers/sse-client.js'
import { COUNTER_URI, V2Upstream } from './helpers/v2-upstream.js'

// MCP 2026-07-28 mirrors a request's method and name into headers (basic/transports/streamable-http,
// Request Metadata): the proxy refuses a POST whose headers disagree with its body, as the SDK v2 server does.
const MODERN = '2026-07-28'
const ENVELOPE = { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientCapabilities': {} }
const BASE_HEADERS = { 'content-type': 'application/json', accept: MCP_ACCEPT }

type Headers = Record<string, string>

function modern (headers: Headers): Headers {
  return { ...BASE_HEADERS, 'mcp-protocol-version': MODERN, ...headers }
}

function request (method: string, params: Record<string, unknown> = {}, id: unknown = 7): unknown {
  return { jsonrpc: '2.0', id, method, params: { ...params, _meta: ENVELOPE } }
}

interface Answer {
  status: number
  body: { id?: unknown, error?: { code?: number, message?: string, data?: { code?: string } }, result?: unknown } | undefined
}

async function post (url: string, headers: Headers, body: unknown): Promise<Answer> {
  const response = await fetch(url, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) })
  const text = await response.text()
  // An SSE answer carries its JSON-RPC response in its last data line.
  const json = response.headers.get('content-type')?.startsWith('text/event-stream') === true
    ? [...text.matchAll(/^data: (.+)$/gm)].at(-1)?.[1]
    : text
  let parsed: Answer['body']
  try {
    parsed = json === undefined || json === '' ? undefined : JSON.parse(json)
  } catch {
    parsed = undefined
  }
  return { status: response.status, body: parsed }
}

/** An SDK v2 upstream behind a streamable-http route, and the number of HTTP requests it has received. */
async function setup (test: Test): Promise<{ upstream: V2Upstream, proxy: RunningProxy, received: () => number }> {
  const upstream = await V2Upstream.start()
  test.teardown(async () => await upstream.close())
  let received = 0
  upstream.server.on('request', () => { received++ })
  const proxy = await startProxy(test, { routes: [{ kind: 'streamable-http', path: '/mcp', upstream: upstream.url }] })
  return { upstream, proxy, received: () => received }
}

async function scrape (proxy: RunningProxy): Promise<string> {
  return await (await fetch(proxy.url('/metrics'))).text()
}

function requestCount (metrics: string, routeKind: string, route: string, method: string): number {
  const line = metrics.split('\n').find((candidate) => candidate.startsWith(`sse_mcp_requests_total{route_kind="${routeKind}",route="${route}",method="${method}"} `))
  return line === undefined ? 0 : Number(line.split(' ').at(-1))
}

t.test('the SDK v2 client, pinned to 2026-07-28, works through the proxy: its headers match its bodies', async (t) => {
  const { upstream, proxy } = await setup(t)
  const client = new Client({ name: 'headers-test', version: '1.0.0' }, { versionNegotiation: { mode: { pin: MODERN } } })
  await client.connect(new StreamableHTTPClientTransport(new URL(proxy.url('/mcp'))))
  t.teardown(async () => await client.close())

  const tools = await client.listTools()
  t.same(tools.tools.map((tool) => tool.name).sort(), ['echo', 'progress', 'slow'])
  const echoed = await client.callTool({ name: 'echo', arguments: { text: 'héllo wörld' } })
  t.same(echoed.content, [{ type: 'text', text: 'héllo wörld' }])
  const read = await client.readResource({ uri: COUNTER_URI })
  t.same(read.contents, [{ uri: COUNTER_URI, text: '1' }])
  t.ok(upstream.methods.includes('tools/call') && upstream.methods.includes('resources/read'), 'the upstream got the requests, with their Mcp-Method headers')

  const metrics = await scrape(proxy)
  t.equal(requestCount(metrics, 'streamable-http', '/mcp', 'tools/call'), 1)
  t.equal(requestCount(metrics, 'streamable-http', '/mcp', 'resources/read'), 1)
  t.ok(requestCount(metrics, 'streamable-http', '/mcp', 'tools/list') >= 1)
})

interface Refused {
  name: string
  headers: Headers
  body: unknown
  id: string | number | null
  message: RegExp
  /** Whether the SDK v2 server, asked directly, refuses it with -32020 as well (a body it can read as 2026-07-28). */
  sdkAgrees: boolean
}

const REFUSED: Refused[] = [
  {
    name: 'an Mcp-Method that names another method',
    headers: modern({ 'mcp-method': 'tools/list', 'mcp-name': 'echo' }),
    body: request('tools/call', { name: 'echo', arguments: { text: 'x' } }),
    id: 7,
    message: /Mcp-Method header does not match/,
    sdkAgrees: true
  },
  {
    name: 'an Mcp-Method in another case (values are case-sensitive)',
    headers: modern({ 'mcp-method': 'Tools/Call', 'mcp-name': 'echo' }),
    body: request('tools/call', { name: 'echo', arguments: { text: 'x' } }),
    id: 7,
    message: /Mcp-Method header does not match/,
    sdkAgrees: true
  },
  {
    name: 'a missing Mcp-Method',
    headers: modern({ 'mcp-name': 'echo' }),
    body: request('tools/call', { name: 'echo', arguments: { text: 'x' } }, 'req-1'),
    id: 'req-1',
    message: /Mcp-Method header is missing/,
    sdkAgrees: true
  },
  {
    name: 'an Mcp-Name that names another tool',
    headers: modern({ 'mcp-method': 'tools/call', 'mcp-name': 'slow' }),
    body: request('tools/call', { name: 'echo', arguments: { text: 'x' } }),
    id: 7,
    message: /Mcp-Name header does not match params\.name/,
    sdkAgrees: true
  },
  {
    name: 'a missing Mcp-Name on tools/call',
    headers: modern({ 'mcp-method': 'tools/call' }),
    body: request('tools/call', { name: 'echo', arguments: { text: 'x' } }),
    id: 7,
    message: /Mcp-Name header is missing/,
    sdkAgrees: true
  },
  {
    name: 'an Mcp-Name that names another resource',
    headers: modern({ 'mcp-method': 'resources/read', 'mcp-name': 'demo://other' }),
    body: request('resources/read', { uri: COUNTER_URI }),
    id: 7,
    message: /params\.uri/,
    sdkAgrees: true
  },
  {
    name: 'an Mcp-Name that names another prompt',
    headers: modern({ 'mcp-method': 'prompts/get', 'mcp-name': 'greeting' }),
    body: request('prompts/get', { name: 'farewell' }),
    id: 7,
    message: /params\.name/,
    sdkAgrees: true
  },
  {
    name: 'a Base64 Mcp-Name that decodes to another name',
    headers: modern({ 'mcp-method': 'tools/call', 'mcp-name': `=?base64?${Buffer.from('slow').toString('base64')}?=` }),
    body: request('tools/call', { name: 'echo', arguments: { text: 'x' } }),
    id: 7,
    message: /Mcp-Name header does not match/,
    sdkAgrees: true
  },
  {
    name: 'an Mcp-Name whose Base64 is not canonical',
    headers: modern({ 'mcp-method': 'tools/call', 'mcp-name': '=?base64?ZWNobw?=' }),
    body: request('tools/call', { name: 'echo', arguments: { text: 'x' } }),
    id: 7,
    message: /invalid Base64/,
    sdkAgrees: true
  },
  {
    name: 'an Mcp-Name whose Base64 is not UTF-8',
    headers: modern({ 'mcp-method': 'tools/call', 'mcp-name': '=?base64?/w==?=' }),
    body: request('tools/call', { name: 'echo', arguments: { text: 'x' } }),
    id: 7,
    message: /invalid Base64/,
    sdkAgrees: true
  },
  {
    name: 'an MCP-Protocol-Version that is not the body\'s',
    headers: modern({ 'mcp-protocol-version': '2027-01-01', 'mcp-method': 'tools/list' }),
    body: request('tools/list'),
    id: 7,
    message: /MCP-Protocol-Version header does not match/,
    sdkAgrees: true
  },
  {
    name: 'an initialize (the 2025-era handshake) sent as 2026-07-28',
    headers: modern({ 'mcp-method': 'initialize' }),
    body: { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'c', version: '1' } } },
    id: 1,
    message: /initialize request/,
    sdkAgrees: true
  },
  {
    name: 'a notification whose Mcp-Method names another method',
    headers: modern({ 'mcp-method': 'notifications/cancelled' }),
    body: { jsonrpc: '2.0', method: 'notifications/initialized', params: { _meta: ENVELOPE } },
    id: null,
    message: /Mcp-Method header does not match/,
    sdkAgrees: true
  },
  {
    name: 'a request whose id is not a JSON-RPC id (answered with id null)',
    headers: modern({ 'mcp-method': 'tools/list' }),
    body: request('tools/call', { name: 'echo' }, { not: 'an id' }),
    id: null,
    message: /Mcp-Method header does not match/,
    // The SDK refuses that body as invalid JSON-RPC before it looks at headers.
    sdkAgrees: false
  }
]

t.test('a 2026-07-28 POST whose headers disagree with its body gets 400 and -32020 from the proxy; the upstream never sees it', async (t) => {
  const { upstream, proxy, received } = await setup(t)
  for (const refused of REFUSED) {
    const before = received()
    const answer = await post(proxy.url('/mcp'), refused.headers, refused.body)
    t.equal(answer.status, 400, refused.name)
    t.equal(answer.body?.error?.code, -32020, refused.name)
    t.equal(answer.body?.id, refused.id, `${refused.name}: the answer names the request`)
    t.match(answer.body?.error?.message, refused.message, refused.name)
    t.equal(answer.body?.error?.data?.code, 'FST_MCP_SSE_HEADER_MISMATCH')
    t.equal(received(), before, `${refused.name}: not forwarded`)
    if (refused.sdkAgrees) {
      const direct = await post(upstream.url, refused.headers, refused.body)
      t.same([direct.status, direct.body?.error?.code], [400, -32020], `${refused.name}: the SDK v2 server refuses it alike`)
    }
  }
})

interface Accepted {
  name: string
  headers: Headers
  body: unknown
  /** What the upstream answers: its result, or its own error code. */
  answer: { status: number, errorCode?: number, result?: unknown }
}

const ECHO = request('tools/call', { name: 'echo', arguments: { text: 'hi' } })
const ECHO_RESULT = { content: [{ type: 'text', text: 'hi' }] }

const ACCEPTED: Accepted[] = [
  {
    name: 'matching Mcp-Method and Mcp-Name',
    headers: modern({ 'mcp-method': 'tools/call', 'mcp-name': 'echo' }),
    body: ECHO,
    answer: { status: 200, result: ECHO_RESULT }
  },
  {
    name: 'an Mcp-Name in the Base64 sentinel form',
    headers: modern({ 'mcp-method': 'tools/call', 'mcp-name': `=?base64?${Buffer.from('echo').toString('base64')}?=` }),
    body: ECHO,
    answer: { status: 200, result: ECHO_RESULT }
  },
  {
    name: 'a resources/read whose Mcp-Name is its URI',
    headers: modern({ 'mcp-method': 'resources/read', 'mcp-name': COUNTER_URI }),
    body: request('resources/read', { uri: COUNTER_URI }),
    answer: { status: 200, result: { contents: [{ uri: COUNTER_URI, text: '1' }] } }
  },
  {
    name: 'an Mcp-Name on a method that has no name (ignored, as the SDK does)',
    headers: modern({ 'mcp-method': 'tools/list', 'mcp-name': 'anything' }),
    body: request('tools/list'),
    answer: { status: 200 }
  },
  {
    name: 'a tools/call without params.name: nothing for Mcp-Name to mirror, the upstream\'s to refuse',
    headers: modern({ 'mcp-method': 'tools/call' }),
    body: request('tools/call', { arguments: {} }),
    answer: { status: 200, errorCode: -32602 }
  },
  {
    name: 'a body whose _meta is not an object: the upstream answers it',
    headers: modern({ 'mcp-method': 'tools/call', 'mcp-name': 'echo' }),
    body: { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', _meta: 'not an object' } },
    answer: { status: 400, errorCode: -32600 }
  },
  {
    name: 'a request without params',
    headers: modern({ 'mcp-method': 'tools/call' }),
    body: { jsonrpc: '2.0', id: 7, method: 'tools/call' },
    answer: { status: 400, errorCode: -32602 }
  },
  {
    name: 'a notification without Mcp-Method (the spec defines no headers for notifications)',
    headers: modern({}),
    body: { jsonrpc: '2.0', method: 'notifications/initialized' },
    answer: { status: 202 }
  },
  {
    name: 'a notification whose Mcp-Method is its method',
    headers: modern({ 'mcp-method': 'notifications/initialized' }),
    body: { jsonrpc: '2.0', method: 'notifications/initialized', params: { _meta: ENVELOPE } },
    answer: { status: 202 }
  },
  {
    name: 'a batch (2026-07-28 has none: the upstream refuses it)',
    headers: modern({ 'mcp-method': 'tools/list' }),
    body: [request('tools/list', {}, 1)],
    answer: { status: 400, errorCode: -32600 }
  },
  {
    name: 'a posted response',
    headers: modern({ 'mcp-method': 'tools/list' }),
    body: { jsonrpc: '2.0', id: 1, result: {} },
    answer: { status: 400, errorCode: -32000 }
  },
  {
    name: 'a body that is not JSON-RPC',
    headers: modern({ 'mcp-method': 'tools/list' }),
    body: '"just a string"',
    answer: { status: 400, errorCode: -32600 }
  },
  {
    name: 'a body that is not JSON',
    headers: modern({ 'mcp-method': 'tools/list' }),
    body: '{ not json',
    answer: { status: 400, errorCode: -32700 }
  },
  {
    name: 'an empty body',
    headers: modern({ 'mcp-method': 'tools/list' }),
    body: '',
    answer: { status: 400, errorCode: -32700 }
  },
  {
    name: 'no body at all',
    headers: { accept: MCP_ACCEPT, 'mcp-protocol-version': MODERN, 'mcp-method': 'tools/list' },
    body: undefined,
    answer: { status: 415, errorCode: -32000 }
  },
  {
    name: 'a 2025-era request: these headers are not defined there, and pass unchecked',
    headers: { ...BASE_HEADERS, 'mcp-protocol-version': '2025-11-25', 'mcp-method': 'tools/list', 'mcp-name': 'not-echo' },
    body: { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hi' } } },
    answer: { status: 200, result: ECHO_RESULT }
  },
  {
    name: 'a request without MCP-Protocol-Version (2025-03-26 by default): unchecked',
    headers: { ...BASE_HEADERS, 'mcp-method': 'prompts/list' },
    body: { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hi' } } },
    answer: { status: 200, result: ECHO_RESULT }
  }
]

t.test('POSTs whose headers agree with their body, or that the headers do not describe, are forwarded as they are', async (t) => {
  const { upstream, proxy, received } = await setup(t)
  for (const accepted of ACCEPTED) {
    const before = received()
    const methodsBefore = upstream.methods.length
    const answer = await post(proxy.url('/mcp'), accepted.headers, accepted.body)
    t.equal(received(), before + 1, `${accepted.name}: forwarded`)
    t.equal(answer.status, accepted.answer.status, accepted.name)
    t.equal(answer.body?.error?.code, accepted.answer.errorCode, `${accepted.name}: the upstream's answer`)
    if (accepted.answer.result !== undefined) t.match(answer.body?.result, accepted.answer.result, accepted.name)
    const sentMethod = accepted.headers['mcp-method']
    if (sentMethod !== undefined) t.same(upstream.methods.slice(methodsBefore), [sentMethod], `${accepted.name}: its Mcp-Method reached the upstream untouched`)
  }
})

t.test('requests are counted by MCP method, after the header check, with unknown methods as other', async (t) => {
  const { proxy } = await setup(t)
  const call = modern({ 'mcp-method': 'tools/call', 'mcp-name': 'echo' })
  await post(proxy.url('/mcp'), call, ECHO)
  await post(proxy.url('/mcp'), call, ECHO)
  await post(proxy.url('/mcp'), modern({ 'mcp-method': 'tools/list' }), request('tools/list'))
  await post(proxy.url('/mcp'), modern({ 'mcp-method': 'vendor/do-something' }), request('vendor/do-something'))
  await post(proxy.url('/mcp'), modern({ 'mcp-method': 'x-unique-1' }), request('x-unique-1'))
  // Refused: counted nowhere, whichever of its header or body is believed.
  await post(proxy.url('/mcp'), modern({ 'mcp-method': 'tools/list', 'mcp-name': 'echo' }), ECHO)
  // 2025 era: every message of a batch, by the method in its body; a response is not a request.
  const legacy = { ...BASE_HEADERS, 'mcp-protocol-version': '2025-11-25' }
  await post(proxy.url('/mcp'), legacy, [{ jsonrpc: '2.0', id: 1, method: 'tools/list' }, { jsonrpc: '2.0', method: 'notifications/initialized' }])
  await post(proxy.url('/mcp'), legacy, { jsonrpc: '2.0', id: 1, result: {} })
  await post(proxy.url('/mcp'), legacy, { jsonrpc: '2.0', id: 2, method: 42 })

  const metrics = await scrape(proxy)
  const count = (method: string): number => requestCount(metrics, 'streamable-http', '/mcp', method)
  t.equal(count('tools/call'), 2)
  t.equal(count('tools/list'), 2)
  t.equal(count('notifications/initialized'), 1)
  t.equal(count('other'), 3, 'a vendor method, a made-up one and a method that is not a string')
  t.notMatch(metrics, /vendor\/do-something|x-unique-1/, 'a client cannot add label values')
  const total = [...metrics.matchAll(/^sse_mcp_requests_total\{[^}]*\} (\d+)$/gm)].reduce((sum, match) => sum + Number(match[1]), 0)
  t.equal(total, 8, 'nothing else counted: not the refused POST, not the response')
})

t.test('legacy-sse POSTs are counted by the method in their body', async (t) => {
  const { proxy } = await proxyOnEveryRouteKind(t)
  const stream = await SseClient.open(proxy.url('/sse'))
  t.teardown(() => stream.close())
  const [endpoint] = await stream.waitForEvents(1)
  const messages = proxy.url(endpoint?.data ?? '')
  for (const method of ['tools/call', 'tools/call', 'resources/subscribe', 'made/up']) {
    const answer = await post(messages, BASE_HEADERS, { jsonrpc: '2.0', id: 1, method, params: { name: 'echo', uri: 'demo://x' } })
    t.equal(answer.status, 202)
  }
  const metrics = await scrape(proxy)
  t.equal(requestCount(metrics, 'legacy-sse', '/sse', 'tools/call'), 2)
  t.equal(requestCount(metrics, 'legacy-sse', '/sse', 'resources/subscribe'), 1)
  t.equal(requestCount(metrics, 'legacy-sse', '/sse', 'other'), 1)
})
