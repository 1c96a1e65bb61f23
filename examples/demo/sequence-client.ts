import { request, type ClientRequest, type IncomingMessage } from 'node:http'
import { createParser } from 'eventsource-parser'

export interface SequenceClientEvents {
  /** Each number, in the order it arrives. */
  readonly onNumber: (n: number) => void
  /** A number that is not the one after the last: lost events, or a duplicate. */
  readonly onBreak: (expected: number, got: number) => void
  /** A resume was answered; `status` is the proxy's X-Resume-Status. */
  readonly onResumed: (status: string) => void
  /** The proxy's own `resume-status` event: where the upstream may have lost events (routes[].upstreamReplays: false). */
  readonly onNotice: (data: string) => void
  readonly onError: (message: string) => void
}

/**
 * An SSE client on the counting stream, as a browser's EventSource behaves: when
 * its connection drops, it comes back with the id of the last event it received.
 * It checks that the numbers go on one by one.
 */
export class SequenceClient {
  readonly #url: string
  readonly #awayMs: number
  readonly #on: SequenceClientEvents
  #lastEventId: string | undefined
  #last = 0
  #request: ClientRequest | undefined
  #timer: NodeJS.Timeout | undefined
  #closed = false
  #connection = 0
  lost = 0
  duplicated = 0
  readonly resumes: string[] = []

  constructor (url: string, awayMs: number, on: SequenceClientEvents) {
    this.#url = url
    this.#awayMs = awayMs
    this.#on = on
  }

  get last (): number {
    return this.#last
  }

  open (): void {
    const connection = ++this.#connection
    const resuming = this.#lastEventId !== undefined
    const headers: Record<string, string> = { accept: 'text/event-stream' }
    if (this.#lastEventId !== undefined) headers['last-event-id'] = this.#lastEventId
    this.#request = request(this.#url, { agent: false, headers }, (response) => this.#read(connection, response, resuming))
    this.#request.once('error', (error) => this.#dropped(connection, error.message))
    this.#request.end()
  }

  close (): void {
    this.#closed = true
    clearTimeout(this.#timer)
    this.#request?.destroy()
  }

  #read (connection: number, response: IncomingMessage, resuming: boolean): void {
    // A cut shows as 'close'; its 'error' says nothing more.
    response.on('error', () => {})
    if (response.statusCode !== 200) {
      response.resume()
      this.#dropped(connection, `the proxy answered ${response.statusCode ?? '?'}`)
      return
    }
    if (resuming) {
      const status = String(response.headers['x-resume-status'] ?? 'no X-Resume-Status')
      this.resumes.push(status)
      this.#on.onResumed(status)
    }
    // A fresh parser per connection: an event cut in half by a drop is dropped with it.
    const parser = createParser({
      onEvent: (event) => {
        this.#lastEventId = event.id
        if (event.event === 'resume-status') {
          this.#on.onNotice(event.data)
          return
        }
        this.#count(Number(event.data))
      }
    })
    response.setEncoding('utf8')
    response.on('data', (chunk: string) => parser.feed(chunk))
    response.once('close', () => this.#dropped(connection))
  }

  #count (n: number): void {
    const expected = this.#last + 1
    if (n !== expected) {
      if (n > expected) this.lost += n - expected
      else this.duplicated++
      this.#on.onBreak(expected, n)
    }
    this.#last = Math.max(this.#last, n)
    this.#on.onNumber(n)
  }

  /** Resumes after `awayMs`, once per connection, as long as the client is open. */
  #dropped (connection: number, reason?: string): void {
    if (this.#closed || connection !== this.#connection || this.#timer !== undefined) return
    if (reason !== undefined) this.#on.onError(reason)
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.open()
    }, this.#awayMs)
  }
}
