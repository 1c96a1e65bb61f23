import { eventTimestamp } from '../wire/event-fields.js'
import { wallClockMs } from '../wire/event-payload.js'
import { SseScanner } from '../wire/sse-scanner.js'
import { latencySummary } from '../statistics.js'
import { startEventStream, type OpenedStream } from './sse-request.js'

export interface FleetSpec {
  readonly url: string
  readonly clients: number
  /** Every how many events a latency is sampled: 1 for all of them. */
  readonly latencyEvery: number
  /**
   * Opening is over when every stream has its response head, or when none came for
   * this long: a proxy that queues streams behind a pool is measured with those it opened.
   */
  readonly openStallMs: number
}

export interface FleetOpening {
  readonly opened: number
  readonly failed: number
  /** Still waiting for a response head: a proxy that queues streams. */
  readonly waiting: number
}

export interface FleetWindow {
  readonly events: number
  readonly elapsedMs: number
  readonly p50Ms: number | null
  readonly p99Ms: number | null
  readonly latencySamples: number
  /** Streams that the far end closed during the window. */
  readonly streamsEnded: number
}

// Opening connections in bursts keeps the listen backlogs from overflowing.
const OPEN_BURST = 100

/** The throughput load: many streams, counted together, latency sampled from the events' timestamps. */
export class StreamFleet {
  readonly #streams = new Set<OpenedStream>()
  /** Requests not answered yet: a proxy that queues streams behind a pool holds them. */
  readonly #unanswered = new Set<OpenedStream['request']>()
  #events = 0
  #latencies: number[] = []
  #windowStart = 0
  #streamsEnded = 0
  #latencyEvery = 1

  async open (spec: FleetSpec): Promise<FleetOpening> {
    this.#latencyEvery = spec.latencyEvery
    let opened = 0
    let failed = 0
    const openings: Array<Promise<void>> = []
    for (let index = 0; index < spec.clients; index++) {
      const started = startEventStream(spec.url)
      this.#unanswered.add(started.request)
      openings.push(started.opened.then((stream) => {
        opened++
        this.#track(stream)
      }, () => { failed++ }).finally(() => this.#unanswered.delete(started.request)))
      if ((index + 1) % OPEN_BURST === 0) await new Promise((resolve) => setTimeout(resolve, 5))
    }
    let answered = -1
    while (opened + failed < spec.clients && opened + failed > answered) {
      answered = opened + failed
      await Promise.race([Promise.all(openings), new Promise((resolve) => setTimeout(resolve, spec.openStallMs))])
    }
    return { opened, failed, waiting: spec.clients - opened - failed }
  }

  startWindow (): void {
    this.#events = 0
    this.#latencies = []
    this.#streamsEnded = 0
    this.#windowStart = performance.now()
  }

  endWindow (): FleetWindow {
    const elapsedMs = performance.now() - this.#windowStart
    const latency = latencySummary(this.#latencies)
    return { events: this.#events, elapsedMs, ...latency, latencySamples: this.#latencies.length, streamsEnded: this.#streamsEnded }
  }

  /** Ends every stream, and any still opening; resolves once all are closed. */
  async close (): Promise<void> {
    for (const request of this.#unanswered) request.destroy()
    this.#unanswered.clear()
    const closed = [...this.#streams].map(async (stream) => await new Promise<void>((resolve) => {
      stream.response.once('close', () => resolve())
      stream.request.destroy()
      if (stream.response.destroyed) resolve()
    }))
    this.#streams.clear()
    await Promise.all(closed)
  }

  #track (opened: OpenedStream): void {
    this.#streams.add(opened)
    const scanner = new SseScanner()
    let receivedAt = 0
    const onEvent = (chunk: Buffer, start: number, end: number): void => {
      if (++this.#events % this.#latencyEvery !== 0) return
      const writtenAt = eventTimestamp(chunk, start, end)
      if (!Number.isNaN(writtenAt)) this.#latencies.push(receivedAt - writtenAt)
    }
    opened.response.on('data', (chunk: Buffer) => {
      receivedAt = wallClockMs()
      scanner.feed(chunk, onEvent)
    })
    opened.response.once('close', () => {
      if (this.#streams.delete(opened)) this.#streamsEnded++
    })
    opened.response.once('error', () => {})
  }
}
