import type { FastifyRequest } from 'fastify'
import type { ResumeMiss } from '../relay/resumable-relay.js'
import { parseEventId } from '../session/event-id.js'
import type { ProxiedStream } from '../session/proxied-stream.js'
import type { SessionRegistry } from '../session/session-registry.js'
import { firstHeaderValue } from '../upstream/headers.js'

export type ResumeTarget =
  | { readonly kind: 'none' }
  | { readonly kind: 'stream', readonly stream: ProxiedStream, readonly afterSeq: number }
  | { readonly kind: 'miss', readonly miss: ResumeMiss }

/**
 * What the request's Last-Event-ID points at. A stream the requester does not
 * own is reported exactly like one that does not exist, so that an id from
 * another session neither yields its events nor reveals that it exists.
 */
export function resolveLastEventId (
  request: FastifyRequest,
  sessions: SessionRegistry,
  owns: (stream: ProxiedStream) => boolean
): ResumeTarget {
  const lastEventId = firstHeaderValue(request.headers['last-event-id'])
  if (lastEventId === undefined || lastEventId === '') return { kind: 'none' }
  const position = parseEventId(lastEventId)
  if (position === undefined) return { kind: 'miss', miss: 'malformed' }
  const stream = sessions.findStream(position.streamId)
  if (stream === undefined || !owns(stream)) return { kind: 'miss', miss: 'unknown' }
  return { kind: 'stream', stream, afterSeq: position.seq }
}
