import { createParser } from 'eventsource-parser'
import { fetch as undiciFetch, type Agent } from 'undici'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js'
import { SequenceCheck } from './sequence-check.js'

/**
 * One SSE response the MCP SDK client is reading, passed through a stream of
 * ours so that the soak can cut it: the connection is aborted (its socket
 * destroyed), after a partial read that ends inside an event when `midEvent`.
 *
 * A stream is only cut once an event with an id went through it, some time ago:
 * the SDK client (1.32) resumes with the id of the last event *that stream*
 * delivered, and a stream it resumed that breaks before any id reconnects without
 * Last-Event-ID (typescript-sdk issue #2499), which no proxy can make whole. The
 * soak tests the proxy, not that.
 */
export class CuttableStream {
  readonly readable: ReadableStream<Uint8Array>
  readonly #abort: AbortController
  readonly #random: () => number
  #controller: ReadableStreamDefaultController<Uint8Array> | undefined
  /** When an event with an id last passed through. */
  #lastIdAt: number | undefined
  #midEventCut: NodeJS.Timeout | undefined
  #cut = false
  /**
   * Set once part of a chunk went up for a mid-event cut: nothing more may follow in the
   * moment before the connection goes, or the next chunk would be spliced onto the cut
   * event and turn it into another, valid one (an event lost by the harness, not the proxy).
   */
  #parted = false
  #done = false
  readonly #onDone: () => void
  readonly #onMidEventCut: () => void

  constructor (body: ReadableStream<Uint8Array>, abort: AbortController, random: () => number, on: { done: () => void, midEventCut: () => void }) {
    this.#abort = abort
    this.#random = random
    this.#onDone = on.done
    this.#onMidEventCut = on.midEventCut
    const parser = createParser({ onEvent: (event) => { if (event.id !== undefined && event.id !== '') this.#lastIdAt = Date.now() } })
    const decoder = new TextDecoder()
    const reader = body.getReader()
    const finish = (): void => this.#finish()
    this.readable = new ReadableStream<Uint8Array>({
      start: (controller) => { this.#controller = controller },
      pull: async (controller) => {
        let chunk: Awaited<ReturnType<typeof reader.read>>
        try {
          chunk = await reader.read()
        } catch (error) {
          if (!this.#cut) controller.error(error)
          finish()
          return
        }
        if (this.#cut || this.#parted) return
        if (chunk.done) {
          controller.close()
          finish()
          return
        }
        if (this.#midEventCut !== undefined) {
          this.#cutInside(controller, chunk.value)
          return
        }
        parser.feed(decoder.decode(chunk.value, { stream: true }))
        controller.enqueue(chunk.value)
      },
      cancel: async (reason) => {
        finish()
        await reader.cancel(reason).catch(() => {})
      }
    }, { highWaterMark: 0 })
  }

  get cuttable (): boolean {
    return !this.#done && !this.#cut && !this.#parted && this.#midEventCut === undefined && this.#lastIdAt !== undefined && Date.now() - this.#lastIdAt >= 50
  }

  cut (midEvent: boolean): void {
    if (!midEvent) {
      this.#cutNow()
      return
    }
    // On a quiet stream, cut between events after a while.
    this.#midEventCut = setTimeout(() => this.#cutNow(), 2000)
  }

  /** Passes the chunk on up to a point inside an event, then cuts. */
  #cutInside (controller: ReadableStreamDefaultController<Uint8Array>, chunk: Uint8Array): void {
    clearTimeout(this.#midEventCut)
    this.#midEventCut = undefined
    this.#parted = true
    const candidates: number[] = []
    for (let offset = 1; offset < chunk.length; offset++) {
      if (chunk[offset - 1] !== 0x0a) candidates.push(offset)
    }
    if (candidates.length > 0) {
      controller.enqueue(chunk.subarray(0, candidates[Math.floor(this.#random() * candidates.length)]))
      this.#onMidEventCut()
    } else {
      controller.enqueue(chunk)
    }
    // A moment for the client to read the part, then the connection goes.
    setTimeout(() => this.#cutNow(), 5)
  }

  #cutNow (): void {
    clearTimeout(this.#midEventCut)
    this.#midEventCut = undefined
    if (this.#cut || this.#done) return
    this.#cut = true
    this.#controller?.error(new Error('chaos: connection cut'))
    this.#abort.abort()
    this.#finish()
  }

  #finish (): void {
    if (this.#done) return
    this.#done = true
    clearTimeout(this.#midEventCut)
    this.#onDone()
  }
}

export interface ToolCallFigures {
  completed: number
  /** Calls that failed; an upstream killed mid-call loses the call (see docs/sse-resilience.md). */
  failed: number
  /** Failed calls that no upstream kill can explain. */
  failedWithoutKill: number
  progressChecked: number
  progressLost: number
  progressDuplicated: number
}

/**
 * Lets the soak keep tool calls out of the moments an upstream is killed (see
 * docs/reliability.md: a call in flight when its upstream dies is lost by design,
 * and what the SDK client does next is typescript-sdk issue #2499).
 */
export class CallGate {
  #held = false
  #inFlight = 0
  #wake: Array<() => void> = []

  async enter (): Promise<void> {
    while (this.#held) await new Promise<void>((resolve) => this.#wake.push(resolve))
    this.#inFlight++
  }

  leave (): void {
    this.#inFlight--
    this.#notify()
  }

  /** Holds new calls, and resolves once none is in flight. */
  async hold (): Promise<void> {
    this.#held = true
    while (this.#inFlight > 0) await new Promise<void>((resolve) => this.#wake.push(resolve))
  }

  release (): void {
    this.#held = false
    this.#notify()
  }

  #notify (): void {
    const wake = this.#wake
    this.#wake = []
    for (const resolve of wake) resolve()
  }
}

export interface McpClientOptions {
  url: string
  agent: Agent
  random: () => number
  gate: CallGate
  /** Whether an upstream kill happened between two moments: it explains a failed call. */
  killedBetween: (from: number, to: number) => boolean
}

/**
 * One MCP SDK client of the soak's streamable-http route. It subscribes to its
 * topic (`resources/subscribe`), checks the numbered notifications of its
 * standalone GET stream as they arrive, and calls the `count` tool in a loop,
 * checking each call's progress notifications.
 */
export class ChaosMcpClient {
  readonly check: SequenceCheck
  readonly client: Client
  readonly transport: StreamableHTTPClientTransport
  readonly #options: McpClientOptions
  readonly #streams = new Set<CuttableStream>()
  #calling: Promise<void> | undefined
  #stopped = false
  readonly #reconnection = { initialReconnectionDelay: 100, maxReconnectionDelay: 2000, reconnectionDelayGrowFactor: 1.5, maxRetries: 100 }
  #gets = 0
  /**
   * GETs the SDK sent without Last-Event-ID after its first (the standalone stream's
   * opening): reconnects that lost their place (typescript-sdk issue #2499).
   */
  getsWithoutLastEventId = 0
  cuts = 0
  midEventCuts = 0
  foreign = 0
  errors = 0
  readonly problems: string[] = []
  readonly calls: ToolCallFigures = { completed: 0, failed: 0, failedWithoutKill: 0, progressChecked: 0, progressLost: 0, progressDuplicated: 0 }

  constructor (readonly name: string, options: McpClientOptions) {
    this.check = new SequenceCheck(name)
    this.#options = options
    this.client = new Client({ name: `chaos-${name}`, version: '1.0.0' })
    this.transport = new StreamableHTTPClientTransport(new URL(options.url), {
      fetch: this.#fetch,
      // Quick, and patient: the soak wants every stream back.
      reconnectionOptions: this.#reconnection
    })
    this.client.onerror = () => { this.errors++ }
    this.client.fallbackNotificationHandler = async (notification) => {
      if (notification.method !== 'notifications/tick') return
      const { topic, n } = notification.params as { topic: string, n: number }
      if (topic !== this.name) {
        this.foreign++
        this.#problem(`a tick of ${topic}`)
        return
      }
      this.check.accept(n)
    }
  }

  async start (): Promise<void> {
    await this.client.connect(this.transport)
    await this.client.subscribeResource({ uri: `tick://${this.name}` })
  }

  get cuttable (): boolean {
    return [...this.#streams].some((stream) => stream.cuttable)
  }

  /** Cuts one of the client's open event streams (its GET stream or a tool call's POST stream). */
  cut (midEvent: boolean): void {
    const candidates = [...this.#streams].filter((stream) => stream.cuttable)
    if (candidates.length === 0) return
    const stream = candidates[Math.floor(this.#options.random() * candidates.length)] as CuttableStream
    this.cuts++
    stream.cut(midEvent)
  }

  /** Calls `count` again and again until stopped. */
  startCalling (steps: number, intervalMs: number, pauseMs: () => number): void {
    this.#calling = (async () => {
      while (!this.#stopped) {
        await this.#callOnce(steps, intervalMs)
        await new Promise((resolve) => setTimeout(resolve, pauseMs()))
      }
    })()
  }

  async stopCalling (): Promise<void> {
    this.#stopped = true
    await this.#calling
  }

  /** Ends the session (DELETE), then the client. */
  async end (): Promise<void> {
    this.#stopped = true
    await this.transport.terminateSession().catch((error: Error) => this.#problem(`DELETE failed: ${error.message}`))
    // The SDK's close() clears only the last reconnection timer it set, and a reconnect that fails
    // after close() schedules the next one (up to maxRetries): with none left, they stop at once.
    this.#reconnection.maxRetries = 0
    await this.client.close()
  }

  async #callOnce (steps: number, intervalMs: number): Promise<void> {
    const progress = new SequenceCheck(`${this.name} call`)
    await this.#options.gate.enter()
    const startedAt = Date.now()
    try {
      await this.client.callTool({ name: 'count', arguments: { steps, intervalMs } }, undefined, {
        onprogress: (update) => progress.accept(update.progress),
        resetTimeoutOnProgress: true,
        timeout: 15000
      })
      this.calls.completed++
      this.calls.progressLost += progress.missingTail(steps)
    } catch (error) {
      this.calls.failed++
      if (!this.#options.killedBetween(startedAt, Date.now())) {
        this.calls.failedWithoutKill++
        this.#problem(`a call failed with no upstream kill: ${(error as Error).message}`)
      }
    } finally {
      this.#options.gate.leave()
    }
    this.calls.progressChecked += progress.received
    this.calls.progressLost += progress.lost
    this.calls.progressDuplicated += progress.duplicated
  }

  /** The SDK's fetch: undici's, on the soak's own agent, with every event stream made cuttable. */
  readonly #fetch: FetchLike = async (url, init) => {
    if (init?.method === 'GET' && this.#gets++ > 0 && !new Headers(init.headers).has('last-event-id')) this.getsWithoutLastEventId++
    const abort = new AbortController()
    const signal = init?.signal == null ? abort.signal : AbortSignal.any([init.signal, abort.signal])
    // undici's fetch and the global one (which the SDK types) are the same API in two sets of types.
    const response = await undiciFetch(url, { ...init, signal, dispatcher: this.#options.agent } as unknown as Parameters<typeof undiciFetch>[1]) as unknown as Response
    const contentType = response.headers.get('content-type') ?? ''
    if (response.body === null || !contentType.startsWith('text/event-stream')) return response
    const stream: CuttableStream = new CuttableStream(response.body, abort, this.#options.random, {
      done: () => this.#streams.delete(stream),
      midEventCut: () => { this.midEventCuts++ }
    })
    this.#streams.add(stream)
    return new Response(stream.readable, { status: response.status, statusText: response.statusText, headers: response.headers })
  }

  #problem (text: string): void {
    if (this.problems.length < 5) this.problems.push(text)
  }
}
