import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http'
import { createParser, type EventSourceParser } from 'eventsource-parser'
import type { Prng } from './prng.js'
import { SequenceCheck } from './sequence-check.js'
import { midEventOffsets } from './mid-event-cut.js'

/** A replica as a client sees it: where it listens, and whether the soak has killed it. */
export interface ReplicaTarget {
  /** r1, r2, …: each process started gets a new one, also in the place of a killed one. */
  readonly name: string
  readonly origin: string
  readonly dead: boolean
}

export interface ReplicaClientEnvironment {
  /** A random live replica (a load balancer's choice), preferably not `avoid`; undefined when none is. */
  pick: (prng: Prng, avoid?: ReplicaTarget) => ReplicaTarget | undefined
  /** Milliseconds since the soak started, for the traces. */
  clock: () => number
}

/** One connection of a client, kept for the report of an anomaly. */
interface ConnectionTrace {
  readonly replica: string
  readonly at: number
  /** The seq part of the Last-Event-ID sent (the proxy id's last field), or '-' for a fresh stream. */
  readonly sentSeq: string
  status: number | string
  resume: string
  first: number | undefined
  last: number | undefined
  events: number
  end: string
  /** Ms since the soak started: when the response came (a stopped replica answers only once woken). */
  answeredAt: number | undefined
  /** Ms since the soak started: when the connection ended, or failed. */
  endedAt: number | undefined
}

// Connections kept per client, for the report (a client that loops on an ended stream makes many).
const TRACES_KEPT = 5000
const NOTES_KEPT = 6
// A resume answered 200 that ends cleanly with no event, this many times in a row: the stream has ended for good.
const EMPTY_ENDS_FOR_GOOD = 3

/**
 * One client of the replica soak's sse route, over node:http with a socket of its
 * own. It opens its stream on a random replica and checks the CountingUpstream's
 * numbers as they come (1, 2, 3 … by payload: each client has a stream of its own).
 * Whenever its connection drops (cut by the soak, its replica killed, the proxy
 * sending it away), it resumes with the Last-Event-ID of its last full event on a
 * random live replica, as a client behind a load balancer without affinity would.
 * Connection errors and 503 are retried shortly, on another replica.
 */
export class ReplicaChaosClient {
  readonly check: SequenceCheck
  readonly #path: string
  readonly #prng: Prng
  readonly #env: ReplicaClientEnvironment
  #lastEventId: string | undefined
  #target: ReplicaTarget | undefined
  #request: ClientRequest | undefined
  #response: IncomingMessage | undefined
  #parser: EventSourceParser | undefined
  #trace: ConnectionTrace | undefined
  readonly #traces: ConnectionTrace[] = []
  /** Set when the next chunk should be read only in part, then the socket destroyed. */
  #midEventCut: NodeJS.Timeout | undefined
  #cutByUs = false
  #cutReason: 'cut' | 'stall' = 'cut'
  /** How long to wait before resuming after the soak's cut. */
  #resumeAfterCutMs = 0
  #stopped = false
  #timer: NodeJS.Timeout | undefined
  /** When the client last made progress (an event, or a connection answered); for the stall watchdog. */
  #progressAt = 0
  /** The number of the last event received when the soak's faults stopped. */
  lastAtStop = 0

  // Figures, summed by the soak.
  connects = 0
  cuts = 0
  midEventCuts = 0
  /** Connections with Last-Event-ID answered 200. */
  resumes = 0
  /** Connections that ended without a cut of ours, while the replica was alive (the proxy sent the client away). */
  drops = 0
  /** Connections that ended because their replica was killed. */
  dropsByKill = 0
  /** Of those drops, the ones that ended cleanly (the response complete): a `retry:` hint and an end. */
  cleanEnds = 0
  connectErrors = 0
  unavailable = 0
  /** Resumes answered 200 that ended cleanly without a single event, in a row (see `streamEnded`). */
  emptyEndsInARow = 0
  /** Ms since the start: when the first of the current run of empty ends began. */
  #emptyEndsSince: number | undefined
  /** Any other status: never expected. */
  badStatus = 0
  /** Resumes answered `X-Resume-Status: unrecoverable…`, or with the in-band resume-status event. */
  unrecoverable = 0
  /** Resumes answered 200 without `X-Resume-Status: recovered` and without `unrecoverable`. */
  unanswered = 0
  /** Times the watchdog found the client stuck: a connection open, or being opened, with no event for too long. */
  stalls = 0
  /** Events that were not numbers of the CountingUpstream. */
  foreign = 0
  readonly notes: string[] = []

  constructor (readonly name: string, path: string, prng: Prng, env: ReplicaClientEnvironment) {
    this.check = new SequenceCheck(name)
    this.#path = path
    this.#prng = prng
    this.#env = env
  }

  get connected (): boolean {
    return this.#response !== undefined && !this.#response.destroyed
  }

  /** A cut makes sense once there is an event to resume from, on an open stream, with no cut pending. */
  get cuttable (): boolean {
    return this.#lastEventId !== undefined && this.connected && this.#midEventCut === undefined && !this.#cutByUs && !this.#stopped
  }

  /** The last Last-Event-ID, whose first field is the proxy's stream id. */
  get lastEventId (): string | undefined {
    return this.#lastEventId
  }

  /**
   * The stream has ended for good: every resume is answered 200 recovered, replays
   * nothing and ends. An sse stream of an endless upstream must not end while its
   * client is around. Undefined while it goes on; else since when (ms since the start).
   */
  get streamEnded (): number | undefined {
    return this.emptyEndsInARow >= EMPTY_ENDS_FOR_GOOD ? this.#emptyEndsSince : undefined
  }

  /** The replica of the current connection, or of the one being opened. */
  get replica (): ReplicaTarget | undefined {
    return this.#target
  }

  /** Opens the stream, fresh (no Last-Event-ID), on a random replica; resolves once it is answered 200. */
  async open (timeoutMs = 15000): Promise<void> {
    this.#progressAt = Date.now()
    this.#connect()
    const deadline = Date.now() + timeoutMs
    while (!this.connected) {
      if (Date.now() > deadline) throw new Error(`${this.name} could not open its stream: ${this.notes.join('; ')}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  /**
   * Cuts the connection, and resumes after `resumeAfterMs`. `midEvent`: on the next
   * chunk, read part of it, ending inside an event, and destroy the socket there.
   */
  cut (midEvent: boolean, resumeAfterMs: number): void {
    if (!this.cuttable) return
    this.#resumeAfterCutMs = resumeAfterMs
    if (!midEvent) {
      this.#destroy('cut')
      return
    }
    this.#midEventCut = setTimeout(() => this.#destroy('cut'), 2000)
  }

  /**
   * Called by the soak's watchdog: a client that has made no progress for `stallMs`
   * (no event on an open connection, or no answer to one being opened) is stuck.
   * It is noted, and the client resumes elsewhere, so that the soak goes on.
   */
  watch (now: number, stallMs: number): void {
    if (this.#stopped || this.#timer !== undefined) return
    if (now - this.#progressAt < stallMs) return
    this.stalls++
    this.#note(`stuck for ${now - this.#progressAt} ms (no event) on ${this.#describe(this.#trace)}`)
    this.#progressAt = now
    if (this.#response !== undefined) {
      this.#destroy('stall')
    } else {
      this.#request?.destroy(new Error('stalled'))
    }
  }

  /** Closes for good. */
  close (): void {
    this.#stopped = true
    clearTimeout(this.#timer)
    clearTimeout(this.#midEventCut)
    this.#midEventCut = undefined
    this.#request?.destroy()
    this.#response?.destroy()
  }

  /** The last `count` connections of this client, most recent last, for the report. */
  traces (count = 12): string[] {
    return this.#traces.slice(-count).map((trace) => this.#describe(trace))
  }

  /** Where the client was at `at` (ms since the start): streaming from a replica, waiting for one to answer, or between connections. */
  whereAt (at: number): { streaming: string } | { waiting: string } | undefined {
    const trace = this.#traces.find((candidate) => candidate.at <= at && at <= (candidate.endedAt ?? Infinity))
    if (trace === undefined) return undefined
    return trace.status === 200 && (trace.answeredAt ?? Infinity) <= at ? { streaming: trace.replica } : { waiting: trace.replica }
  }

  /** The connections of this client open, or failing, within `marginMs` of `at` (ms since the start). */
  tracesAround (at: number, marginMs: number): string[] {
    return this.#traces
      .filter((trace) => trace.at <= at + marginMs && (trace.endedAt ?? Infinity) >= at - marginMs)
      .map((trace) => this.#describe(trace))
  }

  #connect (avoid?: ReplicaTarget): void {
    if (this.#stopped) return
    const target = this.#env.pick(this.#prng, avoid)
    if (target === undefined) {
      this.#schedule(100)
      return
    }
    this.#target = target
    this.connects++
    const sentId = this.#lastEventId
    const trace: ConnectionTrace = {
      replica: target.name,
      at: this.#env.clock(),
      sentSeq: sentId === undefined ? '-' : sentId.slice(sentId.lastIndexOf('.') + 1),
      status: 'pending',
      resume: '',
      first: undefined,
      last: undefined,
      events: 0,
      end: '',
      answeredAt: undefined,
      endedAt: undefined
    }
    this.#trace = trace
    this.#traces.push(trace)
    if (this.#traces.length > TRACES_KEPT) this.#traces.shift()
    const headers: Record<string, string> = { accept: 'text/event-stream' }
    if (sentId !== undefined) headers['last-event-id'] = sentId
    let answered = false
    const request = httpRequest(`${target.origin}${this.#path}`, { agent: false, headers }, (response) => {
      answered = true
      this.#onResponse(request, response, target, trace, sentId)
    })
    this.#request = request
    request.on('error', (error: Error) => {
      if (answered || this.#request !== request) return
      this.#request = undefined
      trace.status = error.message
      trace.end = 'connect error'
      trace.endedAt = this.#env.clock()
      if (this.#stopped) return
      this.connectErrors++
      // The replica died (or was just killed): another one, shortly.
      this.#schedule(this.#prng.between(50, 250), true)
    })
    request.end()
  }

  #onResponse (request: ClientRequest, response: IncomingMessage, target: ReplicaTarget, trace: ConnectionTrace, sentId: string | undefined): void {
    if (this.#stopped || this.#request !== request) {
      response.destroy()
      return
    }
    this.#progressAt = Date.now()
    trace.answeredAt = this.#env.clock()
    trace.status = response.statusCode ?? 0
    const resumeStatus = response.headers['x-resume-status']
    trace.resume = typeof resumeStatus === 'string' ? resumeStatus : ''
    if (response.statusCode !== 200) {
      this.#request = undefined
      if (response.statusCode === 503) {
        this.unavailable++
      } else {
        this.badStatus++
        this.#note(`status ${response.statusCode ?? 0} on ${this.#describe(trace)}`)
      }
      response.resume()
      response.once('error', () => {})
      trace.end = 'refused'
      trace.endedAt = this.#env.clock()
      this.#schedule(this.#prng.between(100, 300), true)
      return
    }
    if (sentId !== undefined) {
      this.resumes++
      if (trace.resume.startsWith('unrecoverable')) {
        this.unrecoverable++
        this.#note(`resume answered X-Resume-Status: ${trace.resume} on ${this.#describe(trace)}`)
      } else if (trace.resume !== 'recovered') {
        this.unanswered++
        this.#note(`resume answered without X-Resume-Status: recovered (${trace.resume}) on ${this.#describe(trace)}`)
      }
    }
    this.#response = response
    this.#parser = createParser({ onEvent: (event) => this.#onEvent(event.event, event.id, event.data, trace) })
    response.setEncoding('utf8')
    response.on('data', (chunk: string) => this.#read(response, chunk))
    response.once('error', () => {})
    response.once('close', () => {
      if (this.#response !== response) return
      this.#response = undefined
      this.#request = undefined
      clearTimeout(this.#midEventCut)
      this.#midEventCut = undefined
      trace.endedAt = this.#env.clock()
      if (this.#stopped) return
      const byUs = this.#cutByUs
      this.#cutByUs = false
      if (byUs) {
        this.#schedule(this.#cutReason === 'cut' ? this.#resumeAfterCutMs : this.#prng.between(50, 250), this.#cutReason !== 'cut')
        return
      }
      if (target.dead) {
        this.dropsByKill++
        trace.end = 'replica killed'
      } else {
        this.drops++
        if (response.complete) this.cleanEnds++
        trace.end = response.complete ? 'ended by the proxy' : 'dropped'
      }
      if (sentId !== undefined && response.complete && trace.events === 0) {
        if (this.emptyEndsInARow === 0) this.#emptyEndsSince = trace.at
        this.emptyEndsInARow++
      }
      // Whatever the reason, the client comes back with its last id, on a random live replica.
      this.#schedule(this.#prng.between(50, 300))
    })
  }

  #onEvent (type: string | undefined, id: string | undefined, data: string, trace: ConnectionTrace): void {
    this.#progressAt = Date.now()
    if (type === 'resume-status') {
      // The in-band form of X-Resume-Status, sent only when a resume cannot be served.
      this.unrecoverable++
      this.#note(`in-band resume-status ${data} on ${this.#describe(trace)}`)
      return
    }
    if (id !== undefined) this.#lastEventId = id
    const n = Number(data)
    if (type !== undefined || !Number.isInteger(n) || n < 1) {
      this.foreign++
      this.#note(`an event that is not the upstream's: ${type ?? 'message'} ${JSON.stringify(data).slice(0, 60)}`)
      return
    }
    const expected = this.check.last + 1
    const before = this.check.lost + this.check.duplicated + this.check.outOfOrder
    this.check.accept(n)
    trace.first ??= n
    trace.last = n
    trace.events++
    this.emptyEndsInARow = 0
    if (this.check.lost + this.check.duplicated + this.check.outOfOrder !== before) {
      this.#note(`${n < expected ? 'duplicate or late' : 'gap'}: got ${n}, expected ${expected}, on ${this.#describe(trace)}; connections before it: ${this.traces().slice(-5, -1).join(' | ')}`)
    }
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
    this.#parser?.feed(chunk.slice(0, this.#prng.pick(candidates)))
    this.midEventCuts++
    this.#destroy('cut')
  }

  #destroy (reason: 'cut' | 'stall'): void {
    const response = this.#response
    clearTimeout(this.#midEventCut)
    this.#midEventCut = undefined
    if (response === undefined || response.destroyed) return
    this.#cutByUs = true
    this.#cutReason = reason
    if (reason === 'cut') this.cuts++
    if (this.#trace !== undefined) this.#trace.end = reason === 'cut' ? 'cut by the soak' : 'stalled'
    response.destroy()
  }

  /** Connects again after `delayMs`; `anotherReplica`: preferably not the replica of the last attempt. */
  #schedule (delayMs: number, anotherReplica = false): void {
    if (this.#stopped) return
    clearTimeout(this.#timer)
    const avoid = anotherReplica ? this.#target : undefined
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      // The watchdog counts from the new attempt.
      this.#progressAt = Date.now()
      this.#connect(avoid)
    }, Math.max(0, delayMs))
  }

  #describe (trace: ConnectionTrace | undefined): string {
    if (trace === undefined) return 'no connection'
    const got = trace.first === undefined ? 'no event' : `${trace.first}..${trace.last ?? ''} (${trace.events} events)`
    const answered = trace.answeredAt === undefined || trace.answeredAt - trace.at < 100 ? '' : ` (answered at ${trace.answeredAt})`
    return `[${trace.replica} at ${trace.at}${answered}..${trace.endedAt ?? ''} ms, Last-Event-ID seq ${trace.sentSeq}, ${trace.status}${trace.resume === '' ? '' : ` ${trace.resume}`}, ${got}${trace.end === '' ? '' : `, ${trace.end}`}]`
  }

  #note (text: string): void {
    if (this.notes.length < NOTES_KEPT) this.notes.push(`${this.#env.clock()} ms: ${text}`)
  }
}
