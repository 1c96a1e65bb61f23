import type { FastifyReply, FastifyRequest } from 'fastify'
import { startResumableStream, type StreamRoute } from '../relay/resumable-relay.js'
import type { StreamEnvironment, UpstreamReconnect } from '../session/stream-environment.js'
import type { ProxySession } from '../session/session-registry.js'
import { forwardToUpstream } from '../upstream/forward.js'
import { sendStoreUnavailable, sendTooManySessions } from './json-rpc-errors.js'
import { holdUntilAnswered } from './held-place.js'
import { resumeByLastEventId } from './last-event-id.js'
import { withClientQuery } from './upstream-url.js'

export interface StreamGetRoute {
  readonly path: string
  readonly upstream: string
}

export interface StreamGetOptions {
  /** Lets a route rewrite the events of a stream it opens, knowing its session and upstream URL. */
  rewriterFor?: (session: ProxySession, upstreamUrl: string) => StreamEnvironment['rewriteEvent']
  /** What the route's protocol tells a client of a gap in its session's stream. */
  gapNotificationsFor?: (session: ProxySession) => StreamEnvironment['gapNotifications']
  /** Lets a route reopen a stream that drops upstream; without it, a drop ends the stream. */
  reconnectFor?: (request: FastifyRequest, upstreamUrl: string) => UpstreamReconnect
}

/**
 * The GET of an sse or legacy-sse route, where a stream is its own session: resume
 * the stream a Last-Event-ID names, or open a fresh one upstream (telling the client
 * when its id could not be served). The stream id is the capability to resume.
 */
export async function serveStreamGet (
  streamRoute: StreamRoute,
  route: StreamGetRoute,
  request: FastifyRequest,
  reply: FastifyReply,
  options: StreamGetOptions
): Promise<FastifyReply> {
  const { context } = streamRoute
  const { sessions, metrics, directory } = context
  const resumed = await resumeByLastEventId(streamRoute, request, reply, (owner) => owner.routePath === route.path)
  if (resumed.answered) return reply
  const { miss } = resumed
  if (!directory.available) return sendStoreUnavailable(reply)
  // Held across the upstream round trip: GETs that arrive together cannot all pass the limit.
  const place = sessions.reserveSession()
  if (place === undefined) return sendTooManySessions(reply)
  holdUntilAnswered(reply, place)
  const url = withClientQuery(route.upstream, request.url)
  forwardToUpstream(request, reply, {
    url,
    labels: streamRoute.labels,
    metrics,
    // The client's Last-Event-ID is a proxy id: it means nothing upstream.
    rewriteRequestHeaders: ({ 'last-event-id': _proxyId, ...headers }) => headers,
    onEventStream: (body) => {
      const session = sessions.create({ routePath: route.path, endsWithItsStreams: true }, place)
      request.mcpSseSession = session
      startResumableStream(streamRoute, request, reply, session, body, {
        upstreamUrl: url,
        miss,
        rewriteEvent: options.rewriterFor?.(session, url),
        gapNotifications: options.gapNotificationsFor?.(session),
        reconnect: options.reconnectFor?.(request, url)
      })
    }
  })
  return reply
}
