import type { ResolvedOptions } from '../config/schema.js'
import { RemoteStream } from '../cluster/remote-stream.js'
import type { ReplicaCoordinator, StreamDescriptor, StreamReviver } from '../cluster/replica-coordinator.js'
import type { HistoryStore } from '../history/history-store.js'
import type { StoreMetrics } from '../metrics/store-metrics.js'
import type { ResumeMiss } from '../session/resume-status.js'
import type { ProxySession, SessionRegistry } from '../session/session-registry.js'
import { StreamSubscriber } from '../session/stream-subscriber.js'
import type { OpenedResume, ResumeSource } from './resume-source.js'
import type { NewStreamOwnership, SessionDirectory, SessionLookup, StreamOwnerRef } from './session-directory.js'

/**
 * Several replicas over one shared store, through the ReplicaCoordinator: a session
 * opened through one replica is found through any other, and a stream another
 * replica records is followed from the store.
 */
export class SharedSessionDirectory implements SessionDirectory {
  readonly history: HistoryStore
  readonly #coordinator: ReplicaCoordinator
  readonly #sessions: SessionRegistry
  readonly #metrics: StoreMetrics
  readonly #options: ResolvedOptions

  constructor (coordinator: ReplicaCoordinator, sessions: SessionRegistry, metrics: StoreMetrics, options: ResolvedOptions) {
    this.#coordinator = coordinator
    this.#sessions = sessions
    this.#metrics = metrics
    this.#options = options
    this.history = coordinator.store
  }

  readonly epoch = (): string => this.#coordinator.epoch

  get available (): boolean {
    return this.#coordinator.available
  }

  async find (sessionId: string, routePath: string): Promise<SessionLookup> {
    // While the store is away, a session this replica holds is served as it knows it; any other must wait.
    let session: ProxySession | undefined
    try {
      session = this.available ? await this.#coordinator.findSession(sessionId, routePath) : this.#sessions.find(sessionId, routePath)
    } catch {
      return 'store-unavailable'
    }
    if (session !== undefined) return session
    return this.available ? 'unknown' : 'store-unavailable'
  }

  async reload (session: ProxySession): Promise<ProxySession | undefined> {
    // While the store cannot answer, this replica's own view decides.
    if (!this.available) return session
    return await this.#coordinator.findSession(session.id, session.routePath).catch(() => session)
  }

  save (session: ProxySession): void {
    this.#coordinator.saveSession(session)
  }

  async markEndRequested (sessionId: string): Promise<void> {
    await this.#coordinator.markSessionEndRequested(sessionId)
  }

  async delete (sessionId: string): Promise<void> {
    this.#sessions.delete(sessionId)
    await this.#coordinator.deleteSession(sessionId)
  }

  /**
   * Three round trips to Redis, not six: the session of the stream; then, at once,
   * the live channel's subscription and the stream's owner (checked before anything
   * is read); then, pipelined, where the stream is now and the history after the
   * client's id (see #followed).
   */
  async locateStream (streamId: string, owns: (owner: StreamOwnerRef) => boolean): Promise<ResumeSource | undefined> {
    const coordinator = this.#coordinator
    const sessionId = await coordinator.sessionOf(streamId)
    if (sessionId === undefined) return undefined
    let following = false
    const remote = new RemoteStream({
      sessionId,
      streamId,
      channel: coordinator.liveChannelOf(sessionId, streamId),
      onClose: () => { if (following) coordinator.noteFollowerLeft(sessionId, streamId) }
    }, this.history)
    try {
      const [, located] = await Promise.all([coordinator.inTime(remote.listen(coordinator.channels)), coordinator.positionOf(sessionId, streamId)])
      // Gone since the lookup, or not the requester's: both are answered as unknown.
      if (located === undefined || !owns({ sessionId, routePath: located.descriptor.routePath, endsWithItsStreams: located.descriptor.endsWithItsStreams })) {
        remote.close()
        return undefined
      }
      following = true
      return this.#followed(remote, sessionId, streamId)
    /* c8 ignore next 4 -- Redis answered the lookup an instant before (store.requestTimeoutMs bounds
       each call); this lets go of the subscription when it fails right after. */
    } catch (error) {
      remote.close()
      throw error
    }
  }

  ownNewStream (session: ProxySession, streamId: string, describe: () => StreamDescriptor): NewStreamOwnership {
    return this.#coordinator.ownNewStream(session, streamId, describe())
  }

  onTakeover (routePath: string, reviver: StreamReviver): void {
    this.#coordinator.onTakeover(routePath, reviver)
  }

  noteMiss (miss: ResumeMiss): void {
    if (miss === 'store-reset' || miss === 'evicted') this.#metrics.storeUnrecoverableResumes.inc({ reason: miss })
  }

  async close (): Promise<void> {
    await this.#coordinator.close()
  }

  /**
   * "Replay, then live" from the store: the live channel is listened to before
   * the history is read, and the two are merged by seq: no gap, no duplicate.
   */
  #followed (remote: RemoteStream, sessionId: string, streamId: string): ResumeSource {
    const coordinator = this.#coordinator
    const { limits } = this.#options
    return {
      open: async (afterSeq: number): Promise<OpenedResume> => {
        try {
          // Both after the subscription: an end published from now on reaches this client.
          const [located, read] = await Promise.all([coordinator.positionOf(sessionId, streamId), coordinator.inTime(remote.readAfter(afterSeq))])
          const { lastSeq, finished } = located?.position ?? { lastSeq: afterSeq, finished: true }
          const subscriber = new StreamSubscriber(remote, { lastSentSeq: afterSeq, joinedAtSeq: lastSeq }, {
            maxBufferedChars: limits.clientBufferBytes,
            stallMs: limits.clientStallSeconds * 1000
          })
          return { subscriber, read, flow: (sentThroughSeq) => remote.start(subscriber, sentThroughSeq ?? lastSeq, finished) }
        /* c8 ignore next 4 -- the route has just found the stream in the store (store.requestTimeoutMs
           bounds that); this answers the store hanging or refusing in the instant after. */
        } catch (error) {
          remote.close()
          throw error
        }
      }
    }
  }
}
