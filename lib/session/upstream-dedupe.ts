/**
 * Which upstream ids a stream recorded lately, and under which seqs, to drop what
 * an upstream sends again after a reconnect. While a connection runs it
 * costs two array writes per event: nothing is hashed or looked up. Only after a
 * reconnect are the new connection's events compared with what earlier
 * connections recorded, within the last `window` events.
 */
export class UpstreamDedupe {
  readonly #window: number
  readonly #ids: Array<string | undefined>
  readonly #seqs: number[]
  #next = 0
  /** Set by a reconnect: the seqs each upstream id was recorded under before it. */
  #earlier: Map<string, number[]> | undefined

  constructor (window: number) {
    this.#window = window
    this.#ids = new Array<string | undefined>(window)
    this.#seqs = new Array<number>(window).fill(0)
  }

  /** An event with an upstream id was recorded under `seq`. */
  remember (upstreamId: string, seq: number): void {
    const slot = this.#next % this.#window
    this.#ids[slot] = upstreamId
    this.#seqs[slot] = seq
    this.#next++
  }

  /** The upstream stream was opened again: what came before may now be sent again. */
  reconnected (): void {
    const earlier = new Map<string, number[]>()
    const first = Math.max(0, this.#next - this.#window)
    for (let index = first; index < this.#next; index++) {
      const slot = index % this.#window
      const id = this.#ids[slot] as string
      const seqs = earlier.get(id)
      if (seqs === undefined) earlier.set(id, [this.#seqs[slot] as number])
      else seqs.push(this.#seqs[slot] as number)
    }
    this.#earlier = earlier
  }

  /** The oldest seq a reconnect may be compared against; 0 when none. */
  get oldestRememberedSeq (): number {
    return this.#next === 0 ? 0 : this.#seqs[Math.max(0, this.#next - this.#window) % this.#window] as number
  }

  /** Whether a reconnect happened, so that events may be sent again and isDuplicate() can say yes. */
  get comparing (): boolean {
    return this.#earlier !== undefined
  }

  /**
   * True when an earlier connection recorded this upstream id, and `sameEvent`
   * says the event under one of its seqs is this one.
   */
  isDuplicate (upstreamId: string, sameEvent: (seq: number) => boolean): boolean {
    const seqs = this.#earlier?.get(upstreamId)
    return seqs !== undefined && seqs.some(sameEvent)
  }
}
