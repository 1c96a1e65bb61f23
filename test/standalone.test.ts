import t, { type Test } from 'tap'
import { join } from 'node:path'
import { freePort } from './helpers/free-port.js'
import { BIN, NOISE, NPM_START, PACKAGE_ROOT, startStandalone, writeConfig } from './helpers/standalone-process.js'

t.test('fastify start serves the routes of the YAML file that MCP_SSE_RESILIENCE_CONFIG names', async (t) => {
  const port = await freePort()
  const config = await writeConfig('routes:\n  - kind: sse\n    path: /events\n    upstream: http://127.0.0.1:9/events\n')
  const server = startStandalone(t, NPM_START, { MCP_SSE_RESILIENCE_CONFIG: config, FASTIFY_PORT: String(port) })
  await server.waitForStdout('Server listening')
  t.match(server.stdout(), `Server listening at http://127.0.0.1:${port}`, 'it listens on 127.0.0.1 by default')
  const metrics = await fetch(`http://127.0.0.1:${port}/metrics`)
  t.equal(metrics.status, 200)
  const scraped = await metrics.text()
  t.match(scraped, /^# TYPE sse_events_forwarded_total counter$/m, 'it serves its own metrics')
  t.match(scraped, /^process_cpu_user_seconds_total /m, 'with the process metrics')
  t.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200, 'with its probes')
  const unreachable = await fetch(`http://127.0.0.1:${port}/events`)
  t.equal(unreachable.status, 502, 'the configured route is there, and its upstream is down')
  server.child.kill('SIGTERM')
  t.equal(await server.exited, 0, 'SIGTERM shuts it down cleanly')
})

t.test('without MCP_SSE_RESILIENCE_CONFIG it runs config/default.yaml', async (t) => {
  const server = startStandalone(t, NPM_START, { FASTIFY_PORT: String(await freePort()) })
  await server.waitForStdout('Server listening')
  t.match(server.stdout(), join(PACKAGE_ROOT, 'config', 'default.yaml'))
  t.match(server.stdout(), 'streamable-http /mcp')
})

const INVALID = [
  'routes:',
  '  - kind: sse',
  '    path: /events',
  '    upstream: not-a-url',
  '    colour: blue',
  'sessions:',
  '  maxSessions: many',
  ''
].join('\n')

/** Each config that cannot start the proxy, and exactly what stderr must say of it. */
const BAD_CONFIGS: Array<{ name: string, file: () => Promise<string>, stderr: (file: string) => string }> = [
  {
    name: 'an invalid config',
    file: async () => await writeConfig(INVALID),
    stderr: (file) => `Invalid fastify-mcp-sse-resilience config file ${file}:\n` +
      '  - routes[0].colour: unknown key\n' +
      '  - routes[0].upstream: must be an http(s) URL\n' +
      '  - sessions.maxSessions: must be an integer\n'
  },
  {
    name: 'a missing file',
    file: async () => join(await writeConfig(''), '..', 'missing.yaml'),
    stderr: (file) => `Cannot read config file ${file}: ENOENT: no such file or directory, open '${file}'\n`
  },
  {
    name: 'a YAML syntax error',
    file: async () => await writeConfig('routes: [unclosed\n'),
    stderr: (file) => `Cannot read config file ${file}: invalid YAML:\n` +
      '  - Flow sequence in block collection must be sufficiently indented and end with a ] at line 2, column 1:\n' +
      '    routes: [unclosed\n' +
      '    ^\n'
  }
]

const COMMANDS: Array<{ name: string, start: (t: Test, file: string) => ReturnType<typeof startStandalone> }> = [
  { name: 'npm start', start: (t, file) => startStandalone(t, NPM_START, { MCP_SSE_RESILIENCE_CONFIG: file, FASTIFY_PORT: '0' }) },
  { name: 'the bin', start: (t, file) => startStandalone(t, [...BIN, '--config', file, '--port', '0']) }
]

for (const command of COMMANDS) {
  for (const bad of BAD_CONFIGS) {
    t.test(`${command.name}: ${bad.name} exits 1 with exactly its problems on stderr, and no stack, statusCode or Node banner`, async (t) => {
      const file = await bad.file()
      const server = command.start(t, file)
      t.equal(await server.exited, 1)
      t.equal(server.stderr(), bad.stderr(file))
      t.notMatch(server.stdout(), NOISE, 'nothing of the kind on stdout either')
    })
  }
}
