import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks'
import type { Socket } from 'node:net'
import { wallClockMs } from '../wire/event-payload.js'

/** The header a bench client sets to its wall clock when it creates a request. */
export const SENT_AT_HEADER = 'x-bench-sent-at'

/** p50 / p99 in ms of each stage, for resuming requests (those with a Last-Event-ID) over a window. */
export interface ResumeStages {
  readonly count: number
  /** From the client creating the request to the proxy accepting its connection: handshake and the kernel's accept queue. */
  readonly acceptWaitP50Ms: number | null
  readonly acceptWaitP99Ms: number | null
  /** From the accept to the request parsed (its `request` event). */
  readonly toRequestP50Ms: number | null
  readonly toRequestP99Ms: number | null
  /** From the request to its response head written. */
  readonly toHeadP50Ms: number | null
  readonly toHeadP99Ms: number | null
}

const HIGHEST_US = 600_000_000

/**
 * Where a resume's wait is spent inside the proxy process: before its connection
 * is accepted, before its request is parsed, or before its response head goes out.
 * Clock: the wall clock, which the client's stamp shares (one machine).
 */
export class ConnectionTimings {
  readonly #acceptedAt = new WeakMap<Socket, number>()
  readonly #acceptWait = histogram()
  readonly #toRequest = histogram()
  readonly #toHead = histogram()

  constructor (server: Server) {
    server.on('connection', (socket: Socket) => this.#acceptedAt.set(socket, wallClockMs()))
    // Before Fastify's own listener, so that the head's writeHead is wrapped before anything can call it.
    server.prependListener('request', (request: IncomingMessage, response: ServerResponse) => this.#onRequest(request, response))
  }

  take (): ResumeStages {
    const stages: ResumeStages = {
      count: this.#toRequest.count,
      acceptWaitP50Ms: millis(this.#acceptWait, 50),
      acceptWaitP99Ms: millis(this.#acceptWait, 99),
      toRequestP50Ms: millis(this.#toRequest, 50),
      toRequestP99Ms: millis(this.#toRequest, 99),
      toHeadP50Ms: millis(this.#toHead, 50),
      toHeadP99Ms: millis(this.#toHead, 99)
    }
    this.#acceptWait.reset()
    this.#toRequest.reset()
    this.#toHead.reset()
    return stages
  }

  #onRequest (request: IncomingMessage, response: ServerResponse): void {
    if (request.headers['last-event-id'] === undefined) return
    const now = wallClockMs()
    const acceptedAt = this.#acceptedAt.get(request.socket)
    const sentAt = Number(request.headers[SENT_AT_HEADER])
    if (acceptedAt === undefined) return
    if (Number.isFinite(sentAt)) record(this.#acceptWait, acceptedAt - sentAt)
    record(this.#toRequest, now - acceptedAt)
    // The relay writes the head itself (writeHead, then flushHeaders): wrap this one response's writeHead.
    const writeHead = response.writeHead
    const toHead = this.#toHead
    response.writeHead = function (this: ServerResponse, ...args: Parameters<ServerResponse['writeHead']>) {
      record(toHead, wallClockMs() - now)
      response.writeHead = writeHead
      return Reflect.apply(writeHead, this, args) as ServerResponse
    } as ServerResponse['writeHead']
  }
}

function histogram (): RecordableHistogram {
  return createHistogram({ lowest: 1, highest: HIGHEST_US, figures: 3 })
}

function record (target: RecordableHistogram, ms: number): void {
  target.record(Math.min(HIGHEST_US, Math.max(1, Math.round(ms * 1000))))
}

function millis (source: RecordableHistogram, percentile: number): number | null {
  return source.count === 0 ? null : source.percentile(percentile) / 1000
}
