import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { LegacySseRouteConfig } from '../config/schema.js'
import type { ProxyContext } from '../proxy-context.js'
import { reconnectHeaders, reviveStream, streamRouteOf, upstreamReconnect, type ReconnectTarget } from '../relay/resumable-relay.js'
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
import { sendSessionIdRequired, sendSessionNotFound, sendStoreUnavailable, sendUpstreamReconnecting } from './json-rpc-errors.js'
import { resendOnceOn404 } from './resend-once.js'
import { serveStreamGet } from './stream-get.js'

const ENDPOINT_EVENT = 'endpoint'
// How often a replica that does not read a session's stream looks for the endpoint its new owner records.
const RECORD_POLL_MS = 50

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
  const { options, directory } = context
  const messagesUrl = `${proxy.prefix}${route.messagesPath}`

  proxy.get(route.path, { config: { disableMetrics: true } }, async (request, reply) => await serveStreamGet(streamRoute, route, request, reply, {
    rewriterFor: (session, upstreamUrl) => {
      const endpoint = new LegacyEndpoint()
      session.legacyEndpoint = endpoint
      return (event, gaps) => rewriteEvent(event, {
        session,
        endpoint,
        gaps,
        upstreamUrl,
        log: request.log,
        headers: request.headers as HeaderMap,
        proxyEndpoint: `${messagesUrl}?sessionId=${session.id}`
      })
    },
    gapNotificationsFor: (session) => () => mcpGapNotifications(session),
    // The request's session is set once the stream has started, well before any drop.
    reconnectFor: (request, upstreamUrl) => legacyReconnect({ upstreamUrl, headers: reconnectHeaders(request) }, () => request.mcpSseSession?.legacyEndpoint)
  }))

  /**
   * A stream whose owner died (Redis store): reopened from its descriptor. The endpoint
   * its session had is recalled from the session's record, so that the one the reopened
   * stream names tells whether the upstream session lives on or must be initialized again.
   */
  directory.onTakeover(route.path, (session, descriptor, origin, ownership) => {
    const endpoint = new LegacyEndpoint()
    if (session.upstreamEndpoint !== undefined) endpoint.recall(session.upstreamEndpoint)
    session.legacyEndpoint = endpoint
    return reviveStream(streamRoute, session, descriptor, origin, ownership, legacyReconnect(descriptor, () => endpoint), {
      gapNotifications: () => mcpGapNotifications(session),
      rewriteEvent: (event, gaps) => rewriteEvent(event, {
        session,
        endpoint,
        gaps,
        upstreamUrl: descriptor.upstreamUrl,
        log: context.log,
        headers: descriptor.headers,
        proxyEndpoint: `${messagesUrl}?sessionId=${session.id}`
      })
    })
  })

  function legacyReconnect (target: ReconnectTarget, endpointOf: () => LegacyEndpoint | undefined): UpstreamReconnect {
    const reconnect = upstreamReconnect(streamRoute, target, { needsUpstreamIds: false })
    return { ...reconnect, onDrop: () => endpointOf()?.hold() }
  }

  interface EndpointContext {
    session: ProxySession
    endpoint: LegacyEndpoint
    gaps: GapReporter
    upstreamUrl: string
    log: FastifyBaseLogger
    /** The client's headers: the handshake sent again carries its credentials. */
    headers: HeaderMap
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
        const capabilities = serverCapabilitiesIn(event.data)
        if (capabilities !== undefined) {
          at.session.serverCapabilities = capabilities
          directory.save(at.session)
        }
      }
      return ownAnswer ? undefined : event
    }
    const url = new URL(event.data.trim(), at.upstreamUrl)
    // As the MCP SDK's client checks: messages, and the client's credentials with them, go to the upstream's own origin only.
    if (url.origin !== new URL(at.upstreamUrl).origin) {
      context.metrics.upstreamMalformed.inc({ ...streamRoute.labels, reason: 'foreign-endpoint' })
      at.log.warn({ upstream: at.upstreamUrl }, 'the upstream named an endpoint on another origin; not followed')
      return undefined
    }
    return moveEndpoint(at, url.href, event)
  }

  function moveEndpoint (at: EndpointContext, url: string, event: SseEvent): SseEvent | undefined {
    const { endpoint } = at
    const previous = endpoint.url
    if (previous === undefined) {
      endpoint.moveTo(url, Promise.resolve())
      recordEndpoint(at.session, url)
      return { ...event, data: at.proxyEndpoint }
    }
    if (url === previous) {
      endpoint.moveTo(url, Promise.resolve())
      recordEndpoint(at.session, url)
      return undefined
    }
    // A new endpoint is a new upstream session: whatever the old one owed the client is lost.
    at.gaps.noteGap('session-reestablished')
    endpoint.moveTo(url, reopenSession(at, url).finally(() => recordEndpoint(at.session, url)))
    return undefined
  }

  /** Tells the replicas that do not read the stream where its session's messages go now. */
  function recordEndpoint (session: ProxySession, url: string): void {
    if (session.upstreamEndpoint === url) return
    session.upstreamEndpoint = url
    directory.save(session)
  }

  /** A reconnect landed on a new upstream session: initialize it as the client once did. */
  async function reopenSession (at: EndpointContext, url: string): Promise<void> {
    const { log } = at
    if (!options.sessions.reestablish) return
    // The client's handshake may have gone through another replica: the record has it.
    const session = await directory.reload(at.session) ?? at.session
    const reopened = await reestablishLegacySession(context.dispatcher, url, session, at.headers)
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
    const found = await directory.find(sessionId, route.path)
    if (found === 'store-unavailable') return sendStoreUnavailable(reply)
    if (found === 'unknown' || (found.legacyEndpoint?.url ?? found.upstreamEndpoint) === undefined) return sendSessionNotFound(reply)
    const session = found
    request.mcpSseSession = session
    const { messages } = jsonRpcBodyOf(request)
    countMcpRequests(context.metrics.mcpRequests, streamRoute.labels, messages)
    const changed = recordSessionState(session, messages, options.sessions.maxSubscriptionsPerSession)
    // The stream's reader saves with every message, which keeps the record alive while its client talks to it alone.
    if (changed || session.legacyEndpoint !== undefined) directory.save(session)
    await deliver(request, reply, session)
    return reply
  })

  async function deliver (request: FastifyRequest, reply: FastifyReply, session: ProxySession): Promise<void> {
    const endpoint = session.legacyEndpoint
    if (endpoint !== undefined) {
      await forwardMessage(request, reply, endpoint)
      return
    }
    const url = session.upstreamEndpoint
    if (url === undefined) {
      sendSessionNotFound(reply)
      return
    }
    // Another replica reads the stream: the message goes straight to the upstream session, whose answer comes on that stream.
    // If the upstream lost the session (the stream's reader died, and the upstream session with its connection, or
    // the upstream restarted), the message goes where the stream's reader, new or not, has opened it again.
    let moved: ProxySession | undefined
    forwardOnce(request, reply, url, async () => {
      moved = await endpointMoved(session, url)
      return moved !== undefined
    }, async () => { await deliver(request, reply, moved ?? session) })
  }

  /**
   * The session as known now, once its messages go elsewhere than `url`: as its record
   * tells, or as this replica knows once it took the stream over. A dead reader's stream
   * is taken over within store.leaseTtlMs, then reopened within health.connectTimeoutMs.
   */
  async function endpointMoved (session: ProxySession, url: string): Promise<ProxySession | undefined> {
    const deadline = Date.now() + options.store.leaseTtlMs + options.health.connectTimeoutMs
    for (;;) {
      const current = await directory.reload(session)
      if (current === undefined) return undefined
      const endpoint = current.legacyEndpoint
      if (endpoint !== undefined) {
        const moved = await endpoint.whenReady(Math.max(1, deadline - Date.now()))
        return moved !== undefined && moved !== url ? current : undefined
      }
      if (current.upstreamEndpoint !== url) return current
      if (Date.now() >= deadline) return undefined
      await new Promise((resolve) => setTimeout(resolve, RECORD_POLL_MS))
    }
  }

  async function forwardMessage (request: FastifyRequest, reply: FastifyReply, endpoint: LegacyEndpoint): Promise<void> {
    const url = await endpoint.whenReady(options.health.connectTimeoutMs)
    if (url === undefined) {
      sendUpstreamReconnecting(reply)
      return
    }
    // A POST that raced an upstream restart reached an endpoint that is gone: once the stream
    // has reconnected and named the new one, the message goes there.
    forwardOnce(request, reply, url, async () => {
      const moved = await endpoint.whenReady(options.health.connectTimeoutMs)
      return moved !== undefined && moved !== url
    }, async () => { await forwardMessage(request, reply, endpoint) })
  }

  /** Sends a message to `url`; on a 404, once `recover` says where it goes now, `resend` sends it there, once. */
  function forwardOnce (request: FastifyRequest, reply: FastifyReply, url: string, recover: () => Promise<boolean>, resend: () => Promise<void>): void {
    forwardToUpstream(request, reply, {
      url,
      body: request.body as Buffer | undefined,
      labels: streamRoute.labels,
      metrics: context.metrics,
      takeOver: (head, body) => resendOnceOn404(request, reply, head, body, { recover, resend, giveUp: () => { sendSessionNotFound(reply) } })
    })
  }
}
