import t from 'tap'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import standaloneServer, { CONFIG_ENV, DEFAULT_CONFIG_FILE } from '../lib/server.js'

t.test('the standalone plugin reads the file MCP_SSE_RESILIENCE_CONFIG names', async (t) => {
  const file = join(await mkdtemp(join(tmpdir(), 'mcp-sse-server-')), 'proxy.yaml')
  await writeFile(file, 'routes:\n  - kind: sse\n    path: /feed\n    upstream: http://127.0.0.1:9/feed\nmetrics:\n  enabled: false\n')
  process.env[CONFIG_ENV] = file
  t.teardown(() => { delete process.env[CONFIG_ENV] })
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(standaloneServer)
  await app.ready()
  t.ok(app.hasRoute({ method: 'GET', url: '/feed' }))
  t.notOk(app.hasRoute({ method: 'GET', url: '/metrics' }))
})

t.test('without it, the standalone plugin reads config/default.yaml', async (t) => {
  delete process.env[CONFIG_ENV]
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(standaloneServer)
  await app.ready()
  t.match(DEFAULT_CONFIG_FILE, /config[/\\]default\.yaml$/)
  t.ok(app.hasRoute({ method: 'POST', url: '/mcp' }))
  t.ok(app.hasRoute({ method: 'GET', url: '/metrics' }))
})
