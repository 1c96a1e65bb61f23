import type { ServerResponse } from 'node:http'
import type { FastifyReply } from 'fastify'
import type { HeaderMap } from '../upstream/headers.js'

const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
  // nginx and others buffer responses unless told not to (MCP 2026-07-28 asks for it too).
  'x-accel-buffering': 'no'
}

/**
 * The client's side of a relayed stream. Text is gathered and written in one
 * write per upstream chunk: socket writes, not parsing, are what an event costs.
 */
export class ClientSseStream {
  readonly #response: ServerResponse
  #pending = ''

  constructor (reply: FastifyReply, statusCode: number, headers: HeaderMap) {
    reply.hijack()
    this.#response = reply.raw
    const { 'content-length': _length, 'content-encoding': _encoding, ...passed } = headers
    this.#response.writeHead(statusCode, { ...passed, ...SSE_HEADERS })
    this.#response.flushHeaders()
  }

  get closed (): boolean {
    return this.#response.destroyed || this.#response.writableEnded
  }

  write (text: string): void {
    this.#pending += text
  }

  /** Sends what was written; false when the socket is full and `onDrain` should be awaited. */
  flush (): boolean {
    if (this.#pending === '' || this.closed) return true
    const text = this.#pending
    this.#pending = ''
    return this.#response.write(text)
  }

  onDrain (listener: () => void): void {
    this.#response.on('drain', listener)
  }

  onClose (listener: () => void): void {
    this.#response.once('close', listener)
  }

  end (): void {
    this.flush()
    if (!this.closed) this.#response.end()
  }
}
