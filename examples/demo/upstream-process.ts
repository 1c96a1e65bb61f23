import { startDemoUpstream } from './mcp-server.js'

// The demo's upstream as a process of its own, so that the demo can SIGKILL it and start it again on the same port.
const port = Number(process.env.DEMO_UPSTREAM_PORT ?? 3000)
const eventIntervalMs = Number(process.env.DEMO_EVENT_INTERVAL_MS ?? 200)

try {
  const upstream = await startDemoUpstream(port, '127.0.0.1', eventIntervalMs)
  const stop = (): void => {
    upstream.close().finally(() => process.exit(0))
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
  process.send?.({ type: 'ready' })
} catch (error) {
  process.stderr.write(`demo upstream: cannot listen on 127.0.0.1:${port}: ${(error as Error).message}\n`)
  process.exit(1)
}
// The demo is gone, however it went: so is its upstream.
process.once('disconnect', () => process.exit(0))
