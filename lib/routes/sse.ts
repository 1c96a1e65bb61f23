import type { FastifyInstance } from 'fastify'
import type { SseRouteConfig } from '../config/schema.js'
import type { ProxyContext } from '../proxy-context.js'
import { relayEventStream } from '../relay/sse-relay.js'
import { forwardToUpstream } from '../upstream/forward.js'
import { withClientQuery } from './upstream-url.js'

/** A plain SSE endpoint: each GET opens its own upstream stream, with the client's query and headers. */
export function registerSseRoute (proxy: FastifyInstance, context: ProxyContext, route: SseRouteConfig): void {
  const labels = { route_kind: route.kind, route: route.path }
  proxy.get(route.path, { config: { disableMetrics: true } }, (request, reply) => {
    const url = withClientQuery(route.upstream, request.url)
    forwardToUpstream(request, reply, {
      url,
      labels,
      metrics: context.metrics,
      onEventStream: (body) => relayEventStream(context, request, reply, body, { labels, upstreamUrl: url })
    })
  })
}
