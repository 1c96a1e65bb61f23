import t from 'tap'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { startModernEverythingUpstream } from './modern-everything-upstream.js'

// The 2026-07-28 conformance upstream's own bounds and refusals, which the suite does not reach.

async function connect (url: string): Promise<Client> {
  const client = new Client({ name: 'limits', version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } })
  await client.connect(new StreamableHTTPClientTransport(new URL(url)))
  return client
}

t.test('the trigger tools add at most 8 tools and 8 prompts, however often they are called', async (t) => {
  const upstream = await startModernEverythingUpstream()
  t.teardown(async () => await upstream.close())
  const client = await connect(upstream.url)
  t.teardown(async () => await client.close())
  const before = await client.listTools()
  const prompts = await client.listPrompts()
  for (let call = 0; call < 10; call++) {
    await client.callTool({ name: 'test_trigger_tool_change', arguments: {} })
    await client.callTool({ name: 'test_trigger_prompt_change', arguments: {} })
  }
  t.equal((await client.listTools()).tools.length, before.tools.length + 8)
  t.equal((await client.listPrompts()).prompts.length, prompts.prompts.length + 8)
  t.match(await client.callTool({ name: 'test_added_tool_8', arguments: {} }), { content: [{ type: 'text', text: 'added tool 8' }] }, 'an added tool answers')
})

t.test('anything but /mcp gets 404; a foreign Origin gets 403, a loopback one is served', async (t) => {
  const upstream = await startModernEverythingUpstream()
  t.teardown(async () => await upstream.close())
  t.equal((await fetch(new URL('/other', upstream.url))).status, 404)
  t.equal((await fetch(upstream.url, { method: 'POST', headers: { origin: 'http://evil.example.com' } })).status, 403)
  const loopback = await fetch(upstream.url, {
    method: 'POST',
    headers: {
      origin: 'http://localhost:1234',
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'tools/list'
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/list',
      params: { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } }
    })
  })
  t.equal(loopback.status, 200, 'a loopback origin, any port, is served')
  t.match(await loopback.json(), { result: { tools: [{ name: 'test_simple_text' }] } })
})
