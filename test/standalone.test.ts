import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from './helpers/free-port.js'

// These run the built package (`npm test` builds it first) the way `npm start` does.
const packageRoot = fileURLToPath(new URL('..', import.meta.url))
const fastifyCli = createRequire(import.meta.url).resolve('fastify-cli/cli.js')

async function writeConfig (text: string): Promise<string> {
  const file = join(await mkdtemp(join(tmpdir(), 'mcp-sse-standalone-')), 'proxy.yaml')
  await writeFile(file, text)
  return file
}

function startCli (env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [fastifyCli, 'start', '--options', '--config', 'config/fastify-cli.json', 'dist/server.js'], {
    cwd: packageRoot,
    // As a user runs it: without the test runner's NODE_OPTIONS hooks.
    env: { ...env, NODE_OPTIONS: '' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  return { child, output: () => output }
}

t.test('fastify start serves the routes of the YAML file that MCP_SSE_RESILIENCE_CONFIG names', async (t) => {
  const port = await freePort()
  const config = await writeConfig('routes:\n  - kind: sse\n    path: /events\n    upstream: http://127.0.0.1:9/events\n')
  const { child, output } = startCli({ ...process.env, MCP_SSE_RESILIENCE_CONFIG: config, FASTIFY_PORT: String(port) })
  t.teardown(() => { child.kill('SIGKILL') })
  while (!output().includes('Server listening')) {
    await Promise.race([once(child.stdout, 'data'), once(child, 'exit').then(() => { throw new Error(output()) })])
  }
  t.match(output(), `Server listening at http://127.0.0.1:${port}`, 'it listens on 127.0.0.1 by default')
  const metrics = await fetch(`http://127.0.0.1:${port}/metrics`)
  t.equal(metrics.status, 200)
  const scraped = await metrics.text()
  t.match(scraped, /^# TYPE sse_events_forwarded_total counter$/m, 'it serves its own metrics')
  t.match(scraped, /^process_cpu_user_seconds_total /m, 'with the process metrics')
  const unreachable = await fetch(`http://127.0.0.1:${port}/events`)
  t.equal(unreachable.status, 502, 'the configured route is there, and its upstream is down')
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit') as [number | null]
  t.equal(code, 0, 'SIGTERM shuts it down cleanly')
})

t.test('without MCP_SSE_RESILIENCE_CONFIG it runs config/default.yaml', async (t) => {
  const port = await freePort()
  const env: NodeJS.ProcessEnv = { ...process.env, FASTIFY_PORT: String(port) }
  delete env.MCP_SSE_RESILIENCE_CONFIG
  const { child, output } = startCli(env)
  t.teardown(() => { child.kill('SIGKILL') })
  while (!output().includes('Server listening')) {
    await Promise.race([once(child.stdout, 'data'), once(child, 'exit').then(() => { throw new Error(output()) })])
  }
  t.match(output(), join(packageRoot, 'config', 'default.yaml'))
  t.match(output(), 'streamable-http /mcp')
})

t.test('a bad YAML file stops start-up with a non-zero exit and every bad path named', async (t) => {
  const config = await writeConfig([
    'routes:',
    '  - kind: sse',
    '    path: /events',
    '    upstream: not-a-url',
    '    colour: blue',
    'sessions:',
    '  maxSessions: many',
    ''
  ].join('\n'))
  const { child, output } = startCli({ ...process.env, MCP_SSE_RESILIENCE_CONFIG: config, FASTIFY_PORT: String(await freePort()) })
  const [code] = await once(child, 'exit') as [number | null]
  t.not(code, 0)
  t.match(output(), 'routes[0].colour: unknown key')
  t.match(output(), 'routes[0].upstream: must be an http(s) URL')
  t.match(output(), 'sessions.maxSessions: must be an integer')
})
