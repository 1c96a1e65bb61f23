import type { FastifyReply } from 'fastify'
import type { OpenedResume, ResumeSource } from '../directory/resume-source.js'
import { sendStoreUnavailable } from '../routes/json-rpc-errors.js'
import { countGapNotices, type ResumeMiss } from '../session/resume-status.js'
import type { SessionStream } from '../session/session-registry.js'
import { joinStream, missOf, openClientStream, recordMiss, resumeHeaders, type StreamRoute } from './resumable-relay.js'

/** A stream this replica records, as a resuming client reads it. */
export function recordedHere (stream: SessionStream): ResumeSource {
  return {
    open: async (afterSeq) => {
      const subscriber = stream.subscribe(afterSeq)
      try {
        return { subscriber, read: await stream.readAfter(afterSeq), flow: () => {} }
      /* c8 ignore next 4 -- the memory store does not fail; a shared store's read that fails is
         answered as one of a stream another replica records. */
      } catch (error) {
        subscriber.close()
        throw error
      }
    }
  }
}

/**
 * A client back with a Last-Event-ID: the events after it from the history, then
 * live, on the same connection, whether the stream is recorded here or by another
 * replica. When the history cannot serve them all the client is told so and goes
 * on live from now: never a silent gap. When the store cannot answer, 503.
 */
export async function resume (route: StreamRoute, reply: FastifyReply, source: ResumeSource, afterSeq: number): Promise<void> {
  const { context, labels } = route
  const { metrics } = context
  metrics.clientReconnections.inc(labels)
  let opened: OpenedResume
  try {
    opened = await source.open(afterSeq)
  /* c8 ignore next 5 -- the route has just found the stream (store.requestTimeoutMs bounds that);
     this answers the store hanging or refusing in the instant after. */
  } catch (error) {
    reply.log.warn({ err: error, route: labels.route }, 'could not resume a stream from the store')
    await sendStoreUnavailable(reply)
    return
  }
  const { subscriber, read, flow } = opened
  /* c8 ignore next 5 -- a newer connection can take the stream over during the read only with an
     asynchronous store (Redis); the local store's read completes in the same turn. */
  if (subscriber.closed) {
    openClientStream(route, reply, {}, undefined).end()
    return
  }
  const miss = missOf(read, context.options.history.replay)
  if (read.status === 'found' && miss === undefined) {
    const output = openClientStream(route, reply, resumeHeaders(undefined, countGapNotices(read.events)), undefined)
    metrics.lastEventIdHits.inc(labels)
    metrics.eventsReplayed.inc(labels, read.events.length)
    subscriber.start(output, read.events)
    flow(read.events.at(-1)?.seq ?? afterSeq)
    return
  }
  const output = openClientStream(route, reply, resumeHeaders(miss), miss)
  recordMiss(route, reply.log, miss ?? 'unknown')
  subscriber.startLive(output)
  flow(undefined)
}

/** A client back with an id that cannot be one of this stream's (another store epoch): told so, it joins live. */
export function rejoin (route: StreamRoute, reply: FastifyReply, stream: SessionStream, miss: ResumeMiss): void {
  route.context.metrics.clientReconnections.inc(route.labels)
  recordMiss(route, reply.log, miss)
  joinStream(route, reply, stream, miss)
}
