import t from 'tap'
import { parseJsonRpcBody, type JsonRpcBody } from '../lib/wire/json-rpc.js'
import { acknowledgedFilterIn, isListenResponse, listenGapNotifications, listenRequestIn, narrowFilter, relistenRequest } from '../lib/wire/mcp-listen.js'

// What the proxy reads of MCP 2026-07-28 listen messages, and what it writes in their place.
const listen = (message: unknown): JsonRpcBody => parseJsonRpcBody(Buffer.from(JSON.stringify(message)))

t.test('only a lone listen request with a request id is a listen stream', async (t) => {
  const request = { jsonrpc: '2.0', id: 'a"b', method: 'subscriptions/listen', params: { notifications: { toolsListChanged: true, resourceSubscriptions: ['x://1', 7] } } }
  const found = listenRequestIn(listen(request))
  t.equal(found?.idJson, '"a\\"b"')
  t.same(found?.filter, { toolsListChanged: true, promptsListChanged: false, resourcesListChanged: false, resourceSubscriptions: ['x://1'] }, 'a URI that is not a string is no URI')
  t.same(listenRequestIn(listen({ ...request, params: { notifications: 'all' } }))?.filter.resourceSubscriptions, [], 'a filter that is no object asks for nothing')
  t.equal(listenRequestIn(listen([request, request])), undefined, 'a batch is relayed as it is')
  t.equal(listenRequestIn(listen([request])), undefined, 'a batch of one too')
  t.equal(listenRequestIn(listen({ ...request, id: null })), undefined, 'no request id, no stream of its own')
  t.equal(listenRequestIn(listen({ ...request, method: 'tools/list', params: { cursor: 'subscriptions/listen' } })), undefined)
  t.equal(listenRequestIn(parseJsonRpcBody(undefined)), undefined)
})

t.test('a listen sent again keeps everything but its id, which the proxy mints unguessable', async (t) => {
  const request = listenRequestIn(listen({ jsonrpc: '2.0', id: 3, method: 'subscriptions/listen', params: { notifications: { promptsListChanged: true } } }))
  if (request === undefined) throw new Error('not a listen')
  const first = relistenRequest(request)
  const second = relistenRequest(request)
  t.not(first.idJson, second.idJson)
  t.same(JSON.parse(first.body.toString()), { jsonrpc: '2.0', id: JSON.parse(first.idJson), method: 'subscriptions/listen', params: { notifications: { promptsListChanged: true } } })
})

t.test('acknowledgements, responses and gap notifications', async (t) => {
  const acked = acknowledgedFilterIn('{"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged","params":{"notifications":{"resourcesListChanged":true}}}')
  t.equal(acked?.resourcesListChanged, true)
  t.equal(acknowledgedFilterIn('{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"notifications/subscriptions/acknowledged"}}'), undefined, 'a message that only mentions it')
  t.equal(acknowledgedFilterIn('{"jsonrpc":"2.0","method":"tools/list_changed"}'), undefined)
  t.ok(isListenResponse('{"jsonrpc":"2.0","id":"s","error":{"code":-32603,"message":"x"}}', '"s"'), 'an error answers it too')
  t.notOk(isListenResponse('{"jsonrpc":"2.0","id":"other","result":{}}', '"s"'))
  t.notOk(isListenResponse('{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}', '"s"'))
  const narrowed = narrowFilter(
    { toolsListChanged: true, promptsListChanged: true, resourcesListChanged: false, resourceSubscriptions: ['a', 'b'] },
    { toolsListChanged: true, promptsListChanged: false, resourcesListChanged: true, resourceSubscriptions: ['b', 'c'] })
  t.same(narrowed, { toolsListChanged: true, promptsListChanged: false, resourcesListChanged: false, resourceSubscriptions: ['b'] })
  const all = { toolsListChanged: true, promptsListChanged: true, resourcesListChanged: true, resourceSubscriptions: [] }
  t.same(narrowFilter(all, all), all)
  const notifications = listenGapNotifications({ toolsListChanged: true, promptsListChanged: true, resourcesListChanged: true, resourceSubscriptions: ['file:///"q"'] }, '7').map((text) => JSON.parse(text) as { method: string, params: Record<string, unknown> })
  t.same(notifications.map((notification) => notification.method), ['notifications/tools/list_changed', 'notifications/prompts/list_changed', 'notifications/resources/list_changed', 'notifications/resources/updated'])
  t.ok(notifications.every((notification) => (notification.params._meta as Record<string, unknown>)['io.modelcontextprotocol/subscriptionId'] === 7))
  t.equal(notifications[3]?.params.uri, 'file:///"q"')
})
