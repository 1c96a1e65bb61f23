import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ClientRelay } from './client-relay.js'
import { tryItCommands } from './commands.js'
import { DemoChild } from './demo-child.js'
import { SequencePrinter } from './sequence-printer.js'
import { SequenceClient } from './sequence-client.js'

// `npm run demo`: an upstream and the proxy in front of it, each a process of its own,
// and a client whose stream survives the upstream's death and its own connection's.

const packageRoot = fileURLToPath(new URL('../../../', import.meta.url))

function setting (name: string, fallback: number): number {
  const text = process.env[name]
  if (text === undefined) return fallback
  if (!/^\d+$/.test(text)) {
    process.stderr.write(`${name} must be a whole number, not "${text}"\n`)
    process.exit(2)
  }
  return Number(text)
}

const proxyPort = setting('DEMO_PROXY_PORT', 8080)
const upstreamPort = setting('DEMO_UPSTREAM_PORT', 3000)
const eventIntervalMs = setting('DEMO_EVENT_INTERVAL_MS', 200)
const faultEveryMs = setting('DEMO_FAULT_EVERY_MS', 5000)
const upstreamDownMs = setting('DEMO_UPSTREAM_DOWN_MS', 1500)
const clientAwayMs = setting('DEMO_CLIENT_AWAY_MS', 1000)
// How many faults in all; 0, the default, for no end.
const faultCount = setting('DEMO_FAULTS', 0)
const proxyUrl = `http://127.0.0.1:${proxyPort}`
const upstreamUrl = `http://127.0.0.1:${upstreamPort}`

const printer = new SequencePrinter()
const configDir = mkdtempSync(join(tmpdir(), 'mcp-sse-demo-'))
const configFile = join(configDir, 'proxy.yaml')
writeFileSync(configFile, `routes:
  - kind: streamable-http
    path: /mcp
    upstream: ${upstreamUrl}/mcp
  - kind: legacy-sse
    path: /sse
    messagesPath: /messages
    upstream: ${upstreamUrl}/sse
  - kind: sse
    path: /events
    upstream: ${upstreamUrl}/events
    # The counting stream goes on after the Last-Event-ID it gets: nothing to tell the client of.
    upstreamReplays: true
reconnect:
  baseDelayMs: 100
  maxDelayMs: 1000
  maxRetries: 0
`)

let stopping = false
const onUnexpectedExit = (name: string) => (code: number | null, signal: NodeJS.Signals | null): void => {
  printer.aside(`${name} exited on its own (${code ?? signal ?? '?'}); stopping the demo`)
  stop(1).catch(() => process.exit(1))
}
const upstream = new DemoChild({
  name: 'the upstream',
  args: [join(packageRoot, 'dist', 'examples', 'demo', 'upstream-process.js')],
  env: { DEMO_UPSTREAM_PORT: String(upstreamPort), DEMO_EVENT_INTERVAL_MS: String(eventIntervalMs) },
  onLine: (line) => printer.aside(`upstream: ${line}`),
  onUnexpectedExit: onUnexpectedExit('the upstream')
})
const proxy = new DemoChild({
  name: 'the proxy',
  args: [join(packageRoot, 'dist', 'cli.js'), '--config', configFile, '--port', String(proxyPort), '--log-level', process.env.DEMO_LOG_LEVEL ?? 'warn'],
  onLine: (line) => printer.aside(`proxy: ${line}`),
  onUnexpectedExit: onUnexpectedExit('the proxy')
})
const relay = await ClientRelay.start(proxyPort)
const client = new SequenceClient(`http://127.0.0.1:${relay.port}/events`, clientAwayMs, {
  onNumber: (n) => printer.word(String(n)),
  onBreak: (expected, got) => printer.word(got > expected ? `[GAP: ${expected} to ${got - 1} lost]` : `[DUPLICATE: ${got}]`),
  onResumed: (status) => printer.word(`[resumed: ${status}]`),
  onNotice: (data) => printer.word(`[proxy: ${data}]`),
  onError: (message) => printer.word(`[${message}]`)
})
let faultTimer: NodeJS.Timeout | undefined
let restarting: Promise<void> = Promise.resolve()
let upstreamKills = 0
let clientCuts = 0

/** Ready once its readiness probe says so: the same check an orchestrator makes. */
async function proxyReady (): Promise<void> {
  for (;;) {
    const status = await fetch(`${proxyUrl}/readyz`).then((response) => response.status, () => 0)
    if (status === 200 || stopping) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

async function killAndRestartUpstream (): Promise<void> {
  await upstream.kill()
  upstreamKills++
  printer.word('[upstream killed]')
  await new Promise((resolve) => setTimeout(resolve, upstreamDownMs))
  if (stopping) return
  await upstream.start('message')
  printer.word(`[upstream restarted, pid ${upstream.pid ?? '?'}]`)
}

function nextFault (): void {
  if (faultCount > 0 && upstreamKills + clientCuts >= faultCount) return
  faultTimer = setTimeout(() => {
    if ((upstreamKills + clientCuts) % 2 === 0) {
      restarting = killAndRestartUpstream().then(nextFault, async (error: unknown) => {
        printer.aside(`could not restart the upstream: ${(error as Error).message}`)
        await stop(1)
      })
    } else {
      clientCuts++
      printer.word('[client cut]')
      relay.cutAll()
      nextFault()
    }
  }, faultEveryMs)
}

async function stop (code: number): Promise<void> {
  if (stopping) return
  stopping = true
  clearTimeout(faultTimer)
  client.close()
  await relay.close()
  await restarting
  // The proxy first: its clients get a retry hint and a clean end, then the upstream goes.
  await proxy.stop()
  await upstream.stop()
  rmSync(configDir, { recursive: true, force: true })
  if (client.last > 0) {
    const recovered = client.resumes.filter((status) => status === 'recovered').length
    printer.aside(`Stopped. The client got 1 to ${client.last}: ${client.lost} lost, ${client.duplicated} duplicated, ` +
      `across ${upstreamKills} upstream kill(s) and ${clientCuts} client cut(s); ${recovered} of ${client.resumes.length} resume(s) recovered.`)
  }
  process.exit(code)
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => { stop(0).catch(() => process.exit(1)) })
}

try {
  await upstream.start('message')
  await proxy.start(proxyReady)
} catch (error) {
  printer.aside(`${(error as Error).message}; is port ${upstreamPort} or ${proxyPort} taken? DEMO_UPSTREAM_PORT and DEMO_PROXY_PORT choose others.`)
  await stop(1)
}
printer.aside(`
fastify-mcp-sse-resilience demo

  upstream  ${upstreamUrl}  pid ${upstream.pid ?? '?'}: an MCP server built with the SDK (/mcp, /sse), and a counting SSE stream (/events)
  proxy     ${proxyUrl}  pid ${proxy.pid ?? '?'}: the fastify-mcp-sse-resilience command in front of it

Try it in another terminal; each command works as pasted:
${tryItCommands(proxyUrl).map(({ about, lines }) => `\n  # ${about}\n${lines.map((line) => `  ${line}`).join('\n')}`).join('\n')}

Below, a client reads ${proxyUrl}/events through a TCP relay. Every ${faultEveryMs / 1000} s the demo
either kills the upstream (SIGKILL) and starts it again ${upstreamDownMs / 1000} s later on the same port, or cuts
the client's connection, which comes back ${clientAwayMs / 1000} s later with the last id it got, as EventSource does.
The numbers must go on one by one; a gap or a repeat would be shown. Ctrl-C stops it all.
`)

client.open()
nextFault()
