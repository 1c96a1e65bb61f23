import type { FastifyRequest } from 'fastify'
import type { ProxyContext } from '../proxy-context.js'
import type { ResumeMiss } from '../session/resume-status.js'
import { parseEventId } from '../session/event-id.js'
import type { SessionStream } from '../session/session-registry.js'
import type { StreamPosition } from '../cluster/stream-registry.js'
import { firstHeaderValue } from '../upstream/headers.js'

const STORE_UNAVAILABLE = Symbol('store unavailable')

/** Whose a stream is: what a route checks before it lets a request resume it. */
export interface StreamOwnerRef {
  readonly sessionId: string
  readonly routePath: string
  readonly endsWithItsStreams: boolean
}

export type ResumeTarget =
  | { readonly kind: 'none' }
  /** A stream here; `miss` when the id cannot be one it issued (another epoch), so it is joined live. */
  | { readonly kind: 'stream', readonly stream: SessionStream, readonly afterSeq: number, readonly miss?: ResumeMiss }
  /** A stream another replica records (Redis store). */
  | { readonly kind: 'remote', readonly sessionId: string, readonly streamId: string, readonly position: StreamPosition, readonly afterSeq: number }
  | { readonly kind: 'miss', readonly miss: ResumeMiss }
  /** The stream is not here, and Redis cannot be asked now: the client should retry shortly. */
  | { readonly kind: 'store-unavailable' }

/**
 * What the request's Last-Event-ID points at. A stream the requester does not
 * own is reported exactly like one that does not exist, so that an id from
 * another session neither yields its events nor reveals that it exists. An id
 * from before the store lost its data is told apart: `store-reset`.
 */
export async function resolveLastEventId (
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
    if (position.epoch !== stream.epoch) return { kind: 'stream', stream, afterSeq: position.seq, miss: 'store-reset' }
    return { kind: 'stream', stream, afterSeq: position.seq }
  }
  const { coordinator } = context
  if (coordinator?.available === false) return { kind: 'store-unavailable' }
  if (position.epoch !== context.epoch()) return { kind: 'miss', miss: 'store-reset' }
  const located = await coordinator?.locate(position.streamId).catch((): typeof STORE_UNAVAILABLE => STORE_UNAVAILABLE)
  if (located === STORE_UNAVAILABLE) return { kind: 'store-unavailable' }
  if (located === undefined || !owns({ sessionId: located.sessionId, ...located.descriptor })) {
    return { kind: 'miss', miss: 'unknown' }
  }
  return { kind: 'remote', sessionId: located.sessionId, streamId: position.streamId, position: located.position, afterSeq: position.seq }
}
