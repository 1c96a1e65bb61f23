import t from 'tap'
import { readFile } from 'node:fs/promises'
import type { McpSseResilienceOptions } from '../lib/index.js'
import { clientsReceiving } from './helpers/relayed-events.js'
import { SseClient } from './helpers/sse-client.js'
import { SseUpstream } from './helpers/sse-upstream.js'
import { startProxy, type RunningProxy } from './helpers/proxy.js'
import { TEST_REDIS_URL, testRedis } from './helpers/test-redis.js'

const STORE_METRICS = [
  'sse_store_operations_total',
  'sse_store_latency_seconds',
  'sse_store_connections_up',
  'sse_store_connections_lost_total',
  'sse_upstream_leases_held',
  'sse_upstream_takeovers_total',
  'sse_store_resets_total',
  'sse_store_unrecoverable_resumes_total'
]

async function scrape (proxy: RunningProxy): Promise<string> {
  return await (await fetch(proxy.url('/metrics'))).text()
}

/** The proxy's metric families on the endpoint, samples or not. */
function proxyMetricNames (text: string): string[] {
  return [...text.matchAll(/^# TYPE (sse_\w+) /gm)].map((match) => match[1] ?? '').sort()
}

const ratioSample = /^sse_last_event_id_cache_hit_ratio (\S+)$/m

t.test('the Last-Event-ID hit ratio has no sample until a first resume, then reads hits over resumes', async (t) => {
  const upstream = await SseUpstream.start()
  t.teardown(async () => await upstream.close())
  const proxy = await startProxy(t, { routes: [{ kind: 'sse', path: '/events', upstream: upstream.url() }] })
  const [first] = await clientsReceiving(t, proxy, upstream, ['/events'], 'data: 1\n\n', 1)
  first?.close()
  await first?.ended
  t.notMatch(await scrape(proxy), ratioSample, 'nothing to divide yet: no ratio, rather than a made-up 1')

  const resumed = await SseClient.open(proxy.url('/events'), { 'last-event-id': first?.events[0]?.id ?? '' })
  resumed.close()
  t.equal(resumed.headers['x-resume-status'], 'recovered')
  t.equal((await scrape(proxy)).match(ratioSample)?.[1], '1')
  const lost = await SseClient.open(proxy.url('/events'), { 'last-event-id': 'not-an-id-of-ours' })
  lost.close()
  t.equal((await scrape(proxy)).match(ratioSample)?.[1], '0.5', 'one hit, one miss')
})

t.test('the Redis store\'s metrics appear where that store runs, and only there', async (t) => {
  const upstream = await SseUpstream.start()
  t.teardown(async () => await upstream.close())
  const routes: McpSseResilienceOptions['routes'] = [{ kind: 'sse', path: '/events', upstream: upstream.url() }]
  const memory = proxyMetricNames(await scrape(await startProxy(t, { routes })))
  t.same(memory.filter((name) => STORE_METRICS.includes(name)), [], 'none on the memory store')
  const redis = proxyMetricNames(await scrape(await startProxy(t, { routes, store: { kind: 'redis', url: TEST_REDIS_URL, keyPrefix: testRedis(t).keyPrefix } })))
  t.same(redis.filter((name) => STORE_METRICS.includes(name)), [...STORE_METRICS].sort(), 'all of them on the Redis store')
})

t.test('the README\'s metrics table lists exactly the metrics the proxy exports', async (t) => {
  const upstream = await SseUpstream.start()
  t.teardown(async () => await upstream.close())
  const proxy = await startProxy(t, {
    routes: [{ kind: 'sse', path: '/events', upstream: upstream.url() }],
    store: { kind: 'redis', url: TEST_REDIS_URL, keyPrefix: testRedis(t).keyPrefix }
  })
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8')
  const section = readme.slice(readme.indexOf('\n## Metrics\n'), readme.indexOf('\n## ', readme.indexOf('\n## Metrics\n') + 1))
  const rows = section.split('\n').filter((line) => line.startsWith('| `sse_'))
  const documented = rows.flatMap((row) => [...(row.split('|')[1] ?? '').matchAll(/`(sse_\w+)`/g)].map((match) => match[1] ?? '')).sort()
  t.same(documented, proxyMetricNames(await scrape(proxy)))
})
