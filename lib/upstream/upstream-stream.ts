import type { Readable } from 'node:stream'
import { createRelayScanner, type RelayScanner, type RelayScannerHandlers, type SlowPathReason } from '../wire/sse-byte-scanner.js'

export type UpstreamEndReason = 'ended' | 'failed' | 'stalled' | 'oversized-event' | 'aborted'

export interface UpstreamStreamHandlers extends Omit<RelayScannerHandlers, 'onOversizedEvent'> {
  /** One upstream chunk has been parsed: what it produced may be written out together. */
  onChunkParsed: () => void
  /** Called once, however the stream ends. */
  onEnd: (reason: UpstreamEndReason, error?: Error) => void
  /** Told once per connection, when its stream leaves the byte path for the string parser. */
  onSlowPath: (reason: SlowPathReason) => void
}

/**
 * One upstream SSE response, read event by event, on bytes (sse-byte-scanner.ts). An
 * event cut off by the end of the stream stays in the scanner and is never emitted.
 */
export class UpstreamStream {
  readonly #body: Readable
  readonly #scanner: RelayScanner
  readonly #handlers: UpstreamStreamHandlers
  readonly #idleTimer: NodeJS.Timeout | undefined
  #ended = false
  #slowPathTold = false

  /** `idleTimeoutMs`: silence after which the stream counts as stalled; 0 for never. */
  constructor (body: Readable, handlers: UpstreamStreamHandlers, limits: { maxEventBytes: number, idleTimeoutMs: number }) {
    this.#body = body
    this.#handlers = handlers
    const { maxEventBytes, idleTimeoutMs } = limits
    if (idleTimeoutMs > 0) {
      this.#idleTimer = setTimeout(() => this.#finish('stalled'), idleTimeoutMs)
      this.#idleTimer.unref()
    }
    const scanner = createRelayScanner({
      onEvent: handlers.onEvent,
      onComment: handlers.onComment,
      onRetry: handlers.onRetry,
      onMalformedLine: handlers.onMalformedLine,
      onOversizedEvent: () => this.#finish('oversized-event')
    }, maxEventBytes)
    this.#scanner = scanner
    body.on('data', (chunk: Buffer) => {
      this.#idleTimer?.refresh()
      scanner.feed(chunk)
      if (!this.#slowPathTold && scanner.slowPathReason !== undefined) this.#toldSlowPath(scanner.slowPathReason)
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

  #toldSlowPath (reason: SlowPathReason): void {
    this.#slowPathTold = true
    this.#handlers.onSlowPath(reason)
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
