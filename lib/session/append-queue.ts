import type { RecordedEvent } from '../history/history-store.js'
import type { StreamItem } from './stream-subscriber.js'

// Steps waiting on an asynchronous store before the upstream is held back: bounded memory when Redis is slow.
const MAX_PENDING_APPENDS = 32

export interface AppendTarget {
  /** Stores events: undefined once stored, a promise while the store does I/O. Never throws, never rejects. */
  readonly append: (recorded: readonly RecordedEvent[]) => Promise<void> | undefined
  /** Sends what was stored. */
  readonly deliver: (batch: readonly StreamItem[], events: number) => void
  /** The store fell behind: the upstream waits. */
  readonly hold: () => void
  /** The store caught up; told whenever the queue runs empty. */
  readonly release: () => void
}

interface WaitingAppend {
  readonly batch: StreamItem[]
  readonly recorded: RecordedEvent[]
  chars: number
}

/**
 * A stream's appends, in order, each batch sent only once it is stored: a client
 * never gets an event it could not resume after. A store that answers at once (the
 * memory store) lets a batch go out in the same turn; one that does I/O is waited
 * for, and the chunks that arrive meanwhile join one append.
 */
export class AppendQueue {
  readonly #target: AppendTarget
  readonly #maxAppendChars: number
  #chain: Promise<void> = Promise.resolve()
  /** Steps on #chain not yet run; 0 lets the next one run at once. */
  #queuedSteps = 0
  /** The append queued behind the store's work, which later chunks join. */
  #waiting: WaitingAppend | undefined
  readonly #stepDone = (): void => {
    this.#queuedSteps--
    if (this.#queuedSteps === 0) this.#target.release()
  }

  /** `maxAppendChars`: store.maxAppendBytes. `ready`: what recording waits for first (StreamOwnership). */
  constructor (target: AppendTarget, maxAppendChars: number, ready?: Promise<void>) {
    this.#target = target
    this.#maxAppendChars = maxAppendChars
    if (ready !== undefined) this.inOrder(async () => await ready)
  }

  /** Resolves once every step queued so far has run. */
  async settled (): Promise<void> {
    await this.#chain
  }

  /** Stores what one upstream chunk produced (`recorded`: its events), then sends all of `batch`. */
  store (batch: StreamItem[], recorded: RecordedEvent[]): void {
    if (this.#queuedSteps > 0) {
      this.#appendInTurn(batch, recorded)
      return
    }
    const stored = this.#target.append(recorded)
    if (stored === undefined) {
      this.#target.deliver(batch, recorded.length)
      return
    }
    this.inOrder(async () => {
      await stored
      this.#target.deliver(batch, recorded.length)
    })
  }

  /** Runs `step` after every step queued before it: at once, when none is. */
  inOrder (step: () => void | Promise<void>): void {
    // No later chunk may join an append queued before this step.
    this.#waiting = undefined
    if (this.#queuedSteps === 0) {
      const done = step()
      if (done === undefined) return
      this.#queuedSteps++
      this.#chain = done.finally(this.#stepDone)
      return
    }
    this.#queuedSteps++
    this.#chain = this.#chain.then(step).finally(this.#stepDone)
  }

  /**
   * Queues an append behind the store's work. Chunks that arrive while one waits join
   * it, so that a store that does I/O gets one larger append per round trip. Past
   * store.maxAppendBytes of waiting events, or MAX_PENDING_APPENDS steps, the
   * upstream is held back until the store has caught up: memory stays bounded, and
   * no append is long enough to hold Redis up.
   */
  #appendInTurn (batch: StreamItem[], recorded: RecordedEvent[]): void {
    let waiting = this.#waiting
    if (waiting === undefined) {
      const next: WaitingAppend = { batch, recorded, chars: 0 }
      this.inOrder(async () => {
        if (this.#waiting === next) this.#waiting = undefined
        await this.#target.append(next.recorded)
        this.#target.deliver(next.batch, next.recorded.length)
      })
      this.#waiting = next
      waiting = next
    } else {
      for (const item of batch) waiting.batch.push(item)
      for (const event of recorded) waiting.recorded.push(event)
    }
    for (const item of batch) waiting.chars += item.text.length
    if (waiting.chars > this.#maxAppendChars || this.#queuedSteps >= MAX_PENDING_APPENDS) this.#target.hold()
  }
}
