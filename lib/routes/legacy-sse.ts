import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { reconnectPolicyFor, type LegacySseRouteConfig } from '../config/schema.js'
import type { ProxyContext } from '../proxy-context.js'
import type { StreamRoute } from '../relay/resumable-relay.js'
import type { ProxySession } from '../session/session-registry.js'
import { forwardToUpstream } from '../upstream/forward.js'
import type { SseEvent } from '../wire/sse-event.js'
import { sendSessionIdRequired, sendSessionNotFound } from './json-rpc-errors.js'
import { serveStreamGet } from './stream-get.js'

const ENDPOINT_EVENT = 'endpoint'

/**
 * The MCP HTTP+SSE transport of 2024-11-05. The GET stream's first event,
 * `endpoint`, names where to POST; the proxy rewrites it to its own `messagesPath`
 * with a session id it mints, and forwards those POSTs to the upstream's endpoint.
 * The session lives as long as its stream, resumptions included.
 */
export function registerLegacySseRoute (proxy: FastifyInstance, context: ProxyContext, route: LegacySseRouteConfig): void {
  const streamRoute: StreamRoute = { context, labels: { route_kind: route.kind, route: route.path }, reconnect: reconnectPolicyFor(context.options, route) }
  const { sessions } = context
  const messagesUrl = `${proxy.prefix}${route.messagesPath}`

  proxy.get(route.path, { config: { disableMetrics: true } }, async (request, reply) => await serveStreamGet(
    streamRoute,
    route,
    request,
    reply,
    // No reconnect: a legacy upstream's session dies with its stream, and a new one means a new endpoint.
    { rewriterFor: (session, upstreamUrl) => (event) => rewriteEndpoint(event, session, upstreamUrl, `${messagesUrl}?sessionId=${session.id}`) }
  ))

  proxy.post(route.messagesPath, (request: FastifyRequest<{ Querystring: { sessionId?: unknown } }>, reply: FastifyReply) => {
    const sessionId = request.query.sessionId
    if (typeof sessionId !== 'string' || sessionId === '') return sendSessionIdRequired(reply)
    const session = sessions.find(sessionId, route.path)
    if (session?.upstreamMessagesUrl === undefined) return sendSessionNotFound(reply)
    request.mcpSseSession = session
    forwardToUpstream(request, reply, {
      url: session.upstreamMessagesUrl,
      body: request.body as Buffer | undefined,
      labels: streamRoute.labels,
      metrics: context.metrics
    })
    return reply
  })
}

/** The upstream's first `endpoint` event becomes the proxy's, with the proxy session id. */
function rewriteEndpoint (event: SseEvent, session: ProxySession, upstreamUrl: string, proxyEndpoint: string): SseEvent {
  if (event.event !== ENDPOINT_EVENT || session.upstreamMessagesUrl !== undefined) return event
  session.upstreamMessagesUrl = new URL(event.data.trim(), upstreamUrl).href
  return { ...event, data: proxyEndpoint }
}
