import type { FastifyInstance } from 'fastify'
import type { SseRouteConfig } from '../config/schema.js'
import type { ProxyContext } from '../proxy-context.js'
import { recordMiss, resumeStream, startResumableStream, type StreamRoute } from '../relay/resumable-relay.js'
import { forwardToUpstream } from '../upstream/forward.js'
import { sendTooManySessions } from './json-rpc-errors.js'
import { resolveLastEventId } from './last-event-id.js'
import { withClientQuery } from './upstream-url.js'

/**
 * A plain SSE endpoint. Each GET opens its own upstream stream, with the
 * client's query and headers; a GET with a Last-Event-ID of one of those
 * streams resumes it. The stream id in the event id is the capability to resume.
 */
export function registerSseRoute (proxy: FastifyInstance, context: ProxyContext, route: SseRouteConfig): void {
  const streamRoute: StreamRoute = { context, labels: { route_kind: route.kind, route: route.path } }
  const { sessions } = context

  proxy.get(route.path, { config: { disableMetrics: true } }, async (request, reply) => {
    const target = resolveLastEventId(request, sessions, (stream) => stream.session.routePath === route.path)
    if (target.kind === 'stream') {
      await resumeStream(streamRoute, reply, target.stream, target.afterSeq)
      return reply
    }
    const miss = target.kind === 'miss' ? target.miss : undefined
    if (miss !== undefined) recordMiss(streamRoute, request.log, miss)
    if (!sessions.hasCapacity()) return sendTooManySessions(reply)
    const url = withClientQuery(route.upstream, request.url)
    forwardToUpstream(request, reply, {
      url,
      labels: streamRoute.labels,
      metrics: context.metrics,
      // The client's Last-Event-ID is a proxy id: it means nothing upstream.
      rewriteRequestHeaders: ({ 'last-event-id': _proxyId, ...headers }) => headers,
      onEventStream: (body) => {
        const session = sessions.create({ routePath: route.path, endsWithItsStreams: true })
        startResumableStream(streamRoute, request, reply, session, body, { upstreamUrl: url, miss })
      }
    })
    return reply
  })
}
