import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'
import type { McpSseResilienceOptions } from '../lib/index.js'
import { CountingUpstream } from './helpers/counting-upstream.js'
import { startProxy } from './helpers/proxy.js'
import { SseClient } from './helpers/sse-client.js'
import { TEST_REDIS_URL, testRedis } from './helpers/test-redis.js'

// The Grafana dashboard and the Prometheus alerts of docs/observability/ may name only
// metrics the proxy exports: a renamed or removed metric would leave a panel empty and
// an alert that never fires, and nothing else would say so.

const DASHBOARD = new URL('../docs/observability/grafana-dashboard.json', import.meta.url)
const ALERTS = new URL('../docs/observability/alerts.yaml', import.meta.url)

interface Panel {
  type: string
  title: string
  targets?: Array<{ expr: string }>
  panels?: Panel[]
}
interface Dashboard {
  panels: Panel[]
  templating: { list: Array<{ query: string | { query: string } }> }
}
interface AlertRules {
  groups: Array<{ rules: Array<{ alert: string, expr: string, labels?: { severity?: string }, annotations?: { summary?: string } }> }>
}

const PROMQL_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan'])

/** The metric names a PromQL expression reads: not functions, aggregations, labels, keywords or Grafana variables. */
function metricNames (expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
  const names: string[] = []
  for (const match of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const before = stripped[match.index - 1] ?? ' '
    const after = stripped.slice(match.index + match[0].length).trimStart()
    // A function or aggregation; the exponent of a number; a keyword.
    if (after.startsWith('(') || /[\d.$]/.test(before) || PROMQL_KEYWORDS.has(match[0].toLowerCase())) continue
    names.push(match[0])
  }
  return names
}

function dashboardQueries (dashboard: Dashboard): Array<{ where: string, expr: string }> {
  const queries: Array<{ where: string, expr: string }> = []
  const visit = (panels: Panel[]): void => {
    for (const panel of panels) {
      for (const target of panel.targets ?? []) queries.push({ where: `panel "${panel.title}"`, expr: target.expr })
      visit(panel.panels ?? [])
    }
  }
  visit(dashboard.panels)
  for (const variable of dashboard.templating.list) {
    const query = typeof variable.query === 'string' ? variable.query : variable.query.query
    // label_values(metric{...}, label): the label is not a metric.
    const metric = /^label_values\(([^,]+),/.exec(query)?.[1]
    if (metric !== undefined) queries.push({ where: `variable ${query}`, expr: metric })
  }
  return queries
}

/** Every name a scrape shows; a histogram's or summary's series count as its name too. */
function exportedNames (scrape: string): Set<string> {
  const names = new Set<string>()
  for (const line of scrape.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type !== null) {
      const [, name = '', kind] = type
      names.add(name)
      if (kind === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix)
      if (kind === 'summary') for (const suffix of ['_sum', '_count']) names.add(name + suffix)
      continue
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line)
    if (sample?.[1] !== undefined) names.add(sample[1])
  }
  return names
}

/** A proxy after traffic of every kind the panels show: streams, events, a resume, a measured request. */
async function scrapeAfterTraffic (test: Test, extra: Partial<McpSseResilienceOptions>): Promise<string> {
  const upstream = await CountingUpstream.start({ replays: true })
  test.teardown(async () => await upstream.close())
  const proxy = await startProxy(test, {
    routes: [
      { kind: 'sse', path: '/events', upstream: upstream.url() },
      { kind: 'streamable-http', path: '/mcp', upstream: 'http://127.0.0.1:9/mcp' }
    ],
    ...extra
  })
  const client = await SseClient.open(proxy.url('/events'))
  const events = await client.waitForEvents(5)
  client.close()
  await client.ended
  const resumed = await SseClient.open(proxy.url('/events'), { 'last-event-id': events.at(-1)?.id ?? '' })
  test.teardown(() => resumed.close())
  test.equal(resumed.headers['x-resume-status'], 'recovered', 'the traffic includes a resume')
  await resumed.waitForEvents(3)
  await fetch(proxy.url('/mcp'), { method: 'DELETE' })
  return await (await fetch(proxy.url('/metrics'))).text()
}

t.test('the PromQL reader finds metric names, and nothing else', async (t) => {
  t.same(metricNames('histogram_quantile(0.99, sum by (op, le) (rate(a_bucket{job=~"$job", x="y{z}"}[$__rate_interval])))'), ['a_bucket'])
  t.same(metricNames('sum(increase(b_total[1h])) / on (job) group_left (route) c > 1e3 and absent(d{route="e"}) unless bool f offset 5m'), ['b_total', 'c', 'd', 'f'])
})

t.test('every metric the dashboard and the alerts name is one the proxy exports, in memory or Redis mode', async (t) => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard
  const alerts = parse(readFileSync(ALERTS, 'utf8')) as AlertRules
  const queries = [
    ...dashboardQueries(dashboard),
    ...alerts.groups.flatMap((group) => group.rules.map((rule) => ({ where: `alert ${rule.alert}`, expr: rule.expr })))
  ]
  for (const { where, expr } of queries) t.ok(metricNames(expr).length > 0, `${where} names a metric`)

  // Store metrics are exported in Redis mode only, some series only after a resume: the union of both.
  const exported = new Set([
    ...exportedNames(await scrapeAfterTraffic(t, {})),
    ...exportedNames(await scrapeAfterTraffic(t, { store: { kind: 'redis', url: TEST_REDIS_URL, keyPrefix: testRedis(t).keyPrefix } }))
  ])
  const unknown = queries.flatMap(({ where, expr }) => metricNames(expr)
    .filter((name) => !exported.has(name))
    .map((name) => `${where}: ${name}`))
  t.same(unknown, [], 'no query names a metric the proxy does not export')

  const named = new Set(queries.flatMap(({ expr }) => metricNames(expr)))
  for (const topic of ['sse_streams_active', 'sse_sessions_active', 'sse_events_forwarded_total', 'sse_last_event_id_hits_total', 'sse_last_event_id_misses_total',
    'sse_reconnection_attempts_total', 'sse_upstream_gaps_total', 'sse_slow_consumer_disconnects_total', 'sse_store_connections_up', 'sse_store_operations_total']) {
    t.ok(named.has(topic), `${topic} is shown`)
  }
})

t.test('every panel has a query, and every alert a severity and a summary', async (t) => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard
  for (const panel of dashboard.panels.filter(({ type }) => type !== 'row')) t.ok((panel.targets ?? []).length > 0, `panel "${panel.title}"`)
  const alerts = parse(readFileSync(ALERTS, 'utf8')) as AlertRules
  for (const rule of alerts.groups.flatMap((group) => group.rules)) {
    t.ok(['critical', 'warning'].includes(rule.labels?.severity ?? ''), `${rule.alert}: severity`)
    t.ok((rule.annotations?.summary ?? '') !== '', `${rule.alert}: summary`)
  }
})
