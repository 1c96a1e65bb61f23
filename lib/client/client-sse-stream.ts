import type { ServerResponse } from 'node:http'
import type { FastifyReply } from 'fastify'
import type { HeaderMap } from '../upstream/headers.js'
import { serializeComment } from '../wire/sse-serializer.js'

const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
  // nginx and others buffer responses unless told not to (MCP 2026-07-28 asks for it too).
  'x-accel-buffering': 'no'
}

const KEEPALIVE = serializeComment('keepalive')

export interface ClientStreamOptions {
  /** A keep-alive comment this often; 0 for none. */
  heartbeatMs: number
  /** Bytes the client may fall behind by before it is cut. */
  maxBufferedBytes: number
  /** The client fell behind by more than maxBufferedBytes and was cut. */
  onSlowConsumer: () => void
}

/**
 * The client's side of a stream. Text is gathered and written in one write per
 * upstream chunk: socket writes, not parsing, are what an event costs.
 */
export class ClientSseStream {
  readonly #response: ServerResponse
  readonly #options: ClientStreamOptions
  #pending = ''
  /** The longest text written since the last flush: one event, or a slice of a replay. */
  #largestPending = 0

  constructor (reply: FastifyReply, headers: HeaderMap, options: ClientStreamOptions) {
    reply.hijack()
    this.#options = options
    this.#response = reply.raw
    const { 'content-length': _length, 'content-encoding': _encoding, ...passed } = headers
    this.#response.writeHead(200, { ...passed, ...SSE_HEADERS })
    this.#response.flushHeaders()
    if (options.heartbeatMs > 0) {
      const heartbeat = setInterval(() => this.#sendKeepalive(), options.heartbeatMs)
      this.onClose(() => clearInterval(heartbeat))
    }
  }

  get closed (): boolean {
    return this.#response.destroyed || this.#response.writableEnded
  }

  write (text: string): void {
    this.#pending += text
    if (text.length > this.#largestPending) this.#largestPending = text.length
  }

  /**
   * Sends what was written. False when the socket is full: `onDrain` tells when it
   * empties. A client that has fallen behind by more than the limit is cut, and so
   * is one sent a single text larger than it. A batch of many small events is
   * neither: callers stop writing once the socket is full, so a batch is bounded.
   */
  flush (): boolean {
    if (this.#pending === '' || this.closed) return true
    const text = this.#pending
    const largest = this.#largestPending
    this.#pending = ''
    this.#largestPending = 0
    const behind = this.#response.writableLength
    const accepted = this.#response.write(text)
    if (behind > this.#options.maxBufferedBytes || largest > this.#options.maxBufferedBytes) this.cutAsSlowConsumer()
    return accepted
  }

  /** Resolves true once the socket has room, or the client is gone; false when `timeoutMs` passes first. */
  async drained (timeoutMs: number): Promise<boolean> {
    if (!this.#response.writableNeedDrain) return true
    return await new Promise<boolean>((resolve) => {
      const done = (drained: boolean): void => {
        clearTimeout(timer)
        this.#response.off('drain', onDrain)
        this.#response.off('close', onDrain)
        resolve(drained)
      }
      const onDrain = (): void => done(true)
      const timer = setTimeout(() => done(false), timeoutMs)
      this.#response.on('drain', onDrain)
      this.#response.on('close', onDrain)
    })
  }

  /** True while the socket is full: write nothing more until drained(). */
  get needsDrain (): boolean {
    return this.#response.writableNeedDrain
  }

  /** Cuts a client that cannot keep up, and counts it. */
  cutAsSlowConsumer (): void {
    if (this.closed) return
    this.#response.destroy()
    this.#options.onSlowConsumer()
  }

  onDrain (listener: () => void): void {
    this.#response.on('drain', listener)
  }

  /** Also for a client that left before the stream began (before the upstream's head came): its 'close' has passed. */
  onClose (listener: () => void): void {
    if (this.#response.closed) {
      process.nextTick(listener)
    } else {
      this.#response.once('close', listener)
    }
  }

  end (): void {
    this.flush()
    if (!this.closed) this.#response.end()
  }

  /** Cuts the connection without a clean end (a newer connection took over the stream). */
  destroy (): void {
    this.#response.destroy()
  }

  #sendKeepalive (): void {
    this.write(KEEPALIVE)
    this.flush()
  }
}
