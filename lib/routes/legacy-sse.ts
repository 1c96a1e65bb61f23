import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { LegacySseRouteConfig } from '../config/schema.js'
import type { RouteLabels } from '../metrics.js'
import type { ProxyContext } from '../proxy-context.js'
import { relayEventStream } from '../relay/sse-relay.js'
import type { ProxySession } from '../session/session-registry.js'
import { forwardToUpstream } from '../upstream/forward.js'
import type { SseEvent } from '../wire/sse-event.js'
import { sendSessionIdRequired, sendSessionNotFound, sendTooManySessions } from './json-rpc-errors.js'
import { withClientQuery } from './upstream-url.js'

const ENDPOINT_EVENT = 'endpoint'

/**
 * The MCP HTTP+SSE transport of 2024-11-05. The GET stream's first event,
 * `endpoint`, names where to POST; the proxy rewrites it to its own `messagesPath`
 * with a session id it mints, and forwards those POSTs to the upstream's endpoint.
 */
export function registerLegacySseRoute (proxy: FastifyInstance, context: ProxyContext, route: LegacySseRouteConfig): void {
  const labels: RouteLabels = { route_kind: route.kind, route: route.path }
  const { sessions } = context
  const messagesUrl = `${proxy.prefix}${route.messagesPath}`

  proxy.get(route.path, { config: { disableMetrics: true } }, (request, reply) => {
    if (!sessions.hasCapacity()) {
      sendTooManySessions(reply)
      return
    }
    const url = withClientQuery(route.upstream, request.url)
    forwardToUpstream(request, reply, {
      url,
      labels,
      metrics: context.metrics,
      onEventStream: (body) => {
        let session: ProxySession | undefined
        relayEventStream(context, request, reply, body, {
          labels,
          upstreamUrl: url,
          rewriteEvent: (event) => {
            if (session !== undefined || event.event !== ENDPOINT_EVENT) return event
            session = sessions.create({ routePath: route.path, upstreamMessagesUrl: new URL(event.data.trim(), url).href })
            session.openStreams += 1
            request.mcpSseSession = session
            return endpointEvent(event, `${messagesUrl}?sessionId=${session.id}`)
          },
          onClose: () => {
            // The legacy transport's session lives exactly as long as its stream.
            if (session !== undefined) sessions.delete(session.id)
          }
        })
      }
    })
  })

  proxy.post(route.messagesPath, (request: FastifyRequest<{ Querystring: { sessionId?: unknown } }>, reply: FastifyReply) => {
    const sessionId = request.query.sessionId
    if (typeof sessionId !== 'string' || sessionId === '') {
      sendSessionIdRequired(reply)
      return
    }
    const session = sessions.find(sessionId, route.path)
    if (session?.upstreamMessagesUrl === undefined) {
      sendSessionNotFound(reply)
      return
    }
    request.mcpSseSession = session
    forwardToUpstream(request, reply, {
      url: session.upstreamMessagesUrl,
      body: request.body as Buffer | undefined,
      labels,
      metrics: context.metrics
    })
  })
}

function endpointEvent (event: SseEvent, data: string): SseEvent {
  return { ...event, data }
}
