import { createHistogram, type RecordableHistogram } from 'node:perf_hooks'
import { eventId, eventSeq, eventTimestamp } from '../wire/event-fields.js'
import { SENT_AT_HEADER } from '../pauses/connection-timings.js'
import { wallClockMs } from '../wire/event-payload.js'
import { SseScanner } from '../wire/sse-scanner.js'
import { openEventStream, type OpenedStream } from './sse-request.js'

export interface ChurnSpec {
  /**
   * Where the clients read. With several (replicas behind no balancer), each client
   * starts on one, in turn, and resumes on the next one after every cut.
   */
  readonly urls: readonly string[]
  readonly clients: number
  /**
   * How long a client stays connected before it cuts its connection: exponentially
   * spread around a mean, or evenly spread between two bounds.
   */
  readonly connected: { readonly meanMs: number } | { readonly minMs: number, readonly maxMs: number }
  /** A client comes back after a random time up to this. */
  readonly maxAwayMs: number
  /** Share of cuts made in the middle of an event rather than between reads. */
  readonly midEventShare: number
}

export interface ChurnCounts {
  events: number
  /** Events missing from a client's sequence: gaps between what it saw. */
  lost: number
  /** Events a client saw at or before a position it had already seen. */
  duplicated: number
  cuts: number
  midEventCuts: number
  resumes: number
  /** Resumes answered `recovered; upstream-gaps=N`. */
  resumesWithUpstreamGaps: number
  /** Resumes not answered `recovered`, by reason. */
  unrecoverable: Record<string, number>
  /** Streams the proxy ended on its own. */
  serverCloses: number
  openFailures: number
  /** Times a client read no event for STALL_MS or more, time away included. */
  stalls: number
}

/** A client that read nothing for this long counts a stall: far past any time away, a stream that stopped. */
export const STALL_MS = 5000

/** Latency over a window, of live events only: those the upstream wrote after the client sent its GET. */
export interface ChurnLatency {
  readonly p50Ms: number | null
  readonly p99Ms: number | null
  readonly maxMs: number | null
  readonly samples: number
  /** Events written before the client's GET: replayed from the history, their latency is mostly the time away. */
  readonly replayed: number
  /** From a resuming client's GET to its response head. */
  readonly resumeP50Ms: number | null
  readonly resumeP99Ms: number | null
  readonly resumeMaxMs: number | null
}

// Latencies are recorded in microseconds, from 1 µs to 10 minutes, to 3 significant digits.
const LATENCY_HIGHEST_US = 600_000_000

/**
 * The load under churn: clients that read a numbered stream, cut their connection
 * at random (sometimes in the middle of an event), and come back with the last
 * id they saw. Each checks its own sequence: no gap, no repeat.
 */
export class ChurnFleet {
  readonly #clients: ChurnClient[] = []
  readonly counts: ChurnCounts = { events: 0, lost: 0, duplicated: 0, cuts: 0, midEventCuts: 0, resumes: 0, resumesWithUpstreamGaps: 0, unrecoverable: {}, serverCloses: 0, openFailures: 0, stalls: 0 }
  readonly #latency: LatencyWindow = { histogram: microsHistogram(), resumes: microsHistogram(), replayed: 0 }

  start (spec: ChurnSpec): void {
    for (let index = 0; index < spec.clients; index++) {
      const client = new ChurnClient(spec, index % spec.urls.length, this.counts, this.#latency)
      this.#clients.push(client)
      client.connect()
    }
  }

  stop (): ChurnCounts {
    for (const client of this.#clients) client.stop()
    this.#clients.length = 0
    return this.counts
  }

  /** The latency since the last call (or the start), and a new window. */
  takeLatency (): ChurnLatency {
    const { histogram, resumes, replayed } = this.#latency
    const window: ChurnLatency = {
      p50Ms: millis(histogram, histogram.percentile(50)),
      p99Ms: millis(histogram, histogram.percentile(99)),
      maxMs: millis(histogram, histogram.max),
      samples: histogram.count,
      replayed,
      resumeP50Ms: millis(resumes, resumes.percentile(50)),
      resumeP99Ms: millis(resumes, resumes.percentile(99)),
      resumeMaxMs: millis(resumes, resumes.max)
    }
    histogram.reset()
    resumes.reset()
    this.#latency.replayed = 0
    return window
  }
}

interface LatencyWindow {
  readonly histogram: RecordableHistogram
  readonly resumes: RecordableHistogram
  replayed: number
}

function microsHistogram (): RecordableHistogram {
  return createHistogram({ lowest: 1, highest: LATENCY_HIGHEST_US, figures: 3 })
}

function recordMs (histogram: RecordableHistogram, ms: number): void {
  // Two processes' clocks from one system clock: a latency can round to zero, never below.
  histogram.record(Math.min(LATENCY_HIGHEST_US, Math.max(1, Math.round(ms * 1000))))
}

function millis (histogram: RecordableHistogram, micros: number): number | null {
  return histogram.count === 0 ? null : micros / 1000
}

class ChurnClient {
  readonly #spec: ChurnSpec
  #urlIndex: number
  readonly #counts: ChurnCounts
  readonly #latency: LatencyWindow
  readonly #scanner = new SseScanner()
  #stream: OpenedStream | undefined
  #lastId: string | undefined
  #lastSeq: number | undefined
  #cutTimer: NodeJS.Timeout | undefined
  #cutInNextChunk = false
  #stopped = false
  /** When the current connection's GET was sent, and when the chunk being read arrived (wall clock, ms). */
  #requestedAt = 0
  #receivedAt = 0
  #lastEventAt = 0

  constructor (spec: ChurnSpec, urlIndex: number, counts: ChurnCounts, latency: LatencyWindow) {
    this.#spec = spec
    this.#urlIndex = urlIndex
    this.#counts = counts
    this.#latency = latency
  }

  connect (): void {
    if (this.#stopped) return
    const resuming = this.#lastId !== undefined
    if (resuming) this.#urlIndex = (this.#urlIndex + 1) % this.#spec.urls.length
    this.#requestedAt = wallClockMs()
    if (this.#lastEventAt === 0) this.#lastEventAt = this.#requestedAt
    const sentAt = { [SENT_AT_HEADER]: this.#requestedAt.toFixed(3) }
    openEventStream(this.#spec.urls[this.#urlIndex] as string, resuming ? { 'last-event-id': this.#lastId as string, ...sentAt } : sentAt).then((stream) => {
      if (this.#stopped) {
        stream.request.destroy()
        return
      }
      if (resuming) {
        recordMs(this.#latency.resumes, wallClockMs() - this.#requestedAt)
        this.#checkResume(String(stream.response.headers['x-resume-status'] ?? 'none'))
      }
      this.#attach(stream)
    }, () => {
      this.#counts.openFailures++
      setTimeout(() => this.connect(), 100)
    })
  }

  stop (): void {
    this.#stopped = true
    clearTimeout(this.#cutTimer)
    this.#stream?.request.destroy()
  }

  #checkResume (status: string): void {
    this.#counts.resumes++
    if (status === 'recovered') return
    // Recovered, with notices of gaps the proxy saw upstream in what it replays: the sequence check still holds.
    if (status.startsWith('recovered;')) {
      this.#counts.resumesWithUpstreamGaps++
      return
    }
    const reason = /reason=([\w-]+)/.exec(status)?.[1] ?? status
    this.#counts.unrecoverable[reason] = (this.#counts.unrecoverable[reason] ?? 0) + 1
    // Evicted: the same stream goes on, and its gap counts as lost. Otherwise a fresh stream starts over.
    if (reason !== 'evicted') this.#lastSeq = undefined
  }

  #attach (stream: OpenedStream): void {
    this.#stream = stream
    this.#scanner.reset()
    stream.response.on('data', (chunk: Buffer) => this.#read(chunk))
    stream.response.once('error', () => {})
    stream.response.once('close', () => this.#closed(stream))
    this.#cutTimer = setTimeout(() => this.#cutSoon(), this.#connectedMs())
  }

  #connectedMs (): number {
    const connected = this.#spec.connected
    return 'meanMs' in connected
      ? -Math.log(1 - Math.random()) * connected.meanMs
      : connected.minMs + Math.random() * (connected.maxMs - connected.minMs)
  }

  #read (chunk: Buffer): void {
    this.#receivedAt = wallClockMs()
    if (!this.#cutInNextChunk) {
      this.#scanner.feed(chunk, this.#onEvent)
      return
    }
    const cutAt = SseScanner.midEventOffset(chunk)
    if (cutAt !== undefined) this.#counts.midEventCuts++
    this.#scanner.feed(cutAt === undefined ? chunk : chunk.subarray(0, cutAt), this.#onEvent)
    this.#cut()
  }

  readonly #onEvent = (chunk: Buffer, start: number, end: number): void => {
    const seq = eventSeq(chunk, start, end)
    // The in-band resume-status notice carries no seq.
    if (Number.isNaN(seq)) return
    this.#counts.events++
    if (this.#receivedAt - this.#lastEventAt >= STALL_MS) this.#counts.stalls++
    this.#lastEventAt = this.#receivedAt
    this.#recordLatency(eventTimestamp(chunk, start, end))
    const last = this.#lastSeq
    if (last !== undefined && seq <= last) {
      this.#counts.duplicated++
      return
    }
    if (last !== undefined && seq > last + 1) this.#counts.lost += seq - last - 1
    this.#lastSeq = seq
    this.#lastId = eventId(chunk, start, end)
  }

  #recordLatency (writtenAt: number): void {
    if (Number.isNaN(writtenAt)) return
    if (writtenAt < this.#requestedAt) {
      this.#latency.replayed++
      return
    }
    recordMs(this.#latency.histogram, this.#receivedAt - writtenAt)
  }

  #cutSoon (): void {
    if (Math.random() < this.#spec.midEventShare) {
      this.#cutInNextChunk = true
    } else {
      this.#cut()
    }
  }

  #cut (): void {
    this.#cutInNextChunk = false
    clearTimeout(this.#cutTimer)
    const stream = this.#stream
    this.#stream = undefined
    stream?.request.destroy()
    this.#counts.cuts++
    setTimeout(() => this.connect(), Math.random() * this.#spec.maxAwayMs)
  }

  /** The proxy ended the stream: come back as after a cut. */
  #closed (stream: OpenedStream): void {
    if (this.#stream !== stream || this.#stopped) return
    this.#stream = undefined
    this.#cutInNextChunk = false
    clearTimeout(this.#cutTimer)
    this.#counts.serverCloses++
    setTimeout(() => this.connect(), 10)
  }
}
