import type { Readable } from 'node:stream'
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import { ClientSseStream } from '../client/client-sse-stream.js'
import { reconnectPolicyFor, type ReconnectPolicy, type RouteConfig } from '../config/schema.js'
import type { RouteLabels } from '../metrics.js'
import type { ProxyContext } from '../proxy-context.js'
import { ProxiedStream } from '../session/proxied-stream.js'
import type { StreamEnvironment, StreamOrigin, StreamOwnership, UpstreamReconnect } from '../session/stream-environment.js'
import { mintStreamId } from '../session/event-id.js'
import type { StreamDescriptor } from '../cluster/replica-coordinator.js'
import type { ProxySession, Reservation, SessionStream } from '../session/session-registry.js'
import { serializeEvent } from '../wire/sse-serializer.js'
import { missNotice, RESUME_STATUS_HEADER, resumeStatusValue, type ResumeMiss } from '../session/resume-status.js'
import { withoutHopByHop, type HeaderMap } from '../upstream/headers.js'
import { connectEventStream } from '../upstream/upstream-connector.js'

export interface StreamRoute {
  readonly context: ProxyContext
  readonly labels: RouteLabels
  /** The route's reconnect policy: the global one with the route's overrides. */
  readonly reconnect: ReconnectPolicy
  /** routes[].upstreamReplays */
  readonly upstreamReplays: boolean
}

/** What the streams of one configured route share. */
export function streamRouteOf (context: ProxyContext, route: RouteConfig): StreamRoute {
  return {
    context,
    labels: { route_kind: route.kind, route: route.path },
    reconnect: reconnectPolicyFor(context.options, route),
    upstreamReplays: route.upstreamReplays
  }
}

export interface NewStreamOptions {
  upstreamUrl: string
  /** A Last-Event-ID that could not be served before this fresh stream was opened. */
  miss?: ResumeMiss | undefined
  /** The place held for the stream in its session (sessions.maxStreamsPerSession). */
  held?: Reservation | undefined
  rewriteEvent?: StreamEnvironment['rewriteEvent']
  gapNotifications?: StreamEnvironment['gapNotifications']
  /** How to reopen the upstream stream when it drops; without it, a drop ends the stream. */
  reconnect?: UpstreamReconnect | undefined
}

/**
 * Relays a new upstream event stream with proxy ids and history, for a client
 * that may leave and resume it. Routes hold its place in the session
 * (reserveStream) before they send the request upstream.
 */
export function startResumableStream (
  route: StreamRoute,
  request: FastifyRequest,
  reply: FastifyReply,
  session: ProxySession,
  body: Readable,
  options: NewStreamOptions
): SessionStream {
  const { context } = route
  const id = mintStreamId()
  const owned = context.directory.ownNewStream(session, id, () => ({
    routePath: session.routePath,
    endsWithItsStreams: session.endsWithItsStreams,
    upstreamUrl: options.upstreamUrl,
    headers: reconnectHeaders(request),
    answers: options.reconnect?.answers === undefined ? undefined : [...options.reconnect.answers]
  }))
  const stream: SessionStream = new ProxiedStream(session, {
    ...streamEnvironment(route, request.log, () => context.sessions.removeStream(stream)),
    upstreamUrl: options.upstreamUrl,
    rewriteEvent: options.rewriteEvent,
    gapNotifications: options.gapNotifications,
    reconnect: options.reconnect,
    ownership: owned.ownership
  }, { id, lastSeq: 0, lastUpstreamEventId: undefined })
  owned.bind(stream)
  context.sessions.addStream(stream, options.held)
  const subscriber = stream.subscribe()
  const headers = options.miss === undefined ? reply.getHeaders() : { ...reply.getHeaders(), ...resumeHeaders(options.miss) }
  subscriber.start(openClientStream(route, reply, headers, options.miss), [])
  stream.start(body)
  return stream
}

/**
 * The stream of a session another replica recorded, which this replica takes
 * over (Redis store): it resumes its upstream after `origin`'s cursor, with no client.
 */
export function reviveStream (
  route: StreamRoute,
  session: ProxySession,
  descriptor: StreamDescriptor,
  origin: StreamOrigin,
  ownership: StreamOwnership,
  reconnect: UpstreamReconnect,
  events: Pick<StreamEnvironment, 'gapNotifications' | 'rewriteEvent'> = {}
): SessionStream {
  const stream: SessionStream = new ProxiedStream(session, {
    ...streamEnvironment(route, route.context.log, () => route.context.sessions.removeStream(stream)),
    reconnect,
    ownership,
    gapNotifications: events.gapNotifications,
    rewriteEvent: events.rewriteEvent,
    upstreamUrl: descriptor.upstreamUrl
  }, origin)
  return stream
}

/** A client joins a running stream live, from now: a GET for a session's standalone stream. */
export function joinStream (route: StreamRoute, reply: FastifyReply, stream: SessionStream, miss: ResumeMiss | undefined): void {
  const subscriber = stream.subscribe()
  subscriber.startLive(openClientStream(route, reply, miss === undefined ? {} : resumeHeaders(miss), miss))
}

/** Counts and logs a Last-Event-ID that could not be served. */
export function recordMiss (route: StreamRoute, log: FastifyBaseLogger, miss: ResumeMiss): void {
  const { metrics, directory } = route.context
  metrics.lastEventIdMisses.inc({ ...route.labels, reason: miss })
  directory.noteMiss(miss)
  log.info({ route: route.labels.route, reason: miss }, 'Last-Event-ID cannot be served; the client is told and goes on live')
}

export function missOf (read: Awaited<ReturnType<SessionStream['readAfter']>>, replay: boolean): ResumeMiss | undefined {
  if (read.status !== 'found') return read.status
  // Ids-only mode keeps no text to replay (see docs/sse-resilience.md).
  return !replay && read.events.length > 0 ? 'not-replayable' : undefined
}

function streamEnvironment (route: StreamRoute, log: FastifyBaseLogger, onForget: () => void): Omit<StreamEnvironment, 'upstreamUrl'> {
  const { context, labels } = route
  const { options: config } = context
  return {
    store: context.directory.history,
    metrics: context.metrics,
    labels,
    log,
    epoch: context.directory.epoch(),
    maxEventBytes: config.limits.maxEventBytes,
    idleTimeoutMs: config.health.idleTimeoutSeconds * 1000,
    detachGraceMs: config.sessions.detachGraceSeconds * 1000,
    retentionMs: config.history.ttlSeconds * 1000,
    maxBufferedChars: config.limits.clientBufferBytes,
    maxAppendChars: config.store.maxAppendBytes,
    stallMs: config.limits.clientStallSeconds * 1000,
    onForget
  }
}

export function resumeHeaders (miss: ResumeMiss | undefined, upstreamGaps = 0): HeaderMap {
  return { [RESUME_STATUS_HEADER]: resumeStatusValue(miss, upstreamGaps) }
}

/** The client's SSE response, with keep-alives and the slow-consumer limit. */
export function openClientStream (route: StreamRoute, reply: FastifyReply, headers: HeaderMap, miss: ResumeMiss | undefined): ClientSseStream {
  const { context, labels } = route
  const { metrics, options } = context
  const output = new ClientSseStream(reply, headers, {
    heartbeatMs: options.health.heartbeatSeconds * 1000,
    maxBufferedBytes: options.limits.clientBufferBytes,
    onSlowConsumer: () => {
      metrics.slowConsumerDisconnects.inc(labels)
      reply.log.info({ route: labels.route, limit: options.limits.clientBufferBytes }, 'client fell behind by more than limits.clientBufferBytes; disconnected, it can resume')
    }
  })
  metrics.streamsActive.inc(labels)
  output.onClose(() => metrics.streamsActive.dec(labels))
  if (miss !== undefined) {
    output.write(serializeEvent(missNotice(miss)))
    output.flush()
  }
  return output
}

/** Where a stream's upstream is reopened, as a StreamDescriptor records it. */
export interface ReconnectTarget {
  readonly upstreamUrl: string
  /** The client's end-to-end headers (reconnectHeaders). */
  readonly headers: HeaderMap
  /** An MCP POST stream: the JSON-RPC request ids it answers. */
  readonly answers?: Iterable<string> | undefined
}

/**
 * Reopens a dropped upstream stream with a GET to its URL, carrying the client's
 * original end-to-end headers and the upstream's last event id: a stream opened
 * here (reconnectHeaders of its request) or taken over from another replica (its descriptor).
 */
export function upstreamReconnect (
  route: StreamRoute,
  target: ReconnectTarget,
  options: { needsUpstreamIds: boolean, sessionHeaders?: () => HeaderMap }
): UpstreamReconnect {
  const { dispatcher } = route.context
  const { upstreamUrl, headers, answers } = target
  return {
    policy: route.reconnect,
    replays: route.upstreamReplays,
    needsUpstreamIds: options.needsUpstreamIds,
    answers: answers === undefined ? undefined : new Set(answers),
    connect: async (lastUpstreamEventId) => await connectEventStream(dispatcher, upstreamUrl, { ...headers, ...options.sessionHeaders?.() }, lastUpstreamEventId)
  }
}

// What describes the request itself, not the hop or the body: those a reconnect must not copy.
const NOT_FOR_RECONNECT = ['host', 'content-length', 'content-type', 'last-event-id', 'mcp-session-id', 'accept', 'accept-encoding', 'expect']

export function reconnectHeaders (request: FastifyRequest): HeaderMap {
  const headers: HeaderMap = withoutHopByHop(request.headers)
  for (const name of NOT_FOR_RECONNECT) delete headers[name]
  return headers
}
