import Fastify from 'fastify'
import { connect, type AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import { mcpSseResilience, type McpSseResilienceOptions } from '../../lib/index.js'
import type { RunningProxy } from './proxy.js'

interface Teardown { teardown: (fn: () => unknown) => void }

export interface LogLine {
  level: number
  msg: string
  [key: string]: unknown
}

/** startProxy(), with every log line the proxy writes (DEBUG and up) kept for the test to read. */
export async function startLoggedProxy (t: Teardown, options: McpSseResilienceOptions): Promise<RunningProxy & { logs: LogLine[] }> {
  const logs: LogLine[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line !== '') logs.push(JSON.parse(line) as LogLine)
      }
      done()
    }
  })
  const app = Fastify({ logger: { level: 'debug', stream }, forceCloseConnections: true })
  await app.register(mcpSseResilience, options)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => await app.close())
  const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  return { app, origin, url: (path) => `${origin}${path}`, logs }
}

export async function metricsText (proxy: RunningProxy): Promise<string> {
  return await (await fetch(proxy.url('/metrics'))).text()
}

/** Polls /metrics until `pattern` matches. */
export async function waitForMetric (proxy: RunningProxy, pattern: RegExp, timeoutMs = 10000): Promise<string> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const text = await metricsText(proxy)
    if (pattern.test(text)) return text
    if (Date.now() > deadline) throw new Error(`metric ${String(pattern)} never appeared`)
    await sleep(20)
  }
}

/** The proxy still answers: nothing the test sent brought the process down. */
export async function proxyStillServes (proxy: RunningProxy): Promise<boolean> {
  const response = await fetch(proxy.url('/metrics'))
  await response.text()
  return response.status === 200
}

export interface RawResponse {
  /** The status line and headers, as sent. */
  head: string
  status: number
  /** Header names, lower case, to their values. */
  headers: Map<string, string>
  body: string
}

/**
 * Sends `text` as it is on a fresh socket, and returns what came back within `waitMs`,
 * until the server closed, or until `until` holds: for requests no HTTP client would send.
 */
export async function rawExchange (origin: string, text: string | Buffer, waitMs = 300, until?: (received: string) => boolean): Promise<RawResponse> {
  const { hostname, port } = new URL(origin)
  const received = await new Promise<string>((resolve) => {
    const socket = connect(Number(port), hostname, () => socket.write(text))
    let data = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => {
      data += chunk
      if (until?.(data) === true) socket.destroy()
    })
    socket.on('error', () => {})
    const timer = setTimeout(() => socket.destroy(), waitMs)
    socket.once('close', () => { clearTimeout(timer); resolve(data) })
  })
  const split = received.indexOf('\r\n\r\n')
  const head = split === -1 ? received : received.slice(0, split)
  const [statusLine = '', ...headerLines] = head.split('\r\n')
  const headers = new Map<string, string>()
  for (const line of headerLines) {
    const colon = line.indexOf(':')
    if (colon > 0) headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim())
  }
  return { head, status: Number(statusLine.split(' ')[1] ?? 0), headers, body: split === -1 ? '' : received.slice(split + 4) }
}

export async function sleep (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}

export async function waitUntil (done: () => boolean, what: string, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}
