import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ResumeSource } from '../directory/resume-source.js'
import type { StreamOwnerRef } from '../directory/session-directory.js'
import type { ProxyContext } from '../proxy-context.js'
import { recordMiss, type StreamRoute } from '../relay/resumable-relay.js'
import { recordedHere, rejoin, resume } from '../relay/resume.js'
import { parseEventId } from '../session/event-id.js'
import type { ResumeMiss } from '../session/resume-status.js'
import type { SessionStream } from '../session/session-registry.js'
import { firstHeaderValue } from '../upstream/headers.js'
import { sendStoreUnavailable } from './json-rpc-errors.js'

const STORE_UNAVAILABLE = Symbol('store unavailable')

type ResumeTarget =
  | { readonly kind: 'none' }
  /** A stream the requester owns, here or recorded by another replica. */
  | { readonly kind: 'resume', readonly source: ResumeSource, readonly afterSeq: number }
  /** A stream here, but the id cannot be one it issued (another store epoch): it is joined live. */
  | { readonly kind: 'join', readonly stream: SessionStream, readonly miss: ResumeMiss }
  | { readonly kind: 'miss', readonly miss: ResumeMiss }
  /** The stream is not here, and the shared store cannot be asked now: the client should retry shortly. */
  | { readonly kind: 'store-unavailable' }

/**
 * What the request's Last-Event-ID points at. A stream the requester does not
 * own is reported exactly like one that does not exist, so that an id from
 * another session neither yields its events nor reveals that it exists. An id
 * from before the store lost its data is told apart: `store-reset`.
 */
async function resolveLastEventId (
  request: FastifyRequest,
  context: ProxyContext,
  owns: (owner: StreamOwnerRef) => boolean
): Promise<ResumeTarget> {
  const lastEventId = firstHeaderValue(request.headers['last-event-id'])
  if (lastEventId === undefined || lastEventId === '') return { kind: 'none' }
  const position = parseEventId(lastEventId)
  if (position === undefined) return { kind: 'miss', miss: 'malformed' }
  const stream = context.sessions.findStream(position.streamId)
  if (stream !== undefined) {
    const { session } = stream
    const owned = owns({ sessionId: session.id, routePath: session.routePath, endsWithItsStreams: session.endsWithItsStreams })
    if (!owned) return { kind: 'miss', miss: 'unknown' }
    // The stream lives on, but the id is from a store epoch it never recorded under.
    if (position.epoch !== stream.epoch) return { kind: 'join', stream, miss: 'store-reset' }
    return { kind: 'resume', source: recordedHere(stream), afterSeq: position.seq }
  }
  const { directory } = context
  if (!directory.available) return { kind: 'store-unavailable' }
  if (position.epoch !== directory.epoch()) return { kind: 'miss', miss: 'store-reset' }
  const source = await directory.locateStream(position.streamId, owns).catch((): typeof STORE_UNAVAILABLE => STORE_UNAVAILABLE)
  if (source === STORE_UNAVAILABLE) return { kind: 'store-unavailable' }
  if (source === undefined) return { kind: 'miss', miss: 'unknown' }
  return { kind: 'resume', source, afterSeq: position.seq }
}

/** What a GET route does next, once the Last-Event-ID was dealt with. */
export type LastEventIdOutcome =
  /** The client was answered: its stream resumed, or 503 (the store is away). */
  | { readonly answered: true }
  /** The route opens or joins a stream; `miss` (counted already) when the id could not be served. */
  | { readonly answered: false, readonly miss: ResumeMiss | undefined }

const ANSWERED: LastEventIdOutcome = { answered: true }

/**
 * The GET of every route kind: the stream a Last-Event-ID names is resumed, here
 * or from the replica that records it; anything else is left to the route.
 */
export async function resumeByLastEventId (
  route: StreamRoute,
  request: FastifyRequest,
  reply: FastifyReply,
  owns: (owner: StreamOwnerRef) => boolean
): Promise<LastEventIdOutcome> {
  const target = await resolveLastEventId(request, route.context, owns)
  switch (target.kind) {
    case 'resume':
      await resume(route, reply, target.source, target.afterSeq)
      return ANSWERED
    case 'join':
      rejoin(route, reply, target.stream, target.miss)
      return ANSWERED
    case 'store-unavailable':
      sendStoreUnavailable(reply)
      return ANSWERED
    case 'miss':
      recordMiss(route, request.log, target.miss)
      return { answered: false, miss: target.miss }
    case 'none':
      return { answered: false, miss: undefined }
  }
}
