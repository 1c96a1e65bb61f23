import t, { type Test } from 'tap'
import { SseClient } from './helpers/sse-client.js'
import { SseUpstream } from './helpers/sse-upstream.js'
import { startProxy } from './helpers/proxy.js'
import { openMcpSessionWithStream } from './helpers/numbered-events.js'
import { RecordingMcpUpstream } from './helpers/recording-mcp-upstream.js'

// Ids that name a live stream, but a position it never issued: the answer is explicit, and live
// events flow at once.

async function liveStream (test: Test) {
  const upstream = await SseUpstream.start()
  test.teardown(async () => await upstream.close())
  const proxy = await startProxy(test, { routes: [{ kind: 'sse', path: '/events', upstream: upstream.url() }] })
  const first = await SseClient.open(proxy.url('/events'))
  test.teardown(() => first.close())
  await upstream.waitForStreams(1)
  upstream.broadcast('data: 1\n\ndata: 2\n\ndata: 3\n\n')
  const seen = await first.waitForEvents(3)
  const [streamId, epoch] = (seen[2]?.id ?? '').split('.')
  return { upstream, proxy, streamId: streamId ?? '', epoch: epoch ?? '' }
}

async function resumeWith (test: Test, url: string, lastEventId: string): Promise<SseClient> {
  const client = await SseClient.open(url, { 'last-event-id': lastEventId })
  test.teardown(() => client.close())
  return client
}

async function mcpProxy (test: Test) {
  const upstream = await RecordingMcpUpstream.start()
  test.teardown(async () => await upstream.close())
  const proxy = await startProxy(test, { routes: [{ kind: 'streamable-http', path: '/mcp', upstream: `${upstream.origin}/mcp` }] })
  return { upstream, proxy }
}

t.test('an id ahead of its stream is unknown, and the next live events arrive at once', async (t) => {
  const { upstream, proxy, streamId, epoch } = await liveStream(t)
  const resumed = await resumeWith(t, proxy.url('/events'), `${streamId}.${epoch}.103`)
  t.equal(resumed.headers['x-resume-status'], 'unrecoverable; reason=unknown')
  const [notice] = await resumed.waitForEvents(1)
  t.same(notice, { id: undefined, event: 'resume-status', data: '{"recovered":false,"reason":"unknown"}' })
  upstream.broadcast('data: 4\n\ndata: 5\n\n')
  const events = await resumed.waitForEvents(3, 2000)
  t.same(events.slice(1).map((event) => [event.data, event.id]), [['4', `${streamId}.${epoch}.4`], ['5', `${streamId}.${epoch}.5`]],
    'live from the stream\'s own position, not from the one the client made up')
  t.equal(upstream.requests.length, 1, 'on the same upstream stream')
})

t.test('an id with another epoch on a live stream is store-reset, never replayed', async (t) => {
  const { upstream, proxy, streamId } = await liveStream(t)
  const resumed = await resumeWith(t, proxy.url('/events'), `${streamId}.ZZZZZZZZ.1`)
  t.equal(resumed.headers['x-resume-status'], 'unrecoverable; reason=store-reset')
  const [notice] = await resumed.waitForEvents(1)
  t.same(notice, { id: undefined, event: 'resume-status', data: '{"recovered":false,"reason":"store-reset"}' })
  upstream.broadcast('data: 4\n\n')
  const events = await resumed.waitForEvents(2, 2000)
  t.same(events.map((event) => event.data).slice(1), ['4'], 'events 2 and 3 are not replayed under an epoch they were not recorded in')
  const metrics = await (await fetch(proxy.url('/metrics'))).text()
  t.match(metrics, /sse_last_event_id_misses_total\{route_kind="sse",route="\/events",reason="store-reset"\} 1/)
})

t.test('another session\'s stream under a wrong epoch is still just unknown: it reveals nothing', async (t) => {
  const { proxy } = await mcpProxy(t)
  const owner = await openMcpSessionWithStream(t, proxy.url('/mcp'))
  const other = await openMcpSessionWithStream(t, proxy.url('/mcp'))
  const [streamId, epoch] = (owner.standalone.events[0]?.id ?? '').split('.')
  t.ok(epoch !== undefined && epoch !== 'ZZZZZZZZ')
  const withSession = await SseClient.open(proxy.url('/mcp'), { 'mcp-session-id': other.sessionId, 'last-event-id': `${streamId ?? ''}.ZZZZZZZZ.1` })
  t.teardown(() => withSession.close())
  t.equal(withSession.headers['x-resume-status'], 'unrecoverable; reason=unknown')
})

t.test('an MCP standalone stream resumed with an id ahead of it goes on live at once', async (t) => {
  const { upstream, proxy } = await mcpProxy(t)
  const { sessionId, standalone } = await openMcpSessionWithStream(t, proxy.url('/mcp'))
  const [streamId, epoch, seq] = (standalone.events.at(-1)?.id ?? '').split('.')
  standalone.close()
  await standalone.ended
  const resumed = await SseClient.open(proxy.url('/mcp'), { 'mcp-session-id': sessionId, 'last-event-id': `${streamId ?? ''}.${epoch ?? ''}.${Number(seq) + 50}` })
  t.teardown(() => resumed.close())
  t.equal(resumed.headers['x-resume-status'], 'unrecoverable; reason=unknown')
  upstream.notifyStandaloneStreams('notifications/tools/list_changed')
  const events = await resumed.waitForEvents(2, 3000)
  t.match(events[1]?.data, /notifications\/tools\/list_changed/)
})
