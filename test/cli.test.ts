import t from 'tap'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { once } from 'node:events'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort } from './helpers/free-port.js'
import { SseClient } from './helpers/sse-client.js'
import { SseUpstream } from './helpers/sse-upstream.js'
import { BIN, NOISE, PACKAGE_ROOT, startStandalone, writeConfig } from './helpers/standalone-process.js'
import { openStuckClient } from './helpers/stuck-client.js'
import { CliUsageError, parseCliArgs } from '../lib/standalone/cli-args.js'
import { isConfigError } from '../lib/standalone/config-errors.js'
import { InvalidConfigError } from '../lib/errors.js'

const SSE_CONFIG = 'routes:\n  - kind: sse\n    path: /events\n    upstream: http://127.0.0.1:9/events\n'

t.test('the command line, read: defaults, short and long forms, and every problem at once', async (t) => {
  t.same(parseCliArgs([]), { kind: 'start', configFile: undefined, port: 8080, host: '127.0.0.1', logLevel: 'info' })
  t.same(parseCliArgs(['-c', 'a.yaml', '-p', '0', '-H', '::1', '-l', 'silent']), { kind: 'start', configFile: 'a.yaml', port: 0, host: '::1', logLevel: 'silent' })
  t.same(parseCliArgs(['--config=b.yaml', '--port=65535']), { kind: 'start', configFile: 'b.yaml', port: 65535, host: '127.0.0.1', logLevel: 'info' })
  t.same(parseCliArgs(['-h', '--port', 'x']), { kind: 'help' }, 'help wins over the values')
  t.throws(() => parseCliArgs(['x', '--what', '--port', '1e3', '--log-level=loud', '--host']), new CliUsageError(
    'unexpected argument "x"; unknown option --what; --host needs a value; --port must be a whole number from 0 to 65535, not "1e3"; ' +
    '--log-level must be one of fatal, error, warn, info, debug, trace, silent, not "loud"'))
  t.throws(() => parseCliArgs(['--host', '--port=80']), { message: '--host needs a value' }, 'an option is not taken for the value of another')
  t.throws(() => parseCliArgs(['--help', 'now']), { message: 'unexpected argument "now"' }, 'help with a problem is a problem')
  t.ok(isConfigError(new InvalidConfigError('x', 'y')))
  t.notOk(isConfigError(new Error('x')))
})

t.test('--help prints the usage and exits 0', async (t) => {
  const cli = startStandalone(t, [...BIN, '--help'])
  t.equal(await cli.exited, 0)
  t.match(cli.stdout(), /^Usage: fastify-mcp-sse-resilience \[--config FILE\] \[--port N\] \[--host ADDRESS\]/)
  t.match(cli.stdout(), 'MCP_SSE_RESILIENCE_CONFIG')
  t.equal(cli.stderr(), '')
})

t.test('a command line it cannot run: exit 2, every problem in one line, and where to look', async (t) => {
  const cli = startStandalone(t, [...BIN, '--colour', 'blue', '--port', '99999', '--log-level', 'loud', '--config'])
  t.equal(await cli.exited, 2)
  t.equal(cli.stderr(), 'fastify-mcp-sse-resilience: unknown option --colour; unexpected argument "blue"; --config needs a value; ' +
    '--port must be a whole number from 0 to 65535, not "99999"; --log-level must be one of fatal, error, warn, info, debug, trace, silent, not "loud"\n' +
    'Run fastify-mcp-sse-resilience --help for the options.\n')
  const help = startStandalone(t, [...BIN, '--help=yes'])
  t.equal(await help.exited, 2)
  t.match(help.stderr(), 'fastify-mcp-sse-resilience: --help takes no value\n')
})

t.test('--config, --port and --host: it serves the file\'s routes and its probes there; SIGTERM closes it gracefully and it exits 0', async (t) => {
  const upstream = await SseUpstream.start()
  t.teardown(async () => await upstream.close())
  const config = await writeConfig(`routes:\n  - kind: sse\n    path: /events\n    upstream: ${upstream.url()}\nshutdown:\n  retryHintMs: 2000\n`)
  const port = await freePort()
  const cli = startStandalone(t, [...BIN, '--config', config, '--port', String(port), '--host', '127.0.0.1'])
  await cli.waitForStdout('Server listening')
  t.match(cli.stdout(), `"configFile":"${config}"`)
  t.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200)
  t.same(await (await fetch(`http://127.0.0.1:${port}/readyz`)).json(), { status: 'ready' })
  const client = await SseClient.open(`http://127.0.0.1:${port}/events`)
  await upstream.waitForStreams(1)
  upstream.broadcast('data: hello\n\n')
  await client.waitForEvents(1)
  cli.child.kill('SIGTERM')
  t.equal(await cli.exited, 0)
  await client.ended
  t.same(client.retries, [2000], 'the client was told when to come back')
  t.ok(client.completed, 'and its stream ended cleanly')
  t.notMatch(cli.stderr(), NOISE)
})

t.test('without --config it reads the file MCP_SSE_RESILIENCE_CONFIG names; SIGINT (Ctrl-C) closes it too', async (t) => {
  const config = await writeConfig(SSE_CONFIG)
  const port = await freePort()
  const cli = startStandalone(t, [...BIN, '-p', String(port), '-l', 'warn'], { MCP_SSE_RESILIENCE_CONFIG: config })
  const deadline = Date.now() + 10000
  while ((await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.status !== 200) {
    if (Date.now() > deadline) throw new Error(`not serving: ${cli.stdout()} ${cli.stderr()}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.equal((await fetch(`http://127.0.0.1:${port}/events`)).status, 502, 'the route of that file, its upstream down')
  t.notMatch(cli.stdout(), /"level":30/, '--log-level warn: no INFO line, not even "Server listening"')
  cli.child.kill('SIGINT')
  t.equal(await cli.exited, 0)
})

t.test('a second signal while it drains its streams ends it at once, with exit code 1', async (t) => {
  const upstream = await SseUpstream.start()
  t.teardown(async () => await upstream.close())
  const config = await writeConfig(`routes:\n  - kind: sse\n    path: /events\n    upstream: ${upstream.url()}\n` +
    'history:\n  maxEvents: 30000\n  maxBytes: 67108864\nlimits:\n  clientStallSeconds: 60\nshutdown:\n  drainTimeoutMs: 30000\n')
  const port = await freePort()
  const cli = startStandalone(t, [...BIN, '--config', config, '--port', String(port)])
  await cli.waitForStdout('Server listening')
  const stuck = await openStuckClient(upstream, `http://127.0.0.1:${port}`)
  t.teardown(() => stuck.close())
  cli.child.kill('SIGTERM')
  await cli.waitForStdout('closing: client streams get a retry hint and end')
  const started = Date.now()
  cli.child.kill('SIGTERM')
  t.equal(await cli.exited, 1)
  t.ok(Date.now() - started < 5000, 'at once, not after the 30 s drain')
  t.match(cli.stdout(), '"msg":"second signal while closing: exiting at once"')
})

t.test('without either, it runs the package\'s config/default.yaml', async (t) => {
  const port = await freePort()
  const cli = startStandalone(t, [...BIN, '--port', String(port)])
  await cli.waitForStdout('Server listening')
  t.match(cli.stdout(), `"configFile":"${join(PACKAGE_ROOT, 'config', 'default.yaml')}"`)
  t.match(cli.stdout(), `Server listening at http://127.0.0.1:${port}`, 'on 127.0.0.1 by default')
})

t.test('a port already in use: exit 1 and one line that says so', async (t) => {
  const taken = createServer().listen(0, '127.0.0.1')
  await once(taken, 'listening')
  t.teardown(() => taken.close())
  const { port } = taken.address() as { port: number }
  const cli = startStandalone(t, [...BIN, '--config', await writeConfig(SSE_CONFIG), '--port', String(port), '-l', 'silent'])
  t.equal(await cli.exited, 1)
  t.equal(cli.stderr(), `fastify-mcp-sse-resilience: cannot listen on 127.0.0.1:${port}: listen EADDRINUSE: address already in use 127.0.0.1:${port}\n`)
})

t.test('the package installs it as fastify-mcp-sse-resilience, with what it needs at run time', async (t) => {
  const manifest = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> }
  t.same(manifest.bin, { 'fastify-mcp-sse-resilience': './dist/cli.js' })
  t.match(readFileSync(join(PACKAGE_ROOT, 'dist', 'cli.js'), 'utf8'), /^#!\/usr\/bin\/env node\n/, 'runnable as a command')
  // What `npm publish` would ship, without running the build again.
  const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: PACKAGE_ROOT })
  const [packed] = JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>
  const files = new Set(packed?.files.map(({ path }) => path))
  for (const needed of ['dist/cli.js', 'dist/server.js', 'dist/standalone/cli-args.js', 'config/default.yaml', 'config/fastify-cli.json', 'LICENSE', 'CHANGELOG.md', 'README.md']) {
    t.ok(files.has(needed), `the package holds ${needed}`)
  }
  t.notOk([...files].some((path) => path.startsWith('dist/examples/') || path.startsWith('test/')), 'and neither the examples nor the tests')
})
