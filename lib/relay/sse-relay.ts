import type { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { ClientSseStream } from '../client/client-sse-stream.js'
import type { RouteLabels } from '../metrics.js'
import type { OpenStream, ProxyContext } from '../proxy-context.js'
import { UpstreamStream, type UpstreamEndReason } from '../upstream/upstream-stream.js'
import type { SseEvent } from '../wire/sse-event.js'
import { serializeComment, serializeEvent, serializeRetry } from '../wire/sse-serializer.js'

export interface RelayOptions {
  labels: RouteLabels
  upstreamUrl: string
  /** Lets a route change an event on its way to the client (legacy-sse's `endpoint`). */
  rewriteEvent?: (event: SseEvent) => SseEvent
  /** Runs once when the relay is over, from either side. */
  onClose?: () => void
}

/**
 * Relays one upstream event stream to one client: parse, serialize, write, with
 * the upstream paused while the client's socket is full. Either side ending ends both.
 */
export function relayEventStream (
  context: ProxyContext,
  request: FastifyRequest,
  reply: FastifyReply,
  body: Readable,
  options: RelayOptions
): void {
  const { metrics } = context
  const { labels } = options
  const client = new ClientSseStream(reply, reply.getHeaders(), {
    heartbeatMs: context.options.health.heartbeatSeconds * 1000,
    maxBufferedBytes: context.options.limits.clientBufferBytes,
    onSlowConsumer: () => metrics.slowConsumerDisconnects.inc(labels)
  })
  const rewriteEvent = options.rewriteEvent ?? ((event: SseEvent) => event)
  const upstream = new UpstreamStream(body, {
    onEvent (event) {
      client.write(serializeEvent(rewriteEvent(event)))
      metrics.eventsForwarded.inc(labels)
    },
    onComment (comment) {
      client.write(serializeComment(comment))
    },
    onRetry (milliseconds) {
      client.write(serializeRetry(milliseconds))
    },
    onMalformedLine (reason) {
      metrics.upstreamMalformed.inc({ ...labels, reason })
      request.log.debug({ upstream: options.upstreamUrl, reason }, 'ignored a malformed upstream SSE line')
    },
    onChunkParsed () {
      if (!client.flush()) upstream.pause()
    },
    onEnd (reason: UpstreamEndReason, error?: Error) {
      if (reason === 'oversized-event') {
        metrics.upstreamMalformed.inc({ ...labels, reason })
        request.log.warn({ upstream: options.upstreamUrl, maxEventBytes: context.options.limits.maxEventBytes }, 'upstream event exceeds limits.maxEventBytes; closing the stream')
      } else if (reason === 'failed') {
        request.log.info({ upstream: options.upstreamUrl, err: error }, 'upstream stream failed')
      }
      client.end()
    }
  }, { maxEventBytes: context.options.limits.maxEventBytes, idleTimeoutMs: context.options.health.idleTimeoutSeconds * 1000 })

  const openStream: OpenStream = { close: () => upstream.abort() }
  context.openStreams.add(openStream)
  metrics.streamsActive.inc(labels)
  client.onDrain(() => upstream.resume())
  client.onClose(() => {
    upstream.abort()
    context.openStreams.delete(openStream)
    metrics.streamsActive.dec(labels)
    options.onClose?.()
  })
}
