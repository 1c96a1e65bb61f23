import t from 'tap'
import { serverCapabilitiesIn, serverCapabilitiesInBody } from '../lib/wire/mcp-initialize.js'

const result = (capabilities: unknown): string => JSON.stringify({ jsonrpc: '2.0', id: 1, result: { protocolVersion: '2025-11-25', capabilities, serverInfo: { name: 's', version: '1' } } })

t.test('the lists a server announces changes of, from its initialize answer', async (t) => {
  t.same(serverCapabilitiesIn(result({ tools: { listChanged: true }, prompts: { listChanged: false }, resources: { subscribe: true, listChanged: true }, logging: {} })),
    { listChanged: ['tools', 'resources'] })
  t.same(serverCapabilitiesIn(result({})), { listChanged: [] }, 'an initialize answer that announces nothing')
  t.same(serverCapabilitiesIn(`[${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { capabilities: 1 } })},${result({ prompts: { listChanged: true } })}]`),
    { listChanged: ['prompts'] }, 'found in a batch, after a message that only mentions capabilities')
})

t.test('anything else is not an initialize answer', async (t) => {
  t.equal(serverCapabilitiesIn('{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}'), undefined, 'no capabilities at all')
  t.equal(serverCapabilitiesIn('{"jsonrpc":"2.0","id":1,"result":{"capabilities":{}}}'), undefined, 'no protocol version')
  t.equal(serverCapabilitiesIn('{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":[]}}'), undefined, 'capabilities that are not an object')
  t.equal(serverCapabilitiesIn('{"capabilities": not json'), undefined)
})

t.test('an initialize answer\'s body, JSON or an event stream', async (t) => {
  const json = Buffer.from(result({ tools: { listChanged: true } }))
  t.same(serverCapabilitiesInBody(json, 'application/json', 65536), { listChanged: ['tools'] })
  const sse = Buffer.from(`: hello\n\nretry: 1000\n\nid: 0\ndata:\n\nevent: message\nid: 1\ndata: ${result({ resources: { listChanged: true } })}\n\nfield-nobody-knows: x\n\n`)
  t.same(serverCapabilitiesInBody(sse, 'text/event-stream; charset=utf-8', 65536), { listChanged: ['resources'] }, 'comments, retry hints, priming events and unknown fields pass by')
  t.equal(serverCapabilitiesInBody(sse, 'text/event-stream', 32), undefined, 'an event past the bound is not read')
})
