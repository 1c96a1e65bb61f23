export type HoldReason = 'client' | 'store'

interface Pausable {
  pause: () => void
  resume: () => void
}

/**
 * What holds an upstream back: a client catching up from the history, or a store
 * that fell behind. It is read only while nothing does.
 */
export class UpstreamHolds {
  readonly #holds = new Set<HoldReason>()
  readonly #upstream: () => Pausable | undefined

  /** `upstream`: the connection read now, which a reconnect replaces. */
  constructor (upstream: () => Pausable | undefined) {
    this.#upstream = upstream
  }

  hold (reason: HoldReason): void {
    this.#holds.add(reason)
    this.#upstream()?.pause()
  }

  release (reason: HoldReason): void {
    if (!this.#holds.delete(reason) || this.#holds.size > 0) return
    this.#upstream()?.resume()
  }
}
