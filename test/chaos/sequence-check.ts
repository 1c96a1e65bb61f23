/**
 * Checks one client's received sequence against the upstream's 1, 2, 3, ... as
 * it arrives, by payload number. Only counts are kept, so that the check itself
 * holds no memory that would blur the heap comparison after the soak.
 */
export class SequenceCheck {
  /** The next number expected. */
  #next = 1
  received = 0
  duplicated = 0
  /** Numbers skipped over: an event after a gap proves the gap. */
  lost = 0
  /** Numbers that arrived after a higher one (a gap filled late): never expected. */
  outOfOrder = 0
  readonly #seen = new Set<number>()
  readonly #notes: string[] = []

  constructor (readonly name: string) {}

  get last (): number {
    return this.#next - 1
  }

  accept (n: number): void {
    this.received++
    if (n === this.#next) {
      this.#next++
      return
    }
    if (n < this.#next) {
      // Either a duplicate, or a number a gap skipped and that arrives late.
      if (this.#seen.has(n)) {
        this.outOfOrder++
        this.lost--
        this.#seen.delete(n)
        this.#note(`${n} arrived late, after ${this.#next - 1}`)
      } else {
        this.duplicated++
        this.#note(`${n} again, after ${this.#next - 1}`)
      }
      return
    }
    // A gap: remember the skipped numbers (few, if any) to tell a late one from a duplicate.
    for (let missing = this.#next; missing < n && this.#seen.size < 10_000; missing++) this.#seen.add(missing)
    this.lost += n - this.#next
    this.#note(`gap: ${this.#next}..${n - 1} missing, then ${n}`)
    this.#next = n + 1
  }

  /** The events the upstream sent that never arrived at the end: the missing tail. */
  missingTail (upstreamLast: number): number {
    return Math.max(0, upstreamLast - this.last)
  }

  /** The first few anomalies, for the report. */
  get notes (): readonly string[] {
    return this.#notes
  }

  #note (text: string): void {
    if (this.#notes.length < 5) this.#notes.push(text)
  }
}
