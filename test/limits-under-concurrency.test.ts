import t from 'tap'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { startProxy } from './helpers/proxy.js'
import { RecordingMcpUpstream } from './helpers/recording-mcp-upstream.js'
import { openMcpSession } from './helpers/numbered-events.js'
import { SseUpstream } from './helpers/sse-upstream.js'

// Limits checked before an upstream round trip hold when requests arrive together: each
// request holds its place across the wait, and gives it back when it fails.

const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }
const INITIALIZE = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'burst', version: '1' } } })

async function sessionsActive (url: string): Promise<number> {
  const text = await (await fetch(url)).text()
  return Number(/^sse_sessions_active (\d+)$/m.exec(text)?.[1] ?? -1)
}

t.test('sessions.maxSessions: 200 initializes at once against a limit of 50 open exactly 50 sessions, upstream too', async (t) => {
  const upstream = await RecordingMcpUpstream.start()
  t.teardown(async () => await upstream.close())
  upstream.initializeAnswerDelayMs = 200
  const proxy = await startProxy(t, { routes: [{ kind: 'streamable-http', path: '/mcp', upstream: `${upstream.origin}/mcp` }], sessions: { maxSessions: 50 } })
  const answers = await Promise.all(Array.from({ length: 200 }, async () => {
    const response = await fetch(proxy.url('/mcp'), { method: 'POST', headers: MCP_HEADERS, body: INITIALIZE })
    await response.text()
    return { status: response.status, session: response.headers.get('mcp-session-id') }
  }))
  t.equal(answers.filter((answer) => answer.status === 200 && answer.session !== null).length, 50, '50 sessions opened')
  t.equal(answers.filter((answer) => answer.status === 503).length, 150, 'the other 150 were refused with 503')
  t.equal(upstream.sessionIds.length, 50, 'and never reached the upstream: it opened 50 sessions')
  t.equal(await sessionsActive(proxy.url('/metrics')), 50)
})

t.test('a place held for an initialize that fails upstream is given back', async (t) => {
  let failing = true
  let initializes = 0
  const upstream = await SseUpstream.start((request, response) => {
    initializes++
    request.resume()
    setTimeout(() => {
      if (failing) {
        response.writeHead(500, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"down"}}')
      } else {
        response.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': `upstream-${initializes}` }).end('{"jsonrpc":"2.0","id":1,"result":{}}')
      }
    }, 100)
  })
  t.teardown(async () => await upstream.close())
  const proxy = await startProxy(t, { routes: [{ kind: 'streamable-http', path: '/mcp', upstream: upstream.url('/mcp') }], sessions: { maxSessions: 2 } })
  const initialize = async (): Promise<number> => {
    const response = await fetch(proxy.url('/mcp'), { method: 'POST', headers: MCP_HEADERS, body: INITIALIZE })
    await response.text()
    return response.status
  }
  t.same((await Promise.all([initialize(), initialize(), initialize()])).sort(), [500, 500, 503], 'two held places while the upstream tried, the third refused')
  failing = false
  t.same(await Promise.all([initialize(), initialize()]), [200, 200], 'both places were given back')
  t.equal(await initialize(), 503, 'and are taken now')
  t.equal(await sessionsActive(proxy.url('/metrics')), 2)
})

t.test('sse GETs at once against sessions.maxSessions: exactly the limit get a stream', async (t) => {
  const upstream = await SseUpstream.start((request, response) => {
    // A slow upstream: every GET waits for its answer, so all arrive before any is admitted.
    setTimeout(() => upstream.openStream(request, response), 200)
  })
  t.teardown(async () => await upstream.close())
  const proxy = await startProxy(t, { routes: [{ kind: 'sse', path: '/events', upstream: upstream.url() }], sessions: { maxSessions: 25 } })
  const controller = new AbortController()
  t.teardown(() => controller.abort())
  const statuses = await Promise.all(Array.from({ length: 100 }, async () => {
    const response = await fetch(proxy.url('/events'), { signal: controller.signal })
    if (response.status !== 200) await response.text()
    return response.status
  }))
  t.equal(statuses.filter((status) => status === 200).length, 25)
  t.equal(statuses.filter((status) => status === 503).length, 75)
  t.equal(upstream.requests.length, 25, 'the refused GETs never reached the upstream')
  t.equal(await sessionsActive(proxy.url('/metrics')), 25)
})

t.test('sessions.maxStreamsPerSession: 30 calls at once in one session get at most 5 live streams; the rest 429, never run upstream', async (t) => {
  const calls: IncomingMessage[] = []
  const held: ServerResponse[] = []
  const upstream = await SseUpstream.start((request, response) => {
    if (request.headers['mcp-session-id'] === undefined) {
      response.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'upstream-1' })
      response.end('{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"u","version":"1"}}}')
      return
    }
    calls.push(request)
    // A long tool call: its stream stays open, and its answer is slow to start.
    setTimeout(() => {
      upstream.openStream(request, response)
      held.push(response)
      response.write('id: 1\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}\n\n')
    }, 200)
  })
  t.teardown(async () => await upstream.close())
  const proxy = await startProxy(t, { routes: [{ kind: 'streamable-http', path: '/mcp', upstream: upstream.url('/mcp') }], sessions: { maxStreamsPerSession: 5 } })
  const { headers } = await openMcpSession(proxy.url('/mcp'))
  const controller = new AbortController()
  t.teardown(() => controller.abort())
  const statuses = await Promise.all(Array.from({ length: 30 }, async (_, index) => {
    const response = await fetch(proxy.url('/mcp'), { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: index + 2, method: 'tools/call', params: { name: 'slow' } }), signal: controller.signal })
    if (response.status !== 200) await response.text()
    return response.status
  }))
  t.equal(statuses.filter((status) => status === 200).length, 5)
  t.equal(statuses.filter((status) => status === 429).length, 25)
  t.equal(calls.length, 5, 'the refused calls never ran upstream')
  for (const response of held) response.end()
})

t.test('an upstream that opens a session for a request that is not an initialize: a proxy id when there is room, never the upstream\'s', async (t) => {
  let opened = 0
  const upstream = await SseUpstream.start((request, response) => {
    request.resume()
    opened++
    response.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': `upstream-secret-${opened}` }).end('{"jsonrpc":"2.0","id":1,"result":{}}')
  })
  t.teardown(async () => await upstream.close())
  const proxy = await startProxy(t, { routes: [{ kind: 'streamable-http', path: '/mcp', upstream: upstream.url('/mcp') }], sessions: { maxSessions: 1 } })
  const call = async (): Promise<string | null> => {
    const response = await fetch(proxy.url('/mcp'), { method: 'POST', headers: MCP_HEADERS, body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' })
    await response.text()
    return response.headers.get('mcp-session-id')
  }
  const first = await call()
  t.ok(first !== null && !first.startsWith('upstream-'), 'a session of the proxy\'s, in the one place left')
  t.equal(await call(), null, 'no place left: no session, and the upstream\'s id does not leak')
  t.equal(await sessionsActive(proxy.url('/metrics')), 1)
})
