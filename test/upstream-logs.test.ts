import t from 'tap'
import { mkdtemp } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import { mcpSseResilience } from '../lib/index.js'
import { ProxyMetrics } from '../lib/metrics.js'
import { serializeError } from '../lib/upstream/error-cause.js'
import { reportUpstreamEnd, type UpstreamReportContext } from '../lib/upstream/upstream-events-report.js'
import { UpstreamProcess } from './chaos/upstream-process.js'
import { SseClient } from './helpers/sse-client.js'

interface LogRecord {
  level: number
  msg: string
  [key: string]: unknown
}

/** Where a pino logger writes: every line is kept, parsed. */
class LogLines extends Writable {
  readonly records: LogRecord[] = []
  readonly raw: string[] = []

  override _write (chunk: Buffer, _encoding: string, done: () => void): void {
    for (const line of chunk.toString().split('\n')) {
      if (line === '') continue
      this.raw.push(line)
      this.records.push(JSON.parse(line) as LogRecord)
    }
    done()
  }

  async waitFor (msg: string, timeoutMs = 10000): Promise<LogRecord> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const found = this.records.find((record) => record.msg === msg)
      if (found !== undefined) return found
      if (Date.now() > deadline) throw new Error(`no "${msg}" in ${this.raw.length} log lines`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
}

/** What reportUpstreamEnd needs, with a real logger that writes to LogLines. */
function reportingTo (): { logs: LogLines, report: UpstreamReportContext } {
  const logs = new LogLines()
  const report: UpstreamReportContext = {
    metrics: new ProxyMetrics(),
    labels: { route_kind: 'sse', route: '/events' },
    log: Fastify({ logger: { level: 'info', stream: logs } }).log,
    upstreamUrl: 'http://127.0.0.1:9/events',
    maxEventBytes: 1024,
    idleTimeoutMs: 0
  }
  return { logs, report }
}

const INFO = 30
const WARN = 40

t.test('an upstream killed mid-stream is logged at INFO in one line with its root cause, no stack; the stream goes on', async (t) => {
  const upstream = new UpstreamProcess('sse upstream', './sse-upstream-process.ts', {
    port: 0,
    stateFile: join(await mkdtemp(join(tmpdir(), 'mcp-sse-logs-')), 'state.json'),
    tickMs: 20
  })
  await upstream.start()
  t.teardown(async () => await upstream.close())
  const logs = new LogLines()
  const app = Fastify({ logger: { level: 'info', stream: logs }, forceCloseConnections: true })
  await app.register(mcpSseResilience, {
    routes: [{ kind: 'sse', path: '/events', upstream: `${upstream.origin()}/events` }],
    reconnect: { baseDelayMs: 50, maxDelayMs: 200, maxRetries: 0 }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => await app.close())
  const client = await SseClient.open(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/events?stream=logs`)
  t.teardown(() => client.close())
  await client.waitForEvents(3)

  await upstream.restart(100)
  const failed = await logs.waitFor('upstream stream failed')
  await logs.waitFor('reconnected to the upstream')
  await client.waitForEvents(client.events.length + 3)

  t.equal(failed.level, INFO, 'an upstream restart is expected: INFO')
  t.match(failed.cause, /^(UND_ERR_SOCKET: other side closed|ECONNRESET: .+)$/, `the root cause, code first: ${String(failed.cause)}`)
  t.notOk('err' in failed, 'no error object, so no stack')
  const line = logs.raw.find((raw) => raw.includes('"upstream stream failed"')) ?? ''
  t.notMatch(line, /\\n\s+at /, 'no stack frames anywhere in the line')
  t.notOk(logs.raw.some((raw) => /\\n\s+at /.test(raw)), 'nor in any other line of the restart')
})

t.test('an upstream stream that fails for a reason with no error code is unexpected: WARN, with the stack', async (t) => {
  const { logs, report } = reportingTo()
  reportUpstreamEnd(report, 'failed', new TypeError('Cannot read properties of undefined', { cause: new Error('deeper') }))
  reportUpstreamEnd(report, 'failed')
  const [unexpected, closed] = logs.records
  t.equal(unexpected?.level, WARN)
  t.match(unexpected?.err, { type: 'TypeError', message: 'Cannot read properties of undefined', stack: /TypeError: Cannot read properties of undefined\n\s+at / })
  t.equal(closed?.level, INFO, 'a body that closes without an error is an upstream going away')
  t.equal(closed?.cause, 'closed before its end')
  t.notOk(closed !== undefined && 'err' in closed)
})

t.test('the root cause is the innermost error with a code, and a chain that loops ends', async (t) => {
  const { logs, report } = reportingTo()
  const socket = Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' })
  reportUpstreamEnd(report, 'failed', new TypeError('terminated', { cause: socket }))
  const looping = Object.assign(new Error('loop'), { code: 'ELOOP' })
  looping.cause = looping
  reportUpstreamEnd(report, 'failed', looping)
  t.same(logs.records.map((record) => [record.level, record.cause]), [
    [INFO, 'UND_ERR_SOCKET: other side closed'],
    [INFO, 'ELOOP: loop']
  ])
})

t.test('an upstream that cannot be reached: the client gets 502, and the log says why in one line, with no stack', async (t) => {
  const logs = new LogLines()
  const app = Fastify({ logger: { level: 'info', stream: logs }, forceCloseConnections: true })
  await app.register(mcpSseResilience, { routes: [{ kind: 'sse', path: '/events', upstream: 'http://127.0.0.1:9/events' }] })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => await app.close())
  const answer = await fetch(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/events`)
  t.equal(answer.status, 502)
  const refused = await logs.waitFor('The upstream server could not be reached')
  t.equal(refused.level, WARN, 'a client was refused: WARN')
  t.equal(refused.err, 'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9')
  t.notOk(logs.raw.some((raw) => /\\n\s+at /.test(raw)), 'no stack frames in any line, @fastify/reply-from\'s own included')
})

t.test('the proxy routes\' error serializer: a coded cause in one line; an unexpected error keeps its stack', async (t) => {
  const socket = Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' })
  t.equal(serializeError(new TypeError('terminated', { cause: socket })), 'UND_ERR_SOCKET: other side closed')
  t.match(serializeError(new RangeError('out of range')), /^RangeError: out of range\n\s+at /)
  t.equal(serializeError(Object.assign(new Error('no stack'), { stack: undefined })), 'Error: no stack')
  t.equal(serializeError('a string thrown'), 'a string thrown')
})
