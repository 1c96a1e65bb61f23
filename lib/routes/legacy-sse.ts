import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { LegacySseRouteConfig } from '../config/schema.js'
import type { ProxyContext } from '../proxy-context.js'
import { reconnectHeaders, streamRouteOf, upstreamReconnect } from '../relay/resumable-relay.js'
import { LegacyEndpoint } from '../session/legacy-endpoint.js'
import { recordSessionState } from '../session/mcp-session-state.js'
import { countMcpRequests } from '../metrics/mcp-requests.js'
import { jsonRpcBodyOf } from './json-rpc-body.js'
import type { GapReporter, UpstreamReconnect } from '../session/stream-environment.js'
import { mcpGapNotifications } from '../session/mcp-gap-notifications.js'
import { serverCapabilitiesIn } from '../wire/mcp-initialize.js'
import type { ProxySession } from '../session/session-registry.js'
import { forwardToUpstream } from '../upstream/forward.js'
import type { HeaderMap } from '../upstream/headers.js'
import { isProxyResponse, reestablishLegacySession } from '../upstream/mcp-session-reestablish.js'
import type { SseEvent } from '../wire/sse-event.js'
import { sendSessionIdRequired, sendSessionNotFound, sendUpstreamReconnecting } from './json-rpc-errors.js'
import { resendOnceOn404 } from './resend-once.js'
import { serveStreamGet } from './stream-get.js'

const ENDPOINT_EVENT = 'endpoint'

/**
 * The MCP HTTP+SSE transport of 2024-11-05. The GET stream's first event,
 * `endpoint`, names where to POST; the proxy rewrites it to its own `messagesPath`
 * with a session id it mints, and forwards those POSTs to the upstream's endpoint.
 * The session lives as long as its stream, resumptions included.
 *
 * A dropped upstream stream is reconnected with Last-Event-ID. An upstream that
 * honours it resumes the same session; one that answers with a new endpoint has
 * opened a new session, which the proxy initializes again with the client's
 * recorded handshake (sessions.reestablish). Either way the client keeps its endpoint.
 */
export function registerLegacySseRoute (proxy: FastifyInstance, context: ProxyContext, route: LegacySseRouteConfig): void {
  const streamRoute = streamRouteOf(context, route)
  const { sessions, options } = context
  const messagesUrl = `${proxy.prefix}${route.messagesPath}`

  proxy.get(route.path, { config: { disableMetrics: true } }, async (request, reply) => await serveStreamGet(streamRoute, route, request, reply, {
    rewriterFor: (session, upstreamUrl) => {
      const endpoint = new LegacyEndpoint()
      session.legacyEndpoint = endpoint
      return (event, gaps) => rewriteEvent(event, {
        request,
        session,
        endpoint,
        gaps,
        upstreamUrl,
        proxyEndpoint: `${messagesUrl}?sessionId=${session.id}`
      })
    },
    gapNotificationsFor: (session) => () => mcpGapNotifications(session),
    reconnectFor: (request, upstreamUrl) => legacyReconnect(request, upstreamUrl)
  }))

  function legacyReconnect (request: FastifyRequest, upstreamUrl: string): UpstreamReconnect {
    const reconnect = upstreamReconnect(streamRoute, { upstreamUrl, headers: reconnectHeaders(request) }, { needsUpstreamIds: false })
    // The request's session is set once the stream has started, well before any drop.
    return { ...reconnect, onDrop: () => request.mcpSseSession?.legacyEndpoint?.hold() }
  }

  interface EndpointContext {
    request: FastifyRequest
    session: ProxySession
    endpoint: LegacyEndpoint
    gaps: GapReporter
    upstreamUrl: string
    proxyEndpoint: string
  }

  /**
   * The first `endpoint` event becomes the proxy's, with the proxy session id; one
   * after a reconnect only moves where POSTs go. Answers to the proxy's own
   * requests (a replayed handshake) are kept from the client. An initialize answer,
   * the client's or the proxy's, tells which list changes the server announces.
   */
  function rewriteEvent (event: SseEvent, at: EndpointContext): SseEvent | undefined {
    if (event.event !== ENDPOINT_EVENT) {
      const ownAnswer = isProxyResponse(event.data)
      if (ownAnswer || at.session.serverCapabilities === undefined) {
        at.session.serverCapabilities = serverCapabilitiesIn(event.data) ?? at.session.serverCapabilities
      }
      return ownAnswer ? undefined : event
    }
    const url = new URL(event.data.trim(), at.upstreamUrl)
    // As the MCP SDK's client checks: messages, and the client's credentials with them, go to the upstream's own origin only.
    if (url.origin !== new URL(at.upstreamUrl).origin) {
      context.metrics.upstreamMalformed.inc({ ...streamRoute.labels, reason: 'foreign-endpoint' })
      at.request.log.warn({ upstream: at.upstreamUrl }, 'the upstream named an endpoint on another origin; not followed')
      return undefined
    }
    return moveEndpoint(at, url.href, event)
  }

  function moveEndpoint (at: EndpointContext, url: string, event: SseEvent): SseEvent | undefined {
    const { endpoint } = at
    const previous = endpoint.url
    if (previous === undefined) {
      endpoint.moveTo(url, Promise.resolve())
      return { ...event, data: at.proxyEndpoint }
    }
    if (url === previous) {
      endpoint.moveTo(url, Promise.resolve())
      return undefined
    }
    // A new endpoint is a new upstream session: whatever the old one owed the client is lost.
    at.gaps.noteGap('session-reestablished')
    endpoint.moveTo(url, reopenSession(at, url))
    return undefined
  }

  /** A reconnect landed on a new upstream session: initialize it as the client once did. */
  async function reopenSession (at: EndpointContext, url: string): Promise<void> {
    const log: FastifyBaseLogger = at.request.log
    if (!options.sessions.reestablish) return
    const reopened = await reestablishLegacySession(context.dispatcher, url, at.session, at.request.headers as HeaderMap)
      .catch((error: unknown) => {
        log.warn({ upstream: at.upstreamUrl, err: error }, 'could not initialize the new upstream MCP session')
        return false
      })
    if (!reopened) return
    context.metrics.sessionsReestablished.inc(streamRoute.labels)
    log.info({ upstream: at.upstreamUrl }, 'the reconnected upstream stream opened a new MCP session; initialized it again')
  }

  proxy.post(route.messagesPath, async (request: FastifyRequest<{ Querystring: { sessionId?: unknown } }>, reply: FastifyReply) => {
    const sessionId = request.query.sessionId
    if (typeof sessionId !== 'string' || sessionId === '') return sendSessionIdRequired(reply)
    const session = sessions.find(sessionId, route.path)
    const endpoint = session?.legacyEndpoint
    if (session === undefined || endpoint?.url === undefined) return sendSessionNotFound(reply)
    request.mcpSseSession = session
    const { messages } = jsonRpcBodyOf(request)
    countMcpRequests(context.metrics.mcpRequests, streamRoute.labels, messages)
    recordSessionState(session, messages, options.sessions.maxSubscriptionsPerSession)
    await forwardMessage(request, reply, endpoint)
    return reply
  })

  async function forwardMessage (request: FastifyRequest, reply: FastifyReply, endpoint: LegacyEndpoint): Promise<void> {
    const url = await endpoint.whenReady(options.health.connectTimeoutMs)
    if (url === undefined) {
      sendUpstreamReconnecting(reply)
      return
    }
    forwardToUpstream(request, reply, {
      url,
      body: request.body as Buffer | undefined,
      labels: streamRoute.labels,
      metrics: context.metrics,
      // A POST that raced an upstream restart reached an endpoint that is gone: once the stream
      // has reconnected and named the new one, the message goes there.
      takeOver: (head, body) => resendOnceOn404(request, reply, head, body, {
        recover: async () => {
          const moved = await endpoint.whenReady(options.health.connectTimeoutMs)
          return moved !== undefined && moved !== url
        },
        resend: async () => { await forwardMessage(request, reply, endpoint) },
        giveUp: () => { sendSessionNotFound(reply) }
      })
    })
  }
}
