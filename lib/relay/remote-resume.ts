import type { FastifyReply } from 'fastify'
import { RemoteStream } from '../cluster/remote-stream.js'
import type { ReplicaCoordinator } from '../cluster/replica-coordinator.js'
import { sendStoreUnavailable } from '../routes/json-rpc-errors.js'
import { StreamSubscriber } from '../session/stream-subscriber.js'
import { countGapNotices } from '../session/resume-status.js'
import { missOf, openClientStream, recordMiss, resumeHeaders, type StreamRoute } from './resumable-relay.js'

export interface RemoteResumeTarget {
  readonly sessionId: string
  readonly streamId: string
  readonly afterSeq: number
}

/**
 * A client back with a Last-Event-ID of a stream another replica records (Redis
 * store): "replay, then live" from Redis. Listening to the live channel starts
 * before the history is read, and the two are merged by seq: no gap, no duplicate.
 */
export async function resumeRemoteStream (route: StreamRoute, reply: FastifyReply, coordinator: ReplicaCoordinator, target: RemoteResumeTarget): Promise<void> {
  const { context, labels } = route
  const { metrics, options } = context
  metrics.clientReconnections.inc(labels)
  const { sessionId, streamId, afterSeq } = target
  const remote = new RemoteStream({
    sessionId,
    streamId,
    channel: coordinator.liveChannelOf(sessionId, streamId),
    onClose: () => coordinator.noteFollowerLeft(sessionId, streamId)
  }, context.history)
  try {
    await coordinator.inTime(remote.listen(coordinator.channels))
    // Read after listening: an end published from now on reaches this client.
    const located = await coordinator.locate(streamId)
    const read = await coordinator.inTime(remote.readAfter(afterSeq))
    const { lastSeq, finished } = located?.position ?? { lastSeq: afterSeq, finished: true }
    const subscriber = new StreamSubscriber(remote, { lastSentSeq: afterSeq, joinedAtSeq: lastSeq }, {
      maxBufferedChars: options.limits.clientBufferBytes,
      stallMs: options.limits.clientStallSeconds * 1000
    })
    const miss = missOf(read, options.history.replay)
    const gaps = read.status === 'found' ? countGapNotices(read.events) : 0
    const output = openClientStream(route, reply, resumeHeaders(miss, gaps), miss)
    if (read.status === 'found' && miss === undefined) {
      metrics.lastEventIdHits.inc(labels)
      metrics.eventsReplayed.inc(labels, read.events.length)
      subscriber.start(output, read.events)
      remote.start(subscriber, read.events.at(-1)?.seq ?? afterSeq, finished)
      return
    }
    recordMiss(route, reply.log, miss ?? 'unknown')
    subscriber.startLive(output)
    remote.start(subscriber, lastSeq, finished)
  /* c8 ignore next 5 -- the route has just found the stream in Redis (store.requestTimeoutMs bounds
     that); this answers Redis hanging or refusing in the instant after. */
  } catch (error) {
    remote.close()
    reply.log.warn({ err: error, route: labels.route }, 'could not resume a stream from Redis')
    await sendStoreUnavailable(reply)
  }
}
