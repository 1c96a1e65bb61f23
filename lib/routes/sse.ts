import type { FastifyInstance } from 'fastify'
import type { SseRouteConfig } from '../config/schema.js'
import type { ProxyContext } from '../proxy-context.js'
import { reconnectHeaders, reviveStream, streamRouteOf, upstreamReconnect } from '../relay/resumable-relay.js'
import { serveStreamGet } from './stream-get.js'

/**
 * A plain SSE endpoint. Each GET opens its own upstream stream, with the
 * client's query and headers; a GET with a Last-Event-ID of one of those
 * streams resumes it.
 */
export function registerSseRoute (proxy: FastifyInstance, context: ProxyContext, route: SseRouteConfig): void {
  const streamRoute = streamRouteOf(context, route)
  proxy.get(route.path, { config: { disableMetrics: true } }, async (request, reply) => await serveStreamGet(streamRoute, route, request, reply, {
    reconnectFor: (request, upstreamUrl) => upstreamReconnect(streamRoute, { upstreamUrl, headers: reconnectHeaders(request) }, { needsUpstreamIds: false })
  }))
  context.directory.onTakeover(route.path, (session, descriptor, origin, ownership) =>
    reviveStream(streamRoute, session, descriptor, origin, ownership, upstreamReconnect(streamRoute, descriptor, { needsUpstreamIds: false })))
}
