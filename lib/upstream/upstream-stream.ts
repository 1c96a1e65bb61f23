import type { Readable } from 'node:stream'
import { createSseParser, type SseParser, type SseParserHandlers } from '../wire/sse-parser.js'

export type UpstreamEndReason = 'ended' | 'failed' | 'stalled' | 'oversized-event' | 'aborted'

export interface UpstreamStreamHandlers extends Omit<SseParserHandlers, 'onOversizedEvent'> {
  /** One upstream chunk has been parsed: what it produced may be written out together. */
  onChunkParsed: () => void
  /** Called once, however the stream ends. */
  onEnd: (reason: UpstreamEndReason, error?: Error) => void
}

/**
 * One upstream SSE response, read event by event. An event cut off by the end of
 * the stream stays in the parser and is never emitted.
 */
export class UpstreamStream {
  readonly #body: Readable
  readonly #parser: SseParser
  readonly #handlers: UpstreamStreamHandlers
  readonly #idleTimer: NodeJS.Timeout | undefined
  #ended = false

  /** `idleTimeoutMs`: silence after which the stream counts as stalled; 0 for never. */
  constructor (body: Readable, handlers: UpstreamStreamHandlers, limits: { maxEventBytes: number, idleTimeoutMs: number }) {
    this.#body = body
    this.#handlers = handlers
    const { maxEventBytes, idleTimeoutMs } = limits
    if (idleTimeoutMs > 0) {
      this.#idleTimer = setTimeout(() => this.#finish('stalled'), idleTimeoutMs)
      this.#idleTimer.unref()
    }
    this.#parser = createSseParser({
      ...handlers,
      onOversizedEvent: () => this.#finish('oversized-event')
    }, maxEventBytes)
    body.on('data', (chunk: Buffer) => {
      this.#idleTimer?.refresh()
      this.#parser.feed(chunk)
      if (!this.#ended) handlers.onChunkParsed()
    })
    body.once('end', () => this.#finish('ended'))
    body.once('error', (error: Error) => this.#finish('failed', error))
    body.once('close', () => this.#finish('failed'))
  }

  pause (): void {
    this.#body.pause()
  }

  resume (): void {
    this.#body.resume()
  }

  abort (): void {
    this.#finish('aborted')
  }

  #finish (reason: UpstreamEndReason, error?: Error): void {
    if (this.#ended) return
    this.#ended = true
    clearTimeout(this.#idleTimer)
    // Always consume or destroy an undici body: an abandoned one can crash the process (reply-from#328).
    this.#body.destroy()
    this.#handlers.onEnd(reason, error)
  }
}
