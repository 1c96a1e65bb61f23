/**
 * Holds the events of new streams while the harness opens a fleet of them, then
 * lets them all go at once: streams that pump at full speed as soon as they open
 * would otherwise slow the opening of the rest to a crawl, and leave the fleet
 * half open when the measurement starts.
 */
export class StreamGate {
  #held = false
  #waiting: Array<() => void> = []

  hold (): void {
    this.#held = true
  }

  release (): void {
    this.#held = false
    const waiting = this.#waiting
    this.#waiting = []
    for (const start of waiting) start()
  }

  /** Starts a stream now, or at the release. */
  whenOpen (start: () => void): void {
    if (this.#held) this.#waiting.push(start)
    else start()
  }
}
