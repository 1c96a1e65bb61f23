import t from 'tap'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfigFile, resolveOptions } from '../lib/index.js'

// Hostile or broken configuration: each case gets one error that names every problem with its path,
// or a config-file error that names the file; never a hang, a crash, or a half-read config.
// (Plain garbage YAML, duplicate keys, a missing file, unknown keys and bad URLs are in config.test.ts.)

const ROUTES_YAML = 'routes:\n  - kind: sse\n    path: /events\n    upstream: http://127.0.0.1:3002/events\n'

async function writeConfig (content: string | Buffer): Promise<string> {
  const file = join(await mkdtemp(join(tmpdir(), 'mcp-sse-hostile-config-')), 'config.yaml')
  await writeFile(file, content)
  return file
}

t.test('YAML: an alias bomb (billion laughs) is refused at once, with a config-file error that names the file', async (t) => {
  const levels = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']
  let text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
  for (let i = 1; i < levels.length; i++) {
    const previous = `*${levels[i - 1] ?? ''}`
    text += `${levels[i] ?? ''}: &${levels[i] ?? ''} [${Array(9).fill(previous).join(',')}]\n`
  }
  text += 'routes: *i\n'
  const file = await writeConfig(text)
  const started = Date.now()
  await t.rejects(loadConfigFile(file), { code: 'FST_MCP_SSE_CONFIG_FILE', message: new RegExp(`${file}.*(alias|resource)`, 's') })
  t.ok(Date.now() - started < 1000, 'without expanding it')
})

t.test('a __proto__ or constructor key is an unknown key: it pollutes no prototype and sets no hidden option', async (t) => {
  // Without the check, `__proto__` would become the options' prototype, and its keys would be read as options.
  const hidden = '__proto__:\n  security:\n    allowedOrigins: ["*"]\n  sessions:\n    maxSessions: 1\n'
  const outcomes: string[] = []
  const loads = [
    async () => await loadConfigFile(await writeConfig(`${ROUTES_YAML}${hidden}`)),
    async () => resolveOptions(JSON.parse('{"routes":[{"kind":"sse","path":"/events","upstream":"http://127.0.0.1:3002/events"}],"__proto__":{"security":{"allowedOrigins":["*"]}}}'))
  ]
  for (const load of loads) {
    try {
      const options = await load()
      outcomes.push(`accepted, with security.allowedOrigins ${JSON.stringify(options.security.allowedOrigins)} and sessions.maxSessions ${options.sessions.maxSessions}`)
    } catch (error) {
      outcomes.push((error as Error).message)
    }
  }
  t.match(outcomes[0], / {2}- __proto__: unknown key/, 'YAML: refused, __proto__ named')
  t.match(outcomes[1], / {2}- __proto__: unknown key/, 'register() options parsed from JSON: refused, __proto__ named')

  const file = await writeConfig(`${ROUTES_YAML}constructor:\n  prototype:\n    polluted: yes\n`)
  await t.rejects(loadConfigFile(file), { message: / {2}- constructor: unknown key/ })
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype is untouched')
})

t.test('every section given a scalar of the wrong type is named, all in one error', async (t) => {
  const file = await writeConfig(`${ROUTES_YAML}metrics: 5\nupstream: u\nhealth: "x"\nreconnect: true\nhistory: 1.5\nsessions: many\nlimits: false\nsecurity: open\nshutdown: 0\n`)
  await t.rejects(loadConfigFile(file), {
    code: 'FST_MCP_SSE_INVALID_CONFIG',
    message: `Invalid fastify-mcp-sse-resilience config file ${file}:\n` + [
      'metrics', 'upstream', 'health', 'reconnect', 'history', 'sessions', 'limits', 'security', 'shutdown'
    ].map((section) => `  - ${section}: expected object`).join('\n')
  })
})

t.test('a section given as a list is a wrong type, not the defaults or an unknown key', async (t) => {
  const file = await writeConfig(`${ROUTES_YAML}limits: []\nupstream: [1]\n`)
  await t.rejects(loadConfigFile(file), {
    code: 'FST_MCP_SSE_INVALID_CONFIG',
    message: `Invalid fastify-mcp-sse-resilience config file ${file}:\n  - upstream: expected object\n  - limits: expected object`
  })
})

t.test('wrong types inside every section are all named, each with its path', async (t) => {
  const file = await writeConfig(`
routes:
  - kind: sse
    path: 5
    upstream: 7
    reconnect: no
metrics: { enabled: "yes", path: metrics }
upstream: { maxConnections: -1 }
health: { connectTimeoutMs: 0, idleTimeoutSeconds: "45", heartbeatSeconds: 1.5 }
reconnect: { factor: "2", jitter: null, maxRetries: .inf, baseDelayMs: .nan }
history: { enabled: 1, maxEvents: -1, ttlSeconds: 1.5, replay: "no" }
sessions: { maxSessions: 1e99, maxStreamsPerSession: "100", reestablish: off }
limits: { maxEventBytes: 100, maxBodyBytes: [] }
security: { allowedOrigins: ["", 5] }
shutdown: { drainTimeoutMs: -5 }
`)
  await t.rejects(loadConfigFile(file), {
    code: 'FST_MCP_SSE_INVALID_CONFIG',
    message: `Invalid fastify-mcp-sse-resilience config file ${file}:\n` + [
      'routes[0].path: expected string',
      'routes[0].upstream: expected string',
      'routes[0].reconnect: expected object',
      'metrics.enabled: expected boolean',
      'metrics.path: must be a path starting with "/" (no query, fragment or spaces)',
      'upstream.maxConnections: must be >= 0',
      'health.connectTimeoutMs: must be >= 1',
      'health.idleTimeoutSeconds: must be an integer',
      'health.heartbeatSeconds: must be an integer',
      'reconnect.baseDelayMs: must be an integer',
      'reconnect.factor: expected number',
      'reconnect.jitter: expected number',
      'reconnect.maxRetries: must be an integer',
      'history.enabled: expected boolean',
      'history.maxEvents: must be >= 1',
      'history.ttlSeconds: must be an integer',
      'history.replay: expected boolean',
      'sessions.reestablish: expected boolean',
      'sessions.maxStreamsPerSession: must be an integer',
      'limits.maxEventBytes: must be >= 1024',
      'limits.maxBodyBytes: must be an integer',
      'security.allowedOrigins[0]: expected string length greater or equal to 1',
      'security.allowedOrigins[1]: expected string',
      'shutdown.drainTimeoutMs: must be >= 0'
    ].map((problem) => `  - ${problem}`).join('\n')
  })
})

t.test('binary garbage, an empty file and tab indentation each give one clear error', async (t) => {
  const binary = await writeConfig(Buffer.from([0x00, 0xff, 0xfe, 0x01, 0x02, 0x1b, 0x5b]))
  await t.rejects(loadConfigFile(binary), { code: 'FST_MCP_SSE_INVALID_CONFIG', message: /\(root\): expected object/ })
  const empty = await writeConfig('')
  await t.rejects(loadConfigFile(empty), { code: 'FST_MCP_SSE_INVALID_CONFIG', message: /routes: is required/ })
  const tabs = await writeConfig('routes:\n\t- kind: sse\n')
  await t.rejects(loadConfigFile(tabs), { code: 'FST_MCP_SSE_CONFIG_FILE', message: /invalid YAML:\n.*Tabs/ })
})

t.test('upstreams that are not http(s) and paths that are not plain paths are refused, each named', async (t) => {
  const file = await writeConfig(`
routes:
  - kind: sse
    path: /a
    upstream: "javascript:alert(1)"
  - kind: sse
    path: "/b c"
    upstream: "file:///etc/passwd"
  - kind: sse
    path: "/d?e=f"
    upstream: "gopher://127.0.0.1:70/"
`)
  await t.rejects(loadConfigFile(file), {
    code: 'FST_MCP_SSE_INVALID_CONFIG',
    message: `Invalid fastify-mcp-sse-resilience config file ${file}:\n` + [
      'routes[0].upstream: must be an http(s) URL',
      'routes[1].path: must be a path starting with "/" (no query, fragment or spaces)',
      'routes[1].upstream: must be an http(s) URL',
      'routes[2].path: must be a path starting with "/" (no query, fragment or spaces)',
      'routes[2].upstream: must be an http(s) URL'
    ].map((problem) => `  - ${problem}`).join('\n')
  })
})
