import type { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { ClientSseStream } from '../client/client-sse-stream.js'
import type { RouteLabels } from '../metrics.js'
import type { OpenStream, ProxyContext } from '../proxy-context.js'
import { UpstreamStream } from '../upstream/upstream-stream.js'
import { serializeComment, serializeRetry } from '../wire/sse-serializer.js'
import { typeLineEnd } from '../wire/sse-event-bytes.js'
import { reportMalformedLine, reportSlowPath, reportUpstreamEnd, type UpstreamReportContext } from '../upstream/upstream-events-report.js'

const BLANK_LINE = Buffer.from('\n')

export interface RelayOptions {
  labels: RouteLabels
  upstreamUrl: string
}

/**
 * Relays one upstream event stream to one client, with no history: the streams
 * of MCP 2026-07-28 requests, which belong to their request. Each event goes out as
 * the upstream's bytes under the upstream's own id, never decoded, with the upstream
 * paused while the client's socket is full. Either
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
    onEvent (lines, id) {
      // The lines may be a view of the chunk, which the next chunk does not touch: written by the flush below.
      if (id === undefined) {
        client.write(lines)
      } else {
        // The scanner gives only ids with no line break or NUL in them: written as they came, after the type.
        const typeEnd = typeLineEnd(lines)
        client.write(lines.subarray(0, typeEnd))
        client.write(Buffer.from(`id: ${id}\n`))
        client.write(lines.subarray(typeEnd))
      }
      client.write(BLANK_LINE)
      metrics.eventsForwarded.inc(labels)
    },
    onComment (comment) {
      client.write(Buffer.from(serializeComment(comment)))
    },
    onRetry (milliseconds) {
      client.write(Buffer.from(serializeRetry(milliseconds)))
    },
    onMalformedLine: (reason) => reportMalformedLine(report, reason),
    onSlowPath: (reason) => reportSlowPath(report, reason),
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
