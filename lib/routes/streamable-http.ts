import type { Readable } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { StreamableHttpRouteConfig } from '../config/schema.js'
import type { ProxyContext } from '../proxy-context.js'
import type { StreamOwnerRef } from '../directory/session-directory.js'
import { joinStream, reconnectHeaders, reviveStream, startResumableStream, streamRouteOf, upstreamReconnect } from '../relay/resumable-relay.js'
import type { ResumeMiss } from '../session/resume-status.js'
import { relayEventStream } from '../relay/sse-relay.js'
import { relayListenStream } from '../relay/listen-relay.js'
import type { UpstreamReconnect } from '../session/stream-environment.js'
import type { ProxySession, Reservation } from '../session/session-registry.js'
import { forwardToUpstream, type ForwardOptions, type UpstreamResponseHead } from '../upstream/forward.js'
import { forwardCancellable } from '../upstream/forward-cancellable.js'
import { firstHeaderValue, type HeaderMap } from '../upstream/headers.js'
import { endUpstreamSession, reestablishUpstreamSession } from '../upstream/mcp-session-reestablish.js'
import { sendHeaderMismatch, sendSessionNotFound, sendStandaloneStreamTaken, sendStoreUnavailable, sendTooManySessions, sendTooManyStreams } from './json-rpc-errors.js'
import { resumeByLastEventId } from './last-event-id.js'
import { resendOnceOn404 } from './resend-once.js'
import { holdUntilAnswered } from './held-place.js'
import { isRequestScoped } from './protocol-era.js'
import { withClientQuery } from './upstream-url.js'
import { recordSessionState } from '../session/mcp-session-state.js'
import { isInitialize, jsonRpcRequestIds } from '../wire/json-rpc.js'
import { jsonRpcBodyOf } from './json-rpc-body.js'
import { standardHeaderMismatch } from '../wire/mcp-standard-headers.js'
import { countMcpRequests } from '../metrics/mcp-requests.js'
import { serverCapabilitiesIn, serverCapabilitiesInBody } from '../wire/mcp-initialize.js'
import type { SseEvent } from '../wire/sse-event.js'
import { listenRequestIn } from '../wire/mcp-listen.js'
import { mcpGapNotifications } from '../session/mcp-gap-notifications.js'

const SESSION_HEADER = 'mcp-session-id'

// The upstream session id each request was last sent with: a 404 is about that one.
const sentUpstreamSession = new WeakMap<FastifyRequest, string | undefined>()
// Initialize requests, told apart once: their answers carry the server's capabilities.
const initializeRequests = new WeakSet<FastifyRequest>()
// The places held for what a request may open: a session (initialize), or a stream of its session.
const heldSessions = new WeakMap<FastifyRequest, Reservation>()
const heldStreams = new WeakMap<FastifyRequest, Reservation>()
// Sessions being opened again upstream: one handshake, however many requests found them lost.
const reopenings = new WeakMap<ProxySession, Promise<boolean>>()

/**
 * An MCP Streamable HTTP endpoint (POST, GET, DELETE on one path).
 * The proxy owns the client-facing session: the upstream's `Mcp-Session-Id` is
 * swapped for one the proxy mints, in both directions, and never reaches the client.
 * In the session eras (2025-03-26 to 2025-11-25) every SSE stream is recorded and
 * resumable with a GET and Last-Event-ID; 2026-07-28 requests are relayed as they
 * are, and closing their stream cancels them.
 */
export function registerStreamableHttpRoute (proxy: FastifyInstance, context: ProxyContext, route: StreamableHttpRouteConfig): void {
  const streamRoute = streamRouteOf(context, route)
  const { sessions, directory } = context

  /** The session may have been opened, or changed, through another replica. */
  async function resolveSession (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const sessionId = firstHeaderValue(request.headers[SESSION_HEADER])
    if (sessionId === undefined) return undefined
    const found = await directory.find(sessionId, route.path)
    if (found === 'store-unavailable') return sendStoreUnavailable(reply)
    if (found === 'unknown') return sendSessionNotFound(reply)
    request.mcpSseSession = found
    return undefined
  }

  /** A stream with a session belongs to it; one without (a stateless upstream) to whoever holds its id. */
  function owns (session: ProxySession | null, owner: StreamOwnerRef): boolean {
    return session === null
      ? owner.endsWithItsStreams && owner.routePath === route.path
      : owner.sessionId === session.id
  }

  directory.onTakeover(route.path, (session, descriptor, origin, ownership) => {
    const reconnect = upstreamReconnect(streamRoute, descriptor, {
      needsUpstreamIds: descriptor.answers !== undefined,
      sessionHeaders: () => session.upstreamSessionId === undefined ? {} : { [SESSION_HEADER]: session.upstreamSessionId }
    })
    const standalone = descriptor.answers === undefined
    const stream = reviveStream(streamRoute, session, descriptor, origin, ownership, reconnect, { gapNotifications: standalone ? () => mcpGapNotifications(session) : undefined })
    if (standalone) session.standaloneStream = stream
    return stream
  })

  function forward (request: FastifyRequest, reply: FastifyReply, miss?: ResumeMiss): void {
    const url = withClientQuery(route.upstream, request.url)
    const options: ForwardOptions = {
      url,
      body: request.body as Buffer | undefined,
      labels: streamRoute.labels,
      metrics: context.metrics,
      rewriteRequestHeaders: (headers) => toUpstreamHeaders(request, headers),
      takeOver: (head, body) => reestablishOnLostSession(request, reply, head, body, url),
      onResponseHead: (head, reply) => mapResponseSession(request, head, reply),
      onEventStream: (body) => relay(request, reply, body, url, miss),
      observeBody: initializeRequests.has(request) ? { maxBytes: context.options.limits.maxEventBytes, onBody: (body, head) => noteCapabilities(request, body, head) } : undefined
    }
    // A 2025-era client that goes away may come back for its answer (it SHOULD NOT be read as cancelling);
    // a 2026-07-28 one cancels so.
    if (isRequestScoped(request)) {
      forwardCancellable(context.dispatcher, request, reply, options)
    } else {
      forwardToUpstream(request, reply, options)
    }
  }

  /** The capabilities the upstream announced in its initialize answer: what its gaps must be told in terms of. */
  function noteCapabilities (request: FastifyRequest, body: Buffer, head: UpstreamResponseHead): void {
    const session = request.mcpSseSession
    const capabilities = serverCapabilitiesInBody(body, firstHeaderValue(head.headers['content-type']), context.options.limits.maxEventBytes)
    if (session === null || capabilities === undefined) return
    session.serverCapabilities = capabilities
    directory.save(session)
  }

  function relay (request: FastifyRequest, reply: FastifyReply, body: Readable, url: string, miss: ResumeMiss | undefined): void {
    // A stream without an MCP session (a stateless upstream) is a session of its own, unless none is left.
    const session = isRequestScoped(request)
      ? undefined
      : request.mcpSseSession ?? (sessions.hasCapacity() ? sessions.create({ routePath: route.path, endsWithItsStreams: true }) : undefined)
    if (session === undefined) {
      const listen = isRequestScoped(request) ? listenRequestIn(jsonRpcBodyOf(request)) : undefined
      if (listen === undefined) relayEventStream(context, request, reply, body, { labels: streamRoute.labels, upstreamUrl: url })
      else relayListenStream(context, request, reply, body, { labels: streamRoute.labels, upstreamUrl: url, listen, policy: streamRoute.reconnect, headers: reconnectHeaders(request) })
      return
    }
    // A POST stream resumes upstream through a GET with Last-Event-ID, so only once the upstream gave ids (MCP spec).
    const reconnect = upstreamReconnect(streamRoute, {
      upstreamUrl: url,
      headers: reconnectHeaders(request),
      answers: request.method === 'POST' ? jsonRpcRequestIds(jsonRpcBodyOf(request).messages) : undefined
    }, {
      needsUpstreamIds: request.method === 'POST',
      sessionHeaders: () => session.upstreamSessionId === undefined ? {} : { [SESSION_HEADER]: session.upstreamSessionId }
    })
    const standalone = request.method === 'GET'
    const stream = startResumableStream(streamRoute, request, reply, session, body, {
      upstreamUrl: url,
      miss,
      held: heldStreams.get(request),
      reconnect: standalone ? reconnectReopening(request, session, url, reconnect) : reconnect,
      // Notifications unrelated to a request go on the standalone stream: so does what replaces those lost.
      gapNotifications: standalone ? () => mcpGapNotifications(session) : undefined,
      rewriteEvent: initializeRequests.has(request) ? (event) => noteCapabilitiesIn(session, event) : undefined
    })
    if (request.method === 'GET') session.standaloneStream = stream
  }

  /**
   * An upstream 404 for a session the proxy maps means the upstream lost it (a
   * restart): a new one is opened, and the request sent again. The client never
   * sees the restart.
   */
  function reestablishOnLostSession (request: FastifyRequest, reply: FastifyReply, head: UpstreamResponseHead, body: Readable, url: string): boolean {
    const session = request.mcpSseSession
    if (session === null || !canReestablish(session) || isRequestScoped(request)) return false
    return resendOnceOn404(request, reply, head, body, {
      recover: async () => await reopenUpstreamSession(request, session, url, sentUpstreamSession.get(request)),
      resend: () => { forward(request, reply) },
      giveUp: () => {
        sessions.delete(session.id)
        sendSessionNotFound(reply)
      }
    })
  }

  function noteCapabilitiesIn (session: ProxySession, event: SseEvent): SseEvent {
    const capabilities = session.serverCapabilities === undefined ? serverCapabilitiesIn(event.data) : undefined
    if (capabilities !== undefined) {
      session.serverCapabilities = capabilities
      directory.save(session)
    }
    return event
  }

  function canReestablish (session: ProxySession): boolean {
    return session.initializeRequest !== undefined && context.options.sessions.reestablish && session.endRequested !== true
  }

  /**
   * Whether the session still wants an upstream session. The upstream ends a session's
   * streams before it answers its DELETE, which may have come through another replica:
   * that one marked the record first, and no stream may open the session again.
   */
  async function stillOpen (session: ProxySession): Promise<boolean> {
    const current = await directory.reload(session)
    return current !== undefined && canReestablish(current)
  }

  /**
   * Opens the session again upstream, once for all the requests and streams that
   * found `lostUpstreamSession` lost. A late 404 for an upstream session already
   * replaced needs nothing opened: the request just goes to the new one.
   */
  async function reopenUpstreamSession (request: FastifyRequest, session: ProxySession, url: string, lostUpstreamSession: string | undefined): Promise<boolean> {
    let reopening = reopenings.get(session)
    if (reopening === undefined && session.upstreamSessionId !== lostUpstreamSession) return true
    if (reopening === undefined) {
      reopening = reestablish(request, session, url, lostUpstreamSession).finally(() => reopenings.delete(session))
      reopenings.set(session, reopening)
    }
    return await reopening
  }

  async function reestablish (request: FastifyRequest, session: ProxySession, url: string, lostUpstreamSession: string | undefined): Promise<boolean> {
    if (!await stillOpen(session)) {
      request.log.info({ upstream: url }, 'the upstream ended an MCP session its client asked to end; it is not opened again')
      return false
    }
    try {
      const reopened = await reestablishUpstreamSession(context.dispatcher, url, session, request.headers as HeaderMap, context.options.limits.maxEventBytes)
      if (reopened === undefined) throw new Error('the upstream did not open a new session')
      const { upstreamSessionId, capabilities } = reopened
      if (session.endRequested === true) {
        // A DELETE came during the handshake: it wins, and the new upstream session goes too.
        await endUpstreamSession(context.dispatcher, url, upstreamSessionId, request.headers as HeaderMap)
        return false
      }
      session.upstreamSessionId = upstreamSessionId
      session.serverCapabilities = capabilities ?? session.serverCapabilities
      directory.save(session)
      context.metrics.sessionsReestablished.inc(streamRoute.labels)
      request.log.info({ upstream: url, lostUpstreamSession }, 'upstream lost the MCP session; opened a new one')
      return true
    } catch (error) {
      request.log.warn({ upstream: url, err: error }, 'could not re-establish the upstream MCP session; the client must initialize again')
      return false
    }
  }

  /**
   * A GET stream reconnecting into a lost session opens it again, then starts afresh
   * in it. A stream that comes back in another upstream session than its last one
   * (this or another request opened it) is fresh: nothing of the old one is replayed.
   */
  function reconnectReopening (request: FastifyRequest, session: ProxySession, url: string, reconnect: UpstreamReconnect): UpstreamReconnect {
    let connectedIn = session.upstreamSessionId
    return {
      ...reconnect,
      connect: async (lastUpstreamEventId) => {
        const sentUpstreamSessionId = session.upstreamSessionId
        // The new upstream session never saw the old one's ids.
        let result = await reconnect.connect(sentUpstreamSessionId === connectedIn ? lastUpstreamEventId : undefined)
        if (result.kind === 'give-up' && result.statusCode === 404 && canReestablish(session) &&
            await reopenUpstreamSession(request, session, url, sentUpstreamSessionId)) {
          result = await reconnect.connect(undefined)
        }
        if (result.kind !== 'connected') return result
        const fresh = session.upstreamSessionId !== connectedIn
        connectedIn = session.upstreamSessionId
        return fresh ? { ...result, freshSession: true } : result
      }
    }
  }

  function mapResponseSession (request: FastifyRequest, head: UpstreamResponseHead, reply: FastifyReply): Promise<void> | undefined {
    const session = request.mcpSseSession
    const upstreamSessionId = firstHeaderValue(head.headers[SESSION_HEADER])
    if (session !== null && isSessionEnd(request.method, head.statusCode)) {
      // Answered once no replica can find it any more: the client's next request, wherever it lands, gets 404.
      return directory.delete(session.id)
    }
    if (upstreamSessionId === undefined) return undefined
    if (session === null) {
      const held = heldSessions.get(request)
      if (held === undefined && !sessions.hasCapacity()) {
        // Not an initialize, and no place left: the upstream's id must not reach the client as it is.
        reply.removeHeader(SESSION_HEADER)
        return undefined
      }
      const created = sessions.create({ routePath: route.path, endsWithItsStreams: false, upstreamSessionId }, held)
      recordSessionState(created, jsonRpcBodyOf(request).messages, context.options.sessions.maxSubscriptionsPerSession)
      request.mcpSseSession = created
      directory.save(created)
      reply.header(SESSION_HEADER, created.id)
    } else {
      if (session.upstreamSessionId !== upstreamSessionId) {
        session.upstreamSessionId = upstreamSessionId
        directory.save(session)
      }
      reply.header(SESSION_HEADER, session.id)
    }
    return undefined
  }

  /**
   * 2026-07-28 mirrors the method and name into headers for intermediaries to route on:
   * one that disagrees with the body is refused before the upstream sees it (Server
   * Validation). Earlier revisions define no such headers: they pass through unchecked.
   */
  async function checkStandardHeaders (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    if (!isRequestScoped(request)) return undefined
    const mismatch = standardHeaderMismatch(request.headers, jsonRpcBodyOf(request))
    return mismatch === undefined ? undefined : sendHeaderMismatch(reply, mismatch)
  }

  const routeOptions = {
    preHandler: resolveSession,
    // Streams can last hours: keep them out of the request duration histograms.
    config: { disableMetrics: true }
  }

  proxy.post(route.path, { ...routeOptions, preHandler: [checkStandardHeaders, resolveSession] }, (request, reply) => {
    const { messages } = jsonRpcBodyOf(request)
    countMcpRequests(context.metrics.mcpRequests, streamRoute.labels, messages)
    const session = request.mcpSseSession
    if (session === null && isInitialize(messages)) {
      if (!directory.available) return sendStoreUnavailable(reply)
      const place = sessions.reserveSession()
      if (place === undefined) return sendTooManySessions(reply)
      heldSessions.set(request, holdUntilAnswered(reply, place))
      initializeRequests.add(request)
    }
    if (session !== null) {
      // Refused before the upstream sees it, so that a refused tools/call never runs.
      const place = sessions.reserveStream(session)
      if (place === undefined) return sendTooManyStreams(reply)
      heldStreams.set(request, holdUntilAnswered(reply, place))
    }
    if (session !== null && recordSessionState(session, messages, context.options.sessions.maxSubscriptionsPerSession)) {
      directory.save(session)
    }
    forward(request, reply)
    return reply
  })

  proxy.get(route.path, routeOptions, async (request, reply) => {
    if (isRequestScoped(request)) {
      forward(request, reply)
      return reply
    }
    const session = request.mcpSseSession
    const resumed = await resumeByLastEventId(streamRoute, request, reply, (owner) => owns(session, owner))
    if (resumed.answered) return reply
    // A GET is the session's standalone stream: an id that cannot be served still gets it, live, with a notice.
    const { miss } = resumed
    const standalone = session?.standaloneStream
    if (standalone !== undefined && !standalone.finished) {
      // Without a Last-Event-ID this is not a client coming back but a second reader, which would take
      // the stream from the first one, and back (typescript-sdk#2499 reconnects so).
      if (standalone.hasClient && request.headers['last-event-id'] === undefined) return sendStandaloneStreamTaken(reply)
      joinStream(streamRoute, reply, standalone, miss)
      return reply
    }
    if (session !== null) {
      const place = sessions.reserveStream(session)
      if (place === undefined) return sendTooManyStreams(reply)
      heldStreams.set(request, holdUntilAnswered(reply, place))
    }
    forward(request, reply, miss)
    return reply
  })

  proxy.delete(route.path, { preHandler: resolveSession }, async (request, reply) => {
    const session = request.mcpSseSession
    if (session !== null) {
      session.endRequested = true
      await directory.markEndRequested(session.id)
    }
    forward(request, reply)
    return reply
  })
}

function toUpstreamHeaders (request: FastifyRequest, headers: HeaderMap): HeaderMap {
  const upstreamSessionId = request.mcpSseSession?.upstreamSessionId
  sentUpstreamSession.set(request, upstreamSessionId)
  if (upstreamSessionId === undefined) {
    delete headers[SESSION_HEADER]
  } else {
    headers[SESSION_HEADER] = upstreamSessionId
  }
  // The client's Last-Event-ID is a proxy id, which the proxy has already handled; 2026-07-28 requests pass it on.
  if (!isRequestScoped(request)) delete headers['last-event-id']
  return headers
}

/** The upstream ended the session (DELETE) or no longer knows it (404): forget it here too. */
function isSessionEnd (method: string, statusCode: number): boolean {
  return statusCode === 404 || (method === 'DELETE' && statusCode >= 200 && statusCode < 300)
}
