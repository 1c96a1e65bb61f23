import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SseClient } from './helpers/sse-client.js'
import { SseUpstream } from './helpers/sse-upstream.js'
import { startProxy } from './helpers/proxy.js'
import { openStuckClient } from './helpers/stuck-client.js'

t.test('fastify.close() ends every client stream cleanly with a retry: hint, and closes the upstream streams', async (t) => {
  const upstream = await SseUpstream.start()
  t.teardown(async () => await upstream.close())
  const proxy = await startProxy(t, {
    routes: [{ kind: 'sse', path: '/events', upstream: upstream.url() }],
    shutdown: { retryHintMs: 2500 }
  })
  const clients = [await SseClient.open(proxy.url('/events')), await SseClient.open(proxy.url('/events'))]
  await upstream.waitForStreams(2)
  upstream.broadcast('id: 1\ndata: before\n\n')
  for (const client of clients) await client.waitForEvents(1)

  await proxy.app.close()
  for (const client of clients) {
    await client.ended
    t.same(client.retries, [2500], 'told when to come back')
    t.ok(client.completed, 'the response ended cleanly, not cut')
    t.same(client.events.map((event) => event.data), ['before'])
  }
  await upstream.waitForStreams(0)
  t.equal(upstream.streams.size, 0, 'the upstream streams are closed')
})

t.test('a client that takes nothing in does not hold the shutdown past shutdown.drainTimeoutMs', async (t) => {
  const upstream = await SseUpstream.start()
  t.teardown(async () => await upstream.close())
  const proxy = await startProxy(t, {
    routes: [{ kind: 'sse', path: '/events', upstream: upstream.url() }],
    limits: { clientStallSeconds: 60 },
    history: { maxEvents: 30000, maxBytes: 64 * 1024 * 1024 },
    shutdown: { drainTimeoutMs: 300 }
  })
  const stuck = await openStuckClient(upstream, proxy.origin)
  const started = Date.now()
  await proxy.app.close()
  t.ok(Date.now() - started < 4000, 'closed within the drain bound, well before the 60 s stall limit')
  stuck.resume()
  await stuck.ended
  t.notOk(stuck.completed, 'the stuck client was cut')
})

t.test('SIGTERM on the standalone server: clients get the retry hint and a clean end, and the process exits 0', async (t) => {
  const upstream = await SseUpstream.start()
  t.teardown(async () => await upstream.close())
  const listener = createServer().listen(0, '127.0.0.1')
  await once(listener, 'listening')
  const { port } = listener.address() as { port: number }
  await new Promise((resolve) => listener.close(resolve))
  const config = join(await mkdtemp(join(tmpdir(), 'mcp-sse-shutdown-')), 'proxy.yaml')
  await writeFile(config, `routes:\n  - kind: sse\n    path: /events\n    upstream: ${upstream.url()}\nshutdown:\n  retryHintMs: 3000\n`)
  const packageRoot = fileURLToPath(new URL('..', import.meta.url))
  const fastifyCli = createRequire(import.meta.url).resolve('fastify-cli/cli.js')
  const child = spawn(process.execPath, [fastifyCli, 'start', '--options', '--config', 'config/fastify-cli.json', 'dist/server.js'], {
    cwd: packageRoot,
    env: { ...process.env, NODE_OPTIONS: '', MCP_SSE_RESILIENCE_CONFIG: config, FASTIFY_PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { child.kill('SIGKILL') })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  while (!output.includes('Server listening')) {
    await Promise.race([once(child.stdout, 'data'), once(child, 'exit').then(() => { throw new Error(output) })])
  }
  const client = await SseClient.open(`http://127.0.0.1:${port}/events`)
  await upstream.waitForStreams(1)
  upstream.broadcast('data: hello\n\n')
  await client.waitForEvents(1)
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit') as [number | null]
  await client.ended
  t.equal(code, 0)
  t.same(client.retries, [3000])
  t.ok(client.completed, 'the stream ended cleanly')
})
