import type { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { ClientSseStream } from '../client/client-sse-stream.js'
import type { ReconnectPolicy } from '../config/schema.js'
import type { OpenStream, ProxyContext } from '../proxy-context.js'
import type { HeaderMap } from '../upstream/headers.js'
import { ReconnectLoop, type Connected } from '../upstream/reconnect-loop.js'
import { postForEventStream, type ConnectResult } from '../upstream/upstream-connector.js'
import { reportMalformedLine, reportUpstreamEnd, type UpstreamReportContext } from '../upstream/upstream-events-report.js'
import { UpstreamStream, type UpstreamEndReason } from '../upstream/upstream-stream.js'
import { acknowledgedFilterIn, isListenResponse, listenGapNotifications, narrowFilter, relistenRequest, type ListenFilter, type ListenRequest } from '../wire/mcp-listen.js'
import type { SseEvent } from '../wire/sse-event.js'
import { serializeComment, serializeEvent, serializeRetry } from '../wire/sse-serializer.js'
import type { RelayOptions } from './sse-relay.js'

export interface ListenRelayOptions extends RelayOptions {
  listen: ListenRequest
  /** The route's reconnect policy. */
  policy: ReconnectPolicy
  /** The client's headers, as the upstream is to get them again (MCP-Protocol-Version, Mcp-Method, Mcp-Name...). */
  headers: HeaderMap
}

/**
 * Relays an MCP 2026-07-28 `subscriptions/listen` stream, which lives as long as
 * its client wants it. An upstream stream that ends without the listen response
 * (a restart, a cut, a stall) is listened to again, under an id the proxy mints,
 * while the client's stream stays open: the client never sees the second
 * acknowledgement, every message carries its own id, and what the gap may have
 * lost is told as the notifications the server would have sent (basic/patterns/subscriptions:
 * notifications sent while no stream is open are lost).
 */
export function relayListenStream (context: ProxyContext, request: FastifyRequest, reply: FastifyReply, body: Readable, options: ListenRelayOptions): void {
  const relay = new ListenRelay(context, request, reply, options)
  relay.start(body)
}

class ListenRelay {
  readonly #context: ProxyContext
  readonly #options: ListenRelayOptions
  readonly #report: UpstreamReportContext
  readonly #client: ClientSseStream
  readonly #openStream: OpenStream
  #upstream: UpstreamStream | undefined
  /** The id the upstream stream answers to when the proxy listened again; undefined while it is the client's own. */
  #upstreamIdJson: string | undefined
  /** What the client was told the server honours, then what the upstream honours now. */
  #toldFilter: ListenFilter | undefined
  #awaitingAck = true
  #completed = false
  #stopped = false
  /** Its outage lasts until a re-listen is acknowledged, not merely answered. */
  readonly #reconnect: ReconnectLoop
  #retryHintMs: number | undefined
  #pendingConnect: AbortController | undefined
  /** The id the pending re-listen asks under. */
  #relistenIdJson = ''

  constructor (context: ProxyContext, request: FastifyRequest, reply: FastifyReply, options: ListenRelayOptions) {
    this.#context = context
    this.#options = options
    const { metrics, options: config } = context
    const { labels } = options
    this.#report = {
      metrics,
      labels,
      log: request.log,
      upstreamUrl: options.upstreamUrl,
      maxEventBytes: config.limits.maxEventBytes,
      idleTimeoutMs: config.health.idleTimeoutSeconds * 1000
    }
    this.#client = new ClientSseStream(reply, reply.getHeaders(), {
      heartbeatMs: config.health.heartbeatSeconds * 1000,
      maxBufferedBytes: config.limits.clientBufferBytes,
      onSlowConsumer: () => metrics.slowConsumerDisconnects.inc(labels)
    })
    this.#reconnect = new ReconnectLoop(options.policy, {
      context: this.#report,
      attempting: 'listening to the upstream again',
      succeeded: 'the upstream acknowledged the listen again',
      gaveUp: 'gave up listening to the upstream again; closing the client stream'
    }, {
      connect: async () => await this.#relisten(),
      wanted: () => !this.#stopped,
      onConnected: (result) => this.#relistenAnswered(result),
      onGiveUp: () => this.#giveUp()
    })
    this.#openStream = { close: () => this.#stop() }
    context.openStreams.add(this.#openStream)
    metrics.streamsActive.inc(labels)
    this.#client.onDrain(() => this.#upstream?.resume())
    this.#client.onClose(() => {
      this.#stop()
      context.openStreams.delete(this.#openStream)
      metrics.streamsActive.dec(labels)
    })
  }

  start (body: Readable): void {
    const upstream = new UpstreamStream(body, {
      onEvent: (event) => this.#onEvent(event),
      onComment: (comment) => this.#client.write(serializeComment(comment)),
      onRetry: (milliseconds) => {
        this.#retryHintMs = milliseconds
        this.#client.write(serializeRetry(milliseconds))
      },
      onMalformedLine: (reason) => reportMalformedLine(this.#report, reason),
      onChunkParsed: () => {
        if (this.#completed) upstream.abort()
        else if (!this.#client.flush()) upstream.pause()
      },
      onEnd: (reason, error) => this.#onUpstreamEnd(reason, error)
    }, this.#report)
    this.#upstream = upstream
  }

  #onEvent (event: SseEvent): void {
    if (this.#awaitingAck) {
      const acknowledged = acknowledgedFilterIn(event.data)
      if (acknowledged !== undefined) {
        this.#awaitingAck = false
        const relistened = this.#toldFilter !== undefined
        this.#toldFilter = narrowFilter(acknowledged, this.#toldFilter ?? this.#options.listen.filter)
        if (relistened) {
          this.#relistened()
          return
        }
      }
    }
    const { idJson } = this.#options.listen
    const upstreamIdJson = this.#upstreamIdJson
    // The minted id is unguessable: wherever its text appears, it is the listen request's id.
    const data = upstreamIdJson === undefined ? event.data : event.data.replaceAll(upstreamIdJson, idJson)
    if (isListenResponse(data, idJson)) this.#completed = true
    this.#client.write(serializeEvent(data === event.data ? event : { ...event, data }))
    this.#context.metrics.eventsForwarded.inc(this.#options.labels)
  }

  /** The upstream acknowledged a re-listen: the outage is over, and what it may have lost is told. */
  #relistened (): void {
    const { listen } = this.#options
    this.#reconnect.succeeded()
    for (const data of listenGapNotifications(this.#toldFilter as ListenFilter, listen.idJson)) {
      this.#client.write(serializeEvent({ data }))
    }
  }

  #onUpstreamEnd (reason: UpstreamEndReason, error: Error | undefined): void {
    this.#upstream = undefined
    reportUpstreamEnd(this.#report, reason, error)
    if (this.#completed || this.#stopped) {
      this.#client.end()
      return
    }
    this.#reconnect.run(reason, reason === 'ended', this.#retryHintMs).catch(/* c8 ignore next 2 -- postForEventStream answers every
      failure as a result; this only keeps an unforeseen rejection from going unhandled */ () => this.#giveUp())
  }

  async #relisten (): Promise<ConnectResult> {
    const relisten = relistenRequest(this.#options.listen)
    const pending = new AbortController()
    this.#pendingConnect = pending
    this.#relistenIdJson = relisten.idJson
    const result = await postForEventStream(this.#context.dispatcher, this.#options.upstreamUrl, this.#options.headers, relisten.body, pending.signal)
    this.#pendingConnect = undefined
    return result
  }

  #relistenAnswered (result: Connected): void {
    this.#upstreamIdJson = this.#relistenIdJson
    this.#awaitingAck = true
    this.start(result.body)
  }

  /** A stream that ends without the listen response is the spec's unclean end: the client may listen again itself. */
  #giveUp (): void {
    this.#stopped = true
    this.#client.end()
  }

  /** The client left, or the proxy closes: no more upstream, nor any attempt to get it back. */
  #stop (): void {
    if (this.#stopped) return
    this.#stopped = true
    this.#reconnect.stop()
    this.#pendingConnect?.abort()
    if (this.#upstream === undefined) this.#client.end()
    else this.#upstream.abort()
  }
}
