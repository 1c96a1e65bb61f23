import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { once } from 'node:events'

export type UpstreamHandler = (request: IncomingMessage, response: ServerResponse) => void

/** A node:http upstream whose SSE streams the test writes to by hand. */
export class SseUpstream {
  readonly server: Server
  readonly requests: IncomingMessage[] = []
  readonly streams = new Set<ServerResponse>()
  handler: UpstreamHandler

  constructor (handler?: UpstreamHandler) {
    this.handler = handler ?? ((request, response) => this.openStream(request, response))
    this.server = createServer((request, response) => {
      this.requests.push(request)
      this.handler(request, response)
    })
  }

  static async start (handler?: UpstreamHandler): Promise<SseUpstream> {
    const upstream = new SseUpstream(handler)
    upstream.server.listen(0, '127.0.0.1')
    await once(upstream.server, 'listening')
    return upstream
  }

  get origin (): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }

  url (path = '/events'): string {
    return `${this.origin}${path}`
  }

  openStream (_request: IncomingMessage, response: ServerResponse, headers: Record<string, string> = {}): void {
    response.writeHead(200, { 'content-type': 'text/event-stream', ...headers })
    response.flushHeaders()
    this.streams.add(response)
    response.once('close', () => this.streams.delete(response))
  }

  /** Writes raw SSE text to every open stream. */
  broadcast (text: string): void {
    for (const stream of this.streams) stream.write(text)
  }

  /** Resolves once `count` requests in all have arrived, and the last one's stream is open. */
  async waitForRequests (count: number, timeoutMs = 10000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (this.requests.length < count || ![...this.streams].some((stream) => stream.req === this.requests[count - 1])) {
      if (Date.now() > deadline) throw new Error(`upstream has ${this.requests.length} requests, expected ${count}`)
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  }

  async waitForStreams (count: number, timeoutMs = 10000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (this.streams.size < count) {
      if (Date.now() > deadline) throw new Error(`upstream has ${this.streams.size} streams, expected ${count}`)
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  }

  async close (): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}
