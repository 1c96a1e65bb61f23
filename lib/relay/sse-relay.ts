import type { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { ClientSseStream } from '../client/client-sse-stream.js'
import type { RouteLabels } from '../metrics.js'
import type { OpenStream, ProxyContext } from '../proxy-context.js'
import { reportMalformedLine, reportUpstreamEnd, type UpstreamReportContext } from '../upstream/upstream-events-report.js'
import { UpstreamStream } from '../upstream/upstream-stream.js'
import { serializeComment, serializeEvent, serializeRetry } from '../wire/sse-serializer.js'

export interface RelayOptions {
  labels: RouteLabels
  upstreamUrl: string
}

/**
 * Relays one upstream event stream to one client, with no history: the streams
 * of MCP 2026-07-28 requests, which belong to their request. Parse, serialize,
 * write, with the upstream paused while the client's socket is full. Either
 * side ending ends both: closing the client's stream cancels the request.
 */
export function relayEventStream (
  context: ProxyContext,
  request: FastifyRequest,
  reply: FastifyReply,
  body: Readable,
  options: RelayOptions
): void {
  const { metrics, options: config } = context
  const { labels } = options
  const report: UpstreamReportContext = {
    metrics,
    labels,
    log: request.log,
    upstreamUrl: options.upstreamUrl,
    maxEventBytes: config.limits.maxEventBytes,
    idleTimeoutMs: config.health.idleTimeoutSeconds * 1000
  }
  const client = new ClientSseStream(reply, reply.getHeaders(), {
    heartbeatMs: config.health.heartbeatSeconds * 1000,
    maxBufferedBytes: config.limits.clientBufferBytes,
    onSlowConsumer: () => metrics.slowConsumerDisconnects.inc(labels)
  })
  const upstream = new UpstreamStream(body, {
    onEvent (event) {
      client.write(serializeEvent(event))
      metrics.eventsForwarded.inc(labels)
    },
    onComment (comment) {
      client.write(serializeComment(comment))
    },
    onRetry (milliseconds) {
      client.write(serializeRetry(milliseconds))
    },
    onMalformedLine: (reason) => reportMalformedLine(report, reason),
    onChunkParsed () {
      if (!client.flush()) upstream.pause()
    },
    onEnd (reason, error) {
      reportUpstreamEnd(report, reason, error)
      client.end()
    }
  }, report)

  const openStream: OpenStream = { close: () => upstream.abort() }
  context.openStreams.add(openStream)
  metrics.streamsActive.inc(labels)
  client.onDrain(() => upstream.resume())
  client.onClose(() => {
    upstream.abort()
    context.openStreams.delete(openStream)
    metrics.streamsActive.dec(labels)
  })
}
