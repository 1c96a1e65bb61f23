import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http'
import { createParser } from 'eventsource-parser'
import type { SseEvent } from '../../lib/wire/sse-event.js'

/**
 * A minimal SSE client over node:http, one socket per stream (no pool), that
 * records what it reads and lets a test wait for it.
 */
export class SseClient {
  readonly events: SseEvent[] = []
  readonly comments: string[] = []
  readonly retries: number[] = []
  readonly ended: Promise<void>
  readonly #response: IncomingMessage
  #waiters: Array<() => void> = []

  private constructor (response: IncomingMessage) {
    this.#response = response
    const parser = createParser({
      onEvent: (event) => { this.events.push(event); this.#wake() },
      onComment: (comment) => { this.comments.push(comment); this.#wake() },
      onRetry: (retry) => { this.retries.push(retry) }
    })
    response.setEncoding('utf8')
    response.on('data', (chunk: string) => parser.feed(chunk))
    this.ended = new Promise((resolve) => response.once('close', () => { this.#wake(); resolve() }))
  }

  static async open (url: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const request = httpRequest(url, { agent: false, headers: { accept: 'text/event-stream', ...headers } }, resolve)
      request.once('error', reject)
      request.end()
    })
    return new SseClient(response)
  }

  get status (): number {
    return this.#response.statusCode ?? 0
  }

  get headers (): IncomingHttpHeaders {
    return this.#response.headers
  }

  /** Resolves once `count` events in all have arrived. */
  async waitForEvents (count: number, timeoutMs = 10000): Promise<SseEvent[]> {
    await this.#waitUntil(() => this.events.length >= count, timeoutMs, () => `${this.events.length} of ${count} events`)
    return this.events.slice(0, count)
  }

  async waitForComments (count: number, timeoutMs = 10000): Promise<string[]> {
    await this.#waitUntil(() => this.comments.length >= count, timeoutMs, () => `${this.comments.length} of ${count} comments`)
    return this.comments.slice(0, count)
  }

  close (): void {
    this.#response.destroy()
  }

  /** True once the response ended cleanly, with its terminating chunk; false while open or when it was cut. */
  get completed (): boolean {
    return this.#response.complete
  }

  /** Stops reading from the socket, as a slow client would. */
  pause (): void {
    this.#response.pause()
  }

  resume (): void {
    this.#response.resume()
  }

  async #waitUntil (done: () => boolean, timeoutMs: number, progress: () => string): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!done()) {
      const remaining = deadline - Date.now()
      if (remaining <= 0) throw new Error(`timed out with ${progress()}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining)
        this.#waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  #wake (): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const wake of waiters) wake()
  }
}
