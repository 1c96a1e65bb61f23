import type { HistoryRead } from '../history/history-store.js'
import type { StreamSubscriber } from '../session/stream-subscriber.js'

/**
 * Where a resuming client's events come from: a stream recorded here, or one
 * another replica records. One resume serves both (relay/resume.ts).
 */
export interface ResumeSource {
  /**
   * Subscribes a client after `afterSeq`, then reads the history after it: in that
   * order, so that nothing falls between the two. Rejects, having let go of what it
   * held, when the store cannot answer.
   */
  open: (afterSeq: number) => Promise<OpenedResume>
}

export interface OpenedResume {
  readonly subscriber: StreamSubscriber
  readonly read: HistoryRead
  /**
   * Called once the subscriber has started: live events flow to it after
   * `sentThroughSeq`, or, when undefined, after the seq it joined at (it started live).
   */
  readonly flow: (sentThroughSeq: number | undefined) => void
}
