import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { startEverythingUpstream } from './everything-upstream.js'

// The conformance upstream's own limits, which the suite does not reach.

async function connect (url: string): Promise<Client> {
  const client = new Client({ name: 'limits', version: '1' })
  await client.connect(new StreamableHTTPClientTransport(new URL(url)))
  return client
}

t.test('one session more than maxSessions gets 503; a session without requests for sessionIdleMs ends', async (t) => {
  const upstream = await startEverythingUpstream({ maxSessions: 1, sessionIdleMs: 300 })
  t.teardown(async () => await upstream.close())
  const first = await connect(upstream.url)
  t.teardown(async () => await first.close())
  t.equal(upstream.sessionCount, 1)
  const refused = await fetch(upstream.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'one-more', version: '1' } } })
  })
  t.equal(refused.status, 503)
  t.match(await refused.json(), { error: { message: 'At most 1 sessions at once' } })

  await sleep(600)
  t.equal(upstream.sessionCount, 0, 'the idle session ended')
  await t.rejects(first.listTools(), /404|Session not found/, 'its id is unknown from then on')
  const second = await connect(upstream.url)
  t.teardown(async () => await second.close())
  t.equal(upstream.sessionCount, 1, 'a new session takes its place')
})

t.test('anything but /mcp gets 404; a request without a session that is not a POST gets 400', async (t) => {
  const upstream = await startEverythingUpstream()
  t.teardown(async () => await upstream.close())
  t.equal((await fetch(new URL('/other', upstream.url))).status, 404)
  t.equal((await fetch(upstream.url, { headers: { accept: 'text/event-stream' } })).status, 400)
  t.equal((await fetch(upstream.url, { headers: { 'mcp-session-id': 'unknown' } })).status, 404)
  t.equal((await fetch(upstream.url, { method: 'POST', headers: { origin: 'http://evil.example.com' } })).status, 403)
  t.equal(upstream.sessionCount, 0)
})
