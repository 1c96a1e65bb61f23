import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http'
import { createParser, type EventSourceParser } from 'eventsource-parser'
import { SequenceCheck } from './sequence-check.js'
import { midEventOffsets } from './mid-event-cut.js'

/**
 * One client of the soak's sse route, over node:http with a socket of its own.
 * It checks what it reads against the upstream's numbering as it goes, and it can
 * be cut: its socket destroyed, after a partial read that leaves half an event
 * unread when `midEvent`. It then resumes, as an EventSource would, with the
 * Last-Event-ID of the last full event it got.
 */
export class ChaosSseClient {
  readonly check: SequenceCheck
  readonly #url: string
  #lastEventId: string | undefined
  #request: ClientRequest | undefined
  #response: IncomingMessage | undefined
  #parser: EventSourceParser | undefined
  /** Set when the next chunk should be read only in part, then the socket destroyed. */
  #midEventCut: NodeJS.Timeout | undefined
  /** Set when we destroyed the current connection ourselves. */
  #cutByUs = false
  #paused = false
  #stopped = false
  #reconnectTimer: NodeJS.Timeout | undefined
  readonly #resumeDelayMs: () => number
  readonly #random: () => number
  cuts = 0
  midEventCuts = 0
  resumes = 0
  /** Resumes the proxy did not answer `X-Resume-Status: recovered`. */
  unrecovered = 0
  /** Streams that ended or broke without a cut of ours (a slow-consumer cut, say). */
  unexpectedEnds = 0
  /** Events of another topic: another client's data. */
  foreign = 0
  readonly problems: string[] = []

  /** `random` (the soak's seeded PRNG) picks where a mid-event cut falls, and how long the client waits to resume. */
  constructor (readonly name: string, url: string, random: () => number, resumeDelayMs: [number, number]) {
    this.check = new SequenceCheck(name)
    this.#url = url
    this.#random = random
    this.#resumeDelayMs = () => resumeDelayMs[0] + (resumeDelayMs[1] - resumeDelayMs[0]) * random()
  }

  get connected (): boolean {
    return this.#response !== undefined && !this.#response.destroyed
  }

  /** A cut makes sense once there is an event to resume from, on an open stream, with no cut pending. */
  get cuttable (): boolean {
    return this.#lastEventId !== undefined && this.connected && this.#midEventCut === undefined && !this.#cutByUs && !this.#stopped
  }

  /** The local port of the current connection, to find it on the proxy's side. */
  get localPort (): number | undefined {
    return this.#response?.socket?.localPort
  }

  async open (): Promise<void> {
    await this.#connect()
  }

  /**
   * Cuts the connection. `midEvent`: on the next chunk, read part of it, ending
   * inside an event, and destroy the socket there; on a quiet stream, cut anyway
   * after a while.
   */
  cut (midEvent: boolean): void {
    if (!this.cuttable) return
    if (!midEvent) {
      this.#destroy()
      return
    }
    this.#midEventCut = setTimeout(() => this.#destroy(), 2000)
  }

  /** Stops reading (the socket fills up), as a slow client does. */
  pause (): void {
    this.#paused = true
    this.#response?.pause()
  }

  resume (): void {
    this.#paused = false
    this.#response?.resume()
  }

  /** Closes for good. */
  close (): void {
    this.#stopped = true
    clearTimeout(this.#reconnectTimer)
    clearTimeout(this.#midEventCut)
    this.#midEventCut = undefined
    this.#request?.destroy()
    this.#response?.destroy()
  }

  async #connect (): Promise<void> {
    const resuming = this.#lastEventId !== undefined
    const headers: Record<string, string> = { accept: 'text/event-stream' }
    if (this.#lastEventId !== undefined) headers['last-event-id'] = this.#lastEventId
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const request = httpRequest(this.#url, { agent: false, headers }, resolve)
      this.#request = request
      request.once('error', reject)
      request.end()
    })
    if (this.#stopped) {
      response.destroy()
      return
    }
    if (resuming) {
      this.resumes++
      if (response.headers['x-resume-status'] !== 'recovered') {
        this.unrecovered++
        this.#problem(`resume answered ${response.statusCode} ${String(response.headers['x-resume-status'])}`)
      }
    }
    if (response.statusCode !== 200) {
      this.#problem(`status ${response.statusCode ?? 0}`)
      response.resume()
      this.#scheduleReconnect()
      return
    }
    this.#response = response
    // A fresh parser: whatever half event the last connection left is gone with it.
    this.#parser = createParser({
      onEvent: (event) => {
        if (event.id !== undefined) this.#lastEventId = event.id
        if (event.event !== undefined) return
        const payload = JSON.parse(event.data) as { s: string, n: number }
        if (payload.s !== this.name) {
          this.foreign++
          this.#problem(`an event of ${payload.s}`)
          return
        }
        this.check.accept(payload.n)
      }
    })
    response.setEncoding('utf8')
    if (this.#paused) response.pause()
    response.on('data', (chunk: string) => this.#read(response, chunk))
    response.once('error', () => {})
    response.once('close', () => {
      if (this.#response !== response) return
      this.#response = undefined
      if (this.#stopped) return
      if (!this.#cutByUs) this.unexpectedEnds++
      this.#cutByUs = false
      clearTimeout(this.#midEventCut)
      this.#midEventCut = undefined
      this.#scheduleReconnect()
    })
  }

  #read (response: IncomingMessage, chunk: string): void {
    if (response !== this.#response || response.destroyed) return
    if (this.#midEventCut === undefined) {
      this.#parser?.feed(chunk)
      return
    }
    const candidates = midEventOffsets(chunk)
    if (candidates.length === 0) {
      this.#parser?.feed(chunk)
      return
    }
    const offset = candidates[Math.floor(this.#random() * candidates.length)] as number
    this.#parser?.feed(chunk.slice(0, offset))
    this.midEventCuts++
    this.#destroy()
  }

  #destroy (): void {
    const response = this.#response
    clearTimeout(this.#midEventCut)
    this.#midEventCut = undefined
    if (response === undefined || response.destroyed) return
    this.#cutByUs = true
    this.cuts++
    response.destroy()
  }

  #scheduleReconnect (): void {
    if (this.#stopped) return
    this.#reconnectTimer = setTimeout(() => {
      this.#connect().catch((error: Error) => {
        this.#problem(`reconnect failed: ${error.message}`)
        this.#scheduleReconnect()
      })
    }, this.#resumeDelayMs())
  }

  #problem (text: string): void {
    if (this.problems.length < 5) this.problems.push(text)
  }
}
