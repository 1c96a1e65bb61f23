/**
 * Where a stream is in its life. Its upstream is read (`live`), or, dropped, opened
 * again (`reconnecting`); it stops for good (`stopping`: grace over, or its requests
 * answered), or this replica closes and another one goes on with it (`handing-over`);
 * then no more events come (`finished`), and it stays resumable until it is
 * `forgotten` (history and all), or `released` to the replica that records it now.
 */
export type StreamState = 'live' | 'reconnecting' | 'stopping' | 'handing-over' | 'finished' | 'forgotten' | 'released'

/** How the upstream side of a stream ended: for good, or handed over to another replica. */
export type StreamEnd = 'ended' | 'handed-over'

export class StreamLifecycle {
  #state: StreamState = 'live'

  get state (): StreamState {
    return this.#state
  }

  /** No more events will come. */
  get upstreamOver (): boolean {
    return this.#state === 'finished' || this.#state === 'forgotten' || this.#state === 'released'
  }

  /** Forgotten or released: this replica is done with it. */
  get gone (): boolean {
    return this.#state === 'forgotten' || this.#state === 'released'
  }

  /** The upstream dropped: it is opened again. */
  dropped (): void {
    if (this.#state === 'live') this.#state = 'reconnecting'
  }

  reconnected (): void {
    if (this.#state === 'reconnecting') this.#state = 'live'
  }

  /** No more reconnects; the upstream is closed next. `handOver`: another replica goes on with the stream. */
  stop (handOver: boolean): void {
    if (this.#state === 'live' || this.#state === 'reconnecting') this.#state = handOver ? 'handing-over' : 'stopping'
  }

  /** No more events will come; undefined when that was so already. */
  finish (): StreamEnd | undefined {
    if (this.upstreamOver) return undefined
    const end: StreamEnd = this.#state === 'handing-over' ? 'handed-over' : 'ended'
    this.#state = 'finished'
    return end
  }

  /** Its history is dropped; false when it was gone already. */
  forget (): boolean {
    if (this.gone) return false
    this.#state = 'forgotten'
    return true
  }

  /** Another replica records it now, or the store lost it; false when it was gone already. */
  release (): boolean {
    if (this.gone) return false
    this.#state = 'released'
    return true
  }
}
