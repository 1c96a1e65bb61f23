import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { StreamableHttpRouteConfig } from '../config/schema.js'
import type { RouteLabels } from '../metrics.js'
import type { ProxyContext } from '../proxy-context.js'
import { relayEventStream } from '../relay/sse-relay.js'
import type { ProxySession } from '../session/session-registry.js'
import { forwardToUpstream, type UpstreamResponseHead } from '../upstream/forward.js'
import { firstHeaderValue, type HeaderMap } from '../upstream/headers.js'
import { sendSessionNotFound, sendTooManySessions } from './json-rpc-errors.js'
import { withClientQuery } from './upstream-url.js'

const SESSION_HEADER = 'mcp-session-id'

/**
 * An MCP Streamable HTTP endpoint (POST, GET, DELETE on one path).
 * The proxy owns the client-facing session: the upstream's `Mcp-Session-Id` is
 * swapped for one the proxy mints, in both directions, and never reaches the client.
 * Requests without a session (stateless upstreams, MCP 2026-07-28) pass as they are.
 */
export function registerStreamableHttpRoute (proxy: FastifyInstance, context: ProxyContext, route: StreamableHttpRouteConfig): void {
  const labels: RouteLabels = { route_kind: route.kind, route: route.path }
  const { sessions } = context

  function resolveSession (request: FastifyRequest, reply: FastifyReply, done: () => void): void {
    const sessionId = firstHeaderValue(request.headers[SESSION_HEADER])
    if (sessionId === undefined) {
      done()
      return
    }
    const session = sessions.find(sessionId, route.path)
    if (session === undefined) {
      sendSessionNotFound(reply)
      return
    }
    request.mcpSseSession = session
    done()
  }

  function forward (request: FastifyRequest, reply: FastifyReply): void {
    const session = request.mcpSseSession
    const url = withClientQuery(route.upstream, request.url)
    forwardToUpstream(request, reply, {
      url,
      body: request.body as Buffer | undefined,
      labels,
      metrics: context.metrics,
      rewriteRequestHeaders: (headers) => withUpstreamSession(headers, session),
      onResponseHead: (head, reply) => mapResponseSession(request, head, reply),
      onEventStream: (body) => {
        const streamSession = request.mcpSseSession
        if (streamSession !== null) streamSession.openStreams += 1
        relayEventStream(context, request, reply, body, {
          labels,
          upstreamUrl: url,
          onClose: () => {
            if (streamSession !== null) releaseStream(streamSession)
          }
        })
      }
    })
  }

  function mapResponseSession (request: FastifyRequest, head: UpstreamResponseHead, reply: FastifyReply): void {
    const session = request.mcpSseSession
    const upstreamSessionId = firstHeaderValue(head.headers[SESSION_HEADER])
    if (session !== null && isSessionEnd(request.method, head.statusCode)) {
      sessions.delete(session.id)
    }
    if (upstreamSessionId === undefined) return
    if (session === null) {
      const created = sessions.create({ routePath: route.path, upstreamSessionId })
      request.mcpSseSession = created
      reply.header(SESSION_HEADER, created.id)
    } else {
      session.upstreamSessionId = upstreamSessionId
      reply.header(SESSION_HEADER, session.id)
    }
  }

  function releaseStream (session: ProxySession): void {
    session.openStreams -= 1
    session.lastActiveAt = Date.now()
  }

  const routeOptions = {
    preHandler: resolveSession,
    // Streams can last hours: keep them out of the request duration histograms.
    config: { disableMetrics: true }
  }

  proxy.post(route.path, routeOptions, (request, reply) => {
    if (request.mcpSseSession === null && !sessions.hasCapacity() && isInitialize(request.body)) {
      sendTooManySessions(reply)
      return
    }
    forward(request, reply)
  })
  proxy.get(route.path, routeOptions, forward)
  proxy.delete(route.path, { preHandler: resolveSession }, forward)
}

function withUpstreamSession (headers: HeaderMap, session: ProxySession | null): HeaderMap {
  if (session?.upstreamSessionId === undefined) {
    delete headers[SESSION_HEADER]
  } else {
    headers[SESSION_HEADER] = session.upstreamSessionId
  }
  return headers
}

/** The upstream ended the session (DELETE) or no longer knows it (404): forget it here too. */
function isSessionEnd (method: string, statusCode: number): boolean {
  return statusCode === 404 || (method === 'DELETE' && statusCode >= 200 && statusCode < 300)
}

function isInitialize (body: unknown): boolean {
  if (!Buffer.isBuffer(body)) return false
  try {
    const message: unknown = JSON.parse(body.toString('utf8'))
    const messages = Array.isArray(message) ? message : [message]
    return messages.some((item) => typeof item === 'object' && item !== null && (item as { method?: unknown }).method === 'initialize')
  } catch {
    return false
  }
}
