import t from 'tap'
import { startDemoUpstream } from '../examples/demo/mcp-server.js'
import { SseClient } from './helpers/sse-client.js'
import { SseUpstream } from './helpers/sse-upstream.js'
import { startProxy, type RunningProxy } from './helpers/proxy.js'
import { RecordingMcpUpstream } from './helpers/recording-mcp-upstream.js'
import { sleep } from './helpers/hostile.js'

const MCP_ACCEPT = 'application/json, text/event-stream'
const SECRETS = /secret-of-a|list_changed/

async function initialize (proxy: RunningProxy, path: string): Promise<string> {
  const response = await fetch(proxy.url(path), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: MCP_ACCEPT },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'isolation', version: '1' } } })
  })
  await response.text()
  const sessionId = response.headers.get('mcp-session-id') ?? ''
  await (await fetch(proxy.url(path), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: MCP_ACCEPT, 'mcp-session-id': sessionId },
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })
  })).text()
  return sessionId
}

async function post (proxy: RunningProxy, path: string, sessionId: string, body: unknown): Promise<string> {
  const response = await fetch(proxy.url(path), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: MCP_ACCEPT, 'mcp-session-id': sessionId },
    body: JSON.stringify(body)
  })
  return await response.text()
}

t.test('an id of session A, presented by anyone else, yields none of A\'s events, on every route kind; A itself gets them', async (t) => {
  const mcpUpstream = await startDemoUpstream()
  t.teardown(async () => await mcpUpstream.close())
  const sseUpstream = await SseUpstream.start()
  t.teardown(async () => await sseUpstream.close())
  const proxy = await startProxy(t, {
    routes: [
      { kind: 'streamable-http', path: '/mcp', upstream: `${mcpUpstream.origin}/mcp` },
      { kind: 'streamable-http', path: '/mcp-b', upstream: `${mcpUpstream.origin}/mcp` },
      { kind: 'legacy-sse', path: '/sse', messagesPath: '/messages', upstream: `${mcpUpstream.origin}/sse` },
      { kind: 'legacy-sse', path: '/sse-b', messagesPath: '/messages-b', upstream: `${mcpUpstream.origin}/sse` },
      { kind: 'sse', path: '/events', upstream: sseUpstream.url('/events') },
      { kind: 'sse', path: '/events-b', upstream: sseUpstream.url('/events-b') }
    ],
    health: { heartbeatSeconds: 0 }
  })

  // Session A on every route kind, each with events that carry a secret.
  const mcpA = await initialize(proxy, '/mcp')
  const standaloneA = await SseClient.open(proxy.url('/mcp'), { 'mcp-session-id': mcpA })
  t.teardown(() => standaloneA.close())
  const postStream = await post(proxy, '/mcp', mcpA, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'countdown', arguments: { steps: 3, intervalMs: 0 }, _meta: { progressToken: 'secret-of-a-mcp' } } })
  const mcpPostId = /^id: (.+)$/m.exec(postStream)?.[1] ?? ''
  await post(proxy, '/mcp', mcpA, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'announce', arguments: {} } })
  const [listChanged] = await standaloneA.waitForEvents(1)
  const mcpGetId = listChanged?.id ?? ''

  const legacyA = await SseClient.open(proxy.url('/sse'))
  t.teardown(() => legacyA.close())
  const [endpoint] = await legacyA.waitForEvents(1)
  const legacySessionA = new URL(endpoint?.data ?? '', 'http://proxy').searchParams.get('sessionId') ?? ''
  await (await fetch(proxy.url(endpoint?.data ?? ''), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'echo', arguments: { text: 'secret-of-a-legacy' } } })
  })).text()
  await legacyA.waitForEvents(2)
  const legacyId = endpoint?.id ?? ''

  const sseA = await SseClient.open(proxy.url('/events'))
  t.teardown(() => sseA.close())
  await sseUpstream.waitForStreams(1)
  sseUpstream.broadcast('data: first-of-a\n\ndata: secret-of-a-sse\n\n')
  const [firstOfA] = await sseA.waitForEvents(2)
  const sseId = firstOfA?.id ?? ''

  const ids = { mcpPostId, mcpGetId, legacyId, sseId }
  for (const [name, id] of Object.entries(ids)) t.match(id, /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{8}\.\d+$/, `${name} is a proxy id`)
  const mcpB = await initialize(proxy, '/mcp')
  const mcpOtherRoute = await initialize(proxy, '/mcp-b')

  // Every id of A, to every route kind, by every other kind of requester.
  const attempts: Array<{ label: string, path: string, headers: Record<string, string>, ids: string[] }> = [
    { label: 'streamable-http, session B', path: '/mcp', headers: { 'mcp-session-id': mcpB }, ids: Object.values(ids) },
    { label: 'streamable-http, another route\'s session', path: '/mcp-b', headers: { 'mcp-session-id': mcpOtherRoute }, ids: Object.values(ids) },
    { label: 'streamable-http, no session', path: '/mcp', headers: {}, ids: Object.values(ids) },
    { label: 'legacy-sse', path: '/sse', headers: {}, ids: [mcpPostId, mcpGetId, sseId] },
    { label: 'legacy-sse, another route', path: '/sse-b', headers: {}, ids: [legacyId] },
    { label: 'sse', path: '/events', headers: {}, ids: [mcpPostId, mcpGetId, legacyId] },
    { label: 'sse, another route', path: '/events-b', headers: {}, ids: [sseId] }
  ]
  for (const attempt of attempts) {
    for (const id of attempt.ids) {
      const stolen = await SseClient.open(proxy.url(attempt.path), { ...attempt.headers, 'last-event-id': id })
      await sleep(60)
      stolen.close()
      const label = `${attempt.label}, ${Object.entries(ids).find(([, value]) => value === id)?.[0] ?? ''}`
      t.notMatch(JSON.stringify(stolen.events), SECRETS, `${label}: none of A's events`)
      t.notMatch(JSON.stringify(stolen.events), legacySessionA, `${label}: nor A's legacy session id`)
      if (stolen.status === 200) {
        t.equal(stolen.headers['x-resume-status'], 'unrecoverable; reason=unknown', `${label}: told exactly as for an id that does not exist`)
      } else {
        t.equal(stolen.status, 400, `${label}: the upstream's own answer to a GET without a session`)
      }
    }
  }

  // Session ids do not cross routes either.
  const crossed = [
    ['/mcp', { 'mcp-session-id': legacySessionA }],
    ['/mcp-b', { 'mcp-session-id': mcpA }],
    [`/messages?sessionId=${mcpA}`, {}],
    [`/messages-b?sessionId=${legacySessionA}`, {}]
  ] as const
  for (const [path, headers] of crossed) {
    const response = await fetch(proxy.url(path), {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: MCP_ACCEPT, ...headers },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' })
    })
    t.equal(response.status, 404, `${path} ${JSON.stringify(headers).slice(0, 40)}: another route's session is unknown here`)
    await response.text()
  }

  // The ids were real: A gets its events back with them.
  const ownMcp = await SseClient.open(proxy.url('/mcp'), { 'mcp-session-id': mcpA, 'last-event-id': mcpPostId })
  await ownMcp.ended
  t.equal(ownMcp.headers['x-resume-status'], 'recovered')
  t.match(JSON.stringify(ownMcp.events), /secret-of-a-mcp/, 'streamable-http: A replays its own POST stream')
  const ownSse = await SseClient.open(proxy.url('/events'), { 'last-event-id': sseId })
  t.teardown(() => ownSse.close())
  const [secretSse] = await ownSse.waitForEvents(1)
  t.equal(secretSse?.data, 'secret-of-a-sse', 'sse: the holder of the stream id resumes it')
  const ownLegacy = await SseClient.open(proxy.url('/sse'), { 'last-event-id': legacyId })
  t.teardown(() => ownLegacy.close())
  const [secretLegacy] = await ownLegacy.waitForEvents(1)
  t.match(secretLegacy?.data, /secret-of-a-legacy/, 'legacy-sse: the holder of the stream id resumes it')
})

/** Every bit position, over all the ids, is 1 in a quarter to three quarters of them: no fixed, counted or timed bits. */
function bitBalance (ids: string[], bytes: number): { min: number, max: number } {
  const ones = new Array<number>(bytes * 8).fill(0)
  for (const id of ids) {
    const decoded = Buffer.from(id, 'base64url')
    for (let bit = 0; bit < bytes * 8; bit++) {
      if (((decoded[bit >> 3] ?? 0) >> (7 - (bit & 7)) & 1) === 1) ones[bit] = (ones[bit] ?? 0) + 1
    }
  }
  return { min: Math.min(...ones) / ids.length, max: Math.max(...ones) / ids.length }
}

t.test('session ids carry 192 random bits and stream ids 128: the right length, all distinct, every bit varies', async (t) => {
  const upstream = await RecordingMcpUpstream.start()
  t.teardown(async () => await upstream.close())
  const proxy = await startProxy(t, {
    routes: [
      { kind: 'streamable-http', path: '/mcp', upstream: `${upstream.origin}/mcp` },
      { kind: 'legacy-sse', path: '/sse', messagesPath: '/messages', upstream: `${upstream.origin}/sse` }
    ]
  })
  const count = 200
  const sessionIds: string[] = []
  const streamIds: string[] = []
  for (let i = 0; i < count; i++) {
    const response = await fetch(proxy.url('/mcp'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: MCP_ACCEPT },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} })
    })
    await response.text()
    const sessionId = response.headers.get('mcp-session-id') ?? ''
    sessionIds.push(sessionId)
    const stream = await post(proxy, '/mcp', sessionId, { jsonrpc: '2.0', id: 2, method: 'tools/list' })
    streamIds.push(/^id: ([^.\n]+)\./m.exec(stream)?.[1] ?? '')
  }
  for (let i = 0; i < 20; i++) {
    const legacy = await SseClient.open(proxy.url('/sse'))
    const [endpoint] = await legacy.waitForEvents(1)
    legacy.close()
    sessionIds.push(new URL(endpoint?.data ?? '', 'http://proxy').searchParams.get('sessionId') ?? '')
    streamIds.push(endpoint?.id?.split('.')[0] ?? '')
  }

  t.ok(sessionIds.every((id) => /^[A-Za-z0-9_-]{32}$/.test(id)), 'session ids: 32 base64url characters, 24 bytes')
  t.ok(streamIds.every((id) => /^[A-Za-z0-9_-]{22}$/.test(id) && Buffer.from(id, 'base64url').length === 16), 'stream ids: 22 base64url characters, 16 bytes')
  t.equal(new Set(sessionIds).size, sessionIds.length, 'no session id twice')
  t.equal(new Set(streamIds).size, streamIds.length, 'no stream id twice')
  t.equal(new Set([...sessionIds, ...streamIds]).size, sessionIds.length + streamIds.length, 'no stream id is also a session id')
  const sessionBits = bitBalance(sessionIds, 24)
  t.ok(sessionBits.min > 0.25 && sessionBits.max < 0.75, `each of the 192 bits of a session id varies evenly (${sessionBits.min.toFixed(2)} to ${sessionBits.max.toFixed(2)} ones)`)
  const streamBits = bitBalance(streamIds, 16)
  t.ok(streamBits.min > 0.25 && streamBits.max < 0.75, `each of the 128 bits of a stream id varies evenly (${streamBits.min.toFixed(2)} to ${streamBits.max.toFixed(2)} ones)`)
  t.notOk(upstream.sessionIds.some((id) => sessionIds.includes(id)), 'none is the upstream\'s')
})
