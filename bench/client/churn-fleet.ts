import { eventId, eventSeq } from '../wire/event-fields.js'
import { SseScanner } from '../wire/sse-scanner.js'
import { openEventStream, type OpenedStream } from './sse-request.js'

export interface ChurnSpec {
  readonly url: string
  readonly clients: number
  /** Mean time a client stays connected before it cuts its connection (exponentially spread). */
  readonly meanConnectedMs: number
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
  /** Resumes not answered `recovered`, by reason. */
  unrecoverable: Record<string, number>
  /** Streams the proxy ended on its own. */
  serverCloses: number
  openFailures: number
}

/**
 * The load under churn: clients that read a numbered stream, cut their connection
 * at random (sometimes in the middle of an event), and come back with the last
 * id they saw. Each checks its own sequence: no gap, no repeat.
 */
export class ChurnFleet {
  readonly #clients: ChurnClient[] = []
  readonly counts: ChurnCounts = { events: 0, lost: 0, duplicated: 0, cuts: 0, midEventCuts: 0, resumes: 0, unrecoverable: {}, serverCloses: 0, openFailures: 0 }

  start (spec: ChurnSpec): void {
    for (let index = 0; index < spec.clients; index++) {
      const client = new ChurnClient(spec, this.counts)
      this.#clients.push(client)
      client.connect()
    }
  }

  stop (): ChurnCounts {
    for (const client of this.#clients) client.stop()
    this.#clients.length = 0
    return this.counts
  }
}

class ChurnClient {
  readonly #spec: ChurnSpec
  readonly #counts: ChurnCounts
  readonly #scanner = new SseScanner()
  #stream: OpenedStream | undefined
  #lastId: string | undefined
  #lastSeq: number | undefined
  #cutTimer: NodeJS.Timeout | undefined
  #cutInNextChunk = false
  #stopped = false

  constructor (spec: ChurnSpec, counts: ChurnCounts) {
    this.#spec = spec
    this.#counts = counts
  }

  connect (): void {
    if (this.#stopped) return
    const resuming = this.#lastId !== undefined
    openEventStream(this.#spec.url, resuming ? { 'last-event-id': this.#lastId as string } : {}).then((stream) => {
      if (this.#stopped) {
        stream.request.destroy()
        return
      }
      if (resuming) this.#checkResume(String(stream.response.headers['x-resume-status'] ?? 'none'))
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
    this.#cutTimer = setTimeout(() => this.#cutSoon(), -Math.log(1 - Math.random()) * this.#spec.meanConnectedMs)
  }

  #read (chunk: Buffer): void {
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
    const last = this.#lastSeq
    if (last !== undefined && seq <= last) {
      this.#counts.duplicated++
      return
    }
    if (last !== undefined && seq > last + 1) this.#counts.lost += seq - last - 1
    this.#lastSeq = seq
    this.#lastId = eventId(chunk, start, end)
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
