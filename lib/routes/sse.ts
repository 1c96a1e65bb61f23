import type { FastifyInstance } from 'fastify'
import type { SseRouteConfig } from '../config/schema.js'
import type { ProxyContext } from '../proxy-context.js'
import { reconnectFromDescriptor, reconnectWith, reviveStream, streamRouteOf } from '../relay/resumable-relay.js'
import { serveStreamGet } from './stream-get.js'

/**
 * A plain SSE endpoint. Each GET opens its own upstream stream, with the
 * client's query and headers; a GET with a Last-Event-ID of one of those
 * streams resumes it.
 */
export function registerSseRoute (proxy: FastifyInstance, context: ProxyContext, route: SseRouteConfig): void {
  const streamRoute = streamRouteOf(context, route)
  proxy.get(route.path, { config: { disableMetrics: true } }, async (request, reply) => await serveStreamGet(streamRoute, route, request, reply, {
    reconnectFor: (request, url) => reconnectWith(streamRoute, request, url, { needsUpstreamIds: false })
  }))
  context.coordinator?.onTakeover(route.path, (session, descriptor, origin, ownership) =>
    reviveStream(streamRoute, session, descriptor, origin, ownership, reconnectFromDescriptor(streamRoute, descriptor, { needsUpstreamIds: false })))
}
