import t from 'tap'
import { SseClient } from './helpers/sse-client.js'
import { SseUpstream } from './helpers/sse-upstream.js'
import { startProxy } from './helpers/proxy.js'

const CLIENTS = 1000

t.test(`${CLIENTS} concurrent SSE clients on one route each have their own upstream stream, none queued behind a pool`, async (t) => {
  const upstream = await SseUpstream.start()
  t.teardown(async () => await upstream.close())
  const proxy = await startProxy(t, { routes: [{ kind: 'sse', path: '/events', upstream: upstream.url() }] })

  const clients: SseClient[] = []
  t.teardown(() => { for (const client of clients) client.close() })
  // Batches keep the connection bursts below the listen backlog.
  for (let batch = 0; batch < CLIENTS / 100; batch++) {
    clients.push(...await Promise.all(Array.from({ length: 100 }, async () => await SseClient.open(proxy.url('/events')))))
  }
  t.ok(clients.every((client) => client.status === 200))
  await upstream.waitForStreams(CLIENTS, 30000)
  t.equal(upstream.streams.size, CLIENTS, 'every client stream is open upstream at the same time')

  for (let round = 1; round <= 3; round++) {
    upstream.broadcast(`id: ${round}\ndata: round ${round}\n\n`)
    await Promise.all(clients.map(async (client) => await client.waitForEvents(round, 30000)))
  }
  t.ok(clients.every((client) => client.events.map((event) => event.data).join() === 'round 1,round 2,round 3'), 'each client got every event, in order')
})

t.test('upstream.maxConnections caps the connections to one upstream: a stream past it waits for a free one', async (t) => {
  const upstream = await SseUpstream.start()
  t.teardown(async () => await upstream.close())
  const proxy = await startProxy(t, { routes: [{ kind: 'sse', path: '/events', upstream: upstream.url() }], upstream: { maxConnections: 2 } })
  const first = await SseClient.open(proxy.url('/events'))
  const second = await SseClient.open(proxy.url('/events'))
  t.teardown(() => { first.close(); second.close() })
  await upstream.waitForStreams(2)
  const third = SseClient.open(proxy.url('/events'))
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(upstream.requests.length, 2, 'the third stream has not reached the upstream')
  first.close()
  const client = await third
  t.teardown(() => client.close())
  t.equal(client.status, 200)
  t.equal(upstream.requests.length, 3)
})
