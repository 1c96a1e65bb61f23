import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { LegacySseRouteConfig } from '../config/schema.js'
import type { ProxyContext } from '../proxy-context.js'
import { recordMiss, resumeStream, startResumableStream, type StreamRoute } from '../relay/resumable-relay.js'
import type { ProxySession } from '../session/session-registry.js'
import { forwardToUpstream } from '../upstream/forward.js'
import type { SseEvent } from '../wire/sse-event.js'
import { sendSessionIdRequired, sendSessionNotFound, sendTooManySessions } from './json-rpc-errors.js'
import { resolveLastEventId } from './last-event-id.js'
import { withClientQuery } from './upstream-url.js'

const ENDPOINT_EVENT = 'endpoint'

/**
 * The MCP HTTP+SSE transport of 2024-11-05. The GET stream's first event,
 * `endpoint`, names where to POST; the proxy rewrites it to its own `messagesPath`
 * with a session id it mints, and forwards those POSTs to the upstream's endpoint.
 * The session lives as long as its stream, resumptions included.
 */
export function registerLegacySseRoute (proxy: FastifyInstance, context: ProxyContext, route: LegacySseRouteConfig): void {
  const streamRoute: StreamRoute = { context, labels: { route_kind: route.kind, route: route.path } }
  const { sessions } = context
  const messagesUrl = `${proxy.prefix}${route.messagesPath}`

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
      rewriteRequestHeaders: ({ 'last-event-id': _proxyId, ...headers }) => headers,
      onEventStream: (body) => {
        const session = sessions.create({ routePath: route.path, endsWithItsStreams: true })
        startResumableStream(streamRoute, request, reply, session, body, {
          upstreamUrl: url,
          miss,
          rewriteEvent: (event) => rewriteEndpoint(event, session, url, `${messagesUrl}?sessionId=${session.id}`)
        })
      }
    })
    return reply
  })

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
