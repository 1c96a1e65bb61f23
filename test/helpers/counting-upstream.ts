import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { once } from 'node:events'

export interface UpstreamConnection {
  readonly lastEventId: string | undefined
  readonly openedAt: number
  closedAt: number | undefined
}

/**
 * An upstream that sends numbered events, `id: n` and `data: n`, every `intervalMs`.
 * `replays: true` honours Last-Event-ID: a connection resumes after the number it names.
 * `replays: false` cannot replay: one counter for everyone, and what is sent while no
 * one is connected is lost.
 */
export class CountingUpstream {
  readonly server: Server
  readonly connections: UpstreamConnection[] = []
  readonly #replays: boolean
  readonly #intervalMs: number
  readonly #timers = new Set<NodeJS.Timeout>()
  #sharedNext = 1

  private constructor (options: { replays: boolean, intervalMs: number }) {
    this.#replays = options.replays
    this.#intervalMs = options.intervalMs
    this.server = createServer((request, response) => this.#open(request, response))
  }

  static async start (options: { replays: boolean, intervalMs?: number }): Promise<CountingUpstream> {
    const upstream = new CountingUpstream({ intervalMs: 10, ...options })
    upstream.server.listen(0, '127.0.0.1')
    await once(upstream.server, 'listening')
    return upstream
  }

  /** Whether it honours Last-Event-ID: what a route in front of it says with upstreamReplays. */
  get replays (): boolean {
    return this.#replays
  }

  url (path = '/events'): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`
  }

  get open (): number {
    return this.connections.filter((connection) => connection.closedAt === undefined).length
  }

  async waitForConnections (count: number, timeoutMs = 15000): Promise<UpstreamConnection> {
    const deadline = Date.now() + timeoutMs
    while (this.connections.length < count) {
      if (Date.now() > deadline) throw new Error(`upstream had ${this.connections.length} connections, expected ${count}`)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    return this.connections[count - 1] as UpstreamConnection
  }

  async close (): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer)
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  #open (request: IncomingMessage, response: ServerResponse): void {
    const header = request.headers['last-event-id']
    const lastEventId = typeof header === 'string' ? header : undefined
    const connection: UpstreamConnection = { lastEventId, openedAt: Date.now(), closedAt: undefined }
    this.connections.push(connection)
    response.writeHead(200, { 'content-type': 'text/event-stream' })
    response.flushHeaders()
    let next = this.#replays && lastEventId !== undefined ? Number(lastEventId) + 1 : 0
    const timer = setInterval(() => {
      const n = this.#replays ? next++ : this.#sharedNext++
      response.write(`id: ${n}\ndata: ${n}\n\n`)
    }, this.#intervalMs)
    if (this.#replays && next === 0) next = 1
    this.#timers.add(timer)
    response.once('close', () => {
      clearInterval(timer)
      this.#timers.delete(timer)
      connection.closedAt = Date.now()
    })
  }
}
