import type { ServerResponse } from 'node:http'
import { wallClockMs, type EventWriter } from '../wire/event-payload.js'
import type { StreamRegistry } from './stream-registry.js'

// Events that fall due are written together on each tick: at 1000 events/s, 5 per write.
const TICK_MS = 5

interface PacedStream {
  readonly response: ServerResponse
  readonly writeEvent: EventWriter
  readonly ratePerMs: number
  readonly startedAt: number
  readonly firstSeq: number
  sent: number
}

/**
 * Streams at a fixed rate each, on one shared timer. What is due is computed from
 * the time elapsed, so a late tick catches up and the offered rate holds. Writes
 * ignore backpressure: the offered load is the point, and a proxy that falls
 * behind shows up as backlog in the registry.
 */
export class PacedStreams {
  readonly #streams = new Set<PacedStream>()
  readonly #registry: StreamRegistry
  #timer: NodeJS.Timeout | undefined

  constructor (registry: StreamRegistry) {
    this.#registry = registry
  }

  add (response: ServerResponse, writeEvent: EventWriter, ratePerSecond: number, firstSeq: number): void {
    const stream: PacedStream = { response, writeEvent, ratePerMs: ratePerSecond / 1000, startedAt: performance.now(), firstSeq, sent: 0 }
    this.#streams.add(stream)
    response.once('close', () => this.#remove(stream))
    this.#timer ??= setInterval(() => this.#tick(), TICK_MS)
    // The first event goes out at once, so that a client knows the stream is live.
    this.#write(stream, 1)
  }

  #tick (): void {
    const now = performance.now()
    for (const stream of this.#streams) {
      const due = Math.floor((now - stream.startedAt) * stream.ratePerMs) + 1 - stream.sent
      if (due > 0) this.#write(stream, due)
    }
  }

  #write (stream: PacedStream, count: number): void {
    if (stream.response.destroyed) return
    const timestamp = wallClockMs().toFixed(3)
    let chunk = ''
    for (let index = 0; index < count; index++) chunk += stream.writeEvent(stream.firstSeq + stream.sent++, timestamp)
    this.#registry.eventsWritten += count
    stream.response.write(chunk)
  }

  #remove (stream: PacedStream): void {
    this.#streams.delete(stream)
    if (this.#streams.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer)
      this.#timer = undefined
    }
  }
}
