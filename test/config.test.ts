import t from 'tap'
import { readFileSync } from 'node:fs'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import { loadConfigFile, mcpSseResilience, resolveOptions } from '../lib/index.js'
import defaultExport from '../lib/index.js'
import { renderConfigurationReference } from '../scripts/config-reference.js'

const SSE_ROUTE = { kind: 'sse', path: '/events', upstream: 'http://127.0.0.1:3002/events' } as const

async function writeYaml (text: string): Promise<string> {
  const file = join(await mkdtemp(join(tmpdir(), 'mcp-sse-config-')), 'config.yaml')
  await writeFile(file, text)
  return file
}

t.test('defaults are applied to every section', async (t) => {
  const options = resolveOptions({ routes: [SSE_ROUTE] })
  t.same(options, {
    routes: [{ ...SSE_ROUTE, upstreamReplays: false }],
    metrics: { enabled: true, path: '/metrics' },
    probes: { enabled: true, livenessPath: '/healthz', readinessPath: '/readyz' },
    upstream: { maxConnections: 0 },
    health: { connectTimeoutMs: 10000, idleTimeoutSeconds: 45, heartbeatSeconds: 15 },
    reconnect: { baseDelayMs: 1000, maxDelayMs: 30000, factor: 2, jitter: 0.1, maxRetries: 10, maxHintDelayMs: 300000, dedupeWindow: 1000 },
    history: { enabled: true, maxEvents: 1000, maxBytes: 1048576, ttlSeconds: 300, replay: true },
    sessions: { maxSessions: 10000, idleTimeoutSeconds: 3600, detachGraceSeconds: 60, reestablish: true, maxSubscriptionsPerSession: 1000, maxStreamsPerSession: 100 },
    limits: { maxEventBytes: 1048576, maxBodyBytes: 4194304, clientBufferBytes: 1048576, clientStallSeconds: 30 },
    security: { allowedOrigins: [], localhostOrigins: 'auto', allowedHosts: 'auto' },
    shutdown: { retryHintMs: 1000, drainTimeoutMs: 5000 },
    store: { kind: 'memory', url: 'redis://127.0.0.1:6379', cluster: [], keyPrefix: 'mcp-sse:', leaseTtlMs: 5000, requestTimeoutMs: 2000, maxAppendBytes: 65536, durable: false }
  })
})

t.test('store: wrong kind, a URL that is not Redis, braces in the prefix and a tiny lease are each reported', async (t) => {
  const error = t.throws(() => resolveOptions({
    routes: [SSE_ROUTE],
    store: { kind: 'postgres', url: 'http://127.0.0.1:6379', keyPrefix: 'a{b}', leaseTtlMs: 10 }
  } as never)) as Error
  for (const path of ['store.kind', 'store.url', 'store.keyPrefix', 'store.leaseTtlMs']) t.match(error.message, path)
})

t.test('store.cluster: a list of Redis URLs, instead of store.url and without store.durable, each conflict said in words', async (t) => {
  const cluster = ['redis://10.0.0.1:7000', 'rediss://user:secret@10.0.0.2:7000']
  t.same(resolveOptions({ routes: [SSE_ROUTE], store: { kind: 'redis', cluster } }).store.cluster, cluster)
  const both = t.throws(() => resolveOptions({ routes: [SSE_ROUTE], store: { kind: 'redis', url: 'redis://10.0.0.1:6379', cluster, durable: true } })) as Error
  t.match(both.message, /store\.cluster: cannot be used with store\.url/)
  t.match(both.message, /store\.durable: not available with store\.cluster/)
  const notRedis = t.throws(() => resolveOptions({ routes: [SSE_ROUTE], store: { kind: 'redis', cluster: ['10.0.0.1:7000'] } })) as Error
  t.match(notRedis.message, /store\.cluster\[0\]: must match/)
  t.same(resolveOptions({ routes: [SSE_ROUTE], store: { kind: 'redis', url: 'redis://10.0.0.1:6379', cluster: [], durable: true } }).store.durable, true, 'an empty list is no cluster')
})

t.test('the caller\'s options object is not modified', async (t) => {
  const input = { routes: [SSE_ROUTE] }
  resolveOptions(input)
  t.same(input, { routes: [SSE_ROUTE] })
})

t.test('one error lists every problem, each with its path', async (t) => {
  const error = t.throws(() => resolveOptions({
    routes: [
      { kind: 'sse', path: 'events', upstream: 'ftp://example/e', extra: true },
      { kind: 'websocket', path: '/ws' },
      { kind: 'legacy-sse', path: '/sse', upstream: 'http://127.0.0.1/sse' }
    ],
    metrics: { enabled: 'yes' },
    sessions: { maxSessions: 0 },
    limits: { maxEventBytes: 1.5 },
    typo: 1
  })) as Error & { code?: string }
  t.equal(error.code, 'FST_MCP_SSE_INVALID_CONFIG')
  t.same(error.message.split('\n'), [
    'Invalid fastify-mcp-sse-resilience options:',
    '  - typo: unknown key',
    '  - routes[0].extra: unknown key',
    '  - routes[0].path: must be a path starting with "/" (no query, fragment or spaces)',
    '  - routes[0].upstream: must be an http(s) URL',
    '  - routes[1].kind: must be one of streamable-http, legacy-sse, sse',
    '  - routes[2].messagesPath: is required',
    '  - metrics.enabled: expected boolean',
    '  - sessions.maxSessions: must be >= 1',
    '  - limits.maxEventBytes: must be an integer'
  ])
})

t.test('routes[].reconnect takes the reconnect keys, without defaults, checked like the global ones', async (t) => {
  const options = resolveOptions({ routes: [{ ...SSE_ROUTE, reconnect: { maxRetries: 0 } }] })
  t.same(options.routes[0], { ...SSE_ROUTE, upstreamReplays: false, reconnect: { maxRetries: 0 } }, 'only what the route names')
  t.throws(() => resolveOptions({ routes: [{ ...SSE_ROUTE, reconnect: { factor: 0.5, jitter: 2, retries: 1 } }] }), {
    message: 'Invalid fastify-mcp-sse-resilience options:\n' +
      '  - routes[0].reconnect.retries: unknown key\n' +
      '  - routes[0].reconnect.factor: must be >= 1\n' +
      '  - routes[0].reconnect.jitter: must be <= 1'
  })
})

t.test('routes are required, and at least one', async (t) => {
  t.throws(() => resolveOptions({}), { message: /routes: is required/ })
  t.throws(() => resolveOptions(undefined), { message: /routes: is required/ })
  t.throws(() => resolveOptions({ routes: [] }), { message: /routes: must have at least 1 item/ })
  t.throws(() => resolveOptions({ routes: 'x' }), { message: /routes: expected array/ })
  t.throws(() => resolveOptions({ routes: ['x'] }), { message: /routes\[0\]\.kind: must be one of/ })
  t.throws(() => resolveOptions([]), { message: /\(root\): expected object/ })
})

t.test('paths may not collide: routes, messages paths and the metrics path', async (t) => {
  t.throws(() => resolveOptions({
    routes: [SSE_ROUTE, { kind: 'legacy-sse', path: '/sse', messagesPath: '/events', upstream: 'http://127.0.0.1/sse' }],
    metrics: { path: '/sse' }
  }), {
    message: 'Invalid fastify-mcp-sse-resilience options:\n' +
      '  - routes[1].messagesPath: path /events is already used by routes[0].path\n' +
      '  - metrics.path: path /sse is already used by routes[1].path'
  })
  t.doesNotThrow(() => resolveOptions({ routes: [{ ...SSE_ROUTE, path: '/metrics' }], metrics: { enabled: false } }))
})

t.test('register() rejects invalid options with the same message', async (t) => {
  const app = Fastify()
  await t.rejects(async () => { await app.register(mcpSseResilience, { routes: [{ ...SSE_ROUTE, upstream: 'not a url' }] }) }, {
    code: 'FST_MCP_SSE_INVALID_CONFIG',
    message: /routes\[0\]\.upstream: must be an http\(s\) URL/
  })
  t.equal(defaultExport, mcpSseResilience, 'the plugin is the default export and the named one')
})

t.test('YAML: a valid file gives the same options as register()', async (t) => {
  const file = await writeYaml(`
routes:
  - kind: streamable-http
    path: /mcp
    upstream: http://127.0.0.1:3000/mcp
  - kind: legacy-sse
    path: /sse
    messagesPath: /messages
    upstream: http://127.0.0.1:3001/sse
  - kind: sse
    path: /events
    upstream: http://127.0.0.1:3002/events
metrics:
  enabled: true
  path: /metrics
`)
  const options = await loadConfigFile(file)
  t.equal(options.routes.length, 3)
  t.same(options.sessions, { maxSessions: 10000, idleTimeoutSeconds: 3600, detachGraceSeconds: 60, reestablish: true, maxSubscriptionsPerSession: 1000, maxStreamsPerSession: 100 })
})

t.test('YAML: unknown keys, bad URLs and wrong types are all named', async (t) => {
  const file = await writeYaml(`
routes:
  - kind: sse
    path: /events
    upstream: localhost:3002
    retries: 3
metrics:
  enabled: sometimes
`)
  await t.rejects(loadConfigFile(file), {
    code: 'FST_MCP_SSE_INVALID_CONFIG',
    message: `Invalid fastify-mcp-sse-resilience config file ${file}:\n` +
      '  - routes[0].retries: unknown key\n' +
      '  - routes[0].upstream: must be an http(s) URL\n' +
      '  - metrics.enabled: expected boolean'
  })
})

t.test('YAML: garbage, duplicate keys and a missing file give a clear error', async (t) => {
  await t.rejects(loadConfigFile(await writeYaml('routes: [unclosed\n  : : :')), { code: 'FST_MCP_SSE_CONFIG_FILE', message: /invalid YAML/ })
  await t.rejects(loadConfigFile(await writeYaml('metrics: {}\nmetrics: {}\n')), { code: 'FST_MCP_SSE_CONFIG_FILE', message: /invalid YAML/ })
  await t.rejects(loadConfigFile('/nonexistent/config.yaml'), { code: 'FST_MCP_SSE_CONFIG_FILE', message: /ENOENT/ })
  await t.rejects(loadConfigFile(await writeYaml('just a string')), { code: 'FST_MCP_SSE_INVALID_CONFIG', message: /\(root\): expected object/ })
})

t.test('the shipped config/default.yaml is valid', async (t) => {
  const options = await loadConfigFile(new URL('../config/default.yaml', import.meta.url).pathname)
  t.equal(options.routes[0]?.kind, 'streamable-http')
})

t.test('docs/configuration.md is the one generated from the schema', async (t) => {
  const committed = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8')
  t.equal(committed, renderConfigurationReference(), 'run `npm run docs:config` after changing the schema')
})
