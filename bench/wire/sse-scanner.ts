const COLON = 0x3a
const EVENT_END = Buffer.from('\n\n')

/** Called with the bytes of one whole event, `end` at its first blank-line byte. */
export type EventBlockHandler = (chunk: Buffer, start: number, end: number) => void

/**
 * Finds whole SSE events in a byte stream, cheaply enough to count millions a
 * second: it splits on blank lines and never decodes. Comments (`: keepalive`)
 * are skipped; a half event waits for the rest. The bench's producers write `\n`
 * line ends only.
 */
export class SseScanner {
  #pending: Buffer | undefined

  /** Hands each whole event of the chunk to `onEvent`; returns how many. */
  feed (chunk: Buffer, onEvent: EventBlockHandler): number {
    const bytes = this.#pending === undefined ? chunk : Buffer.concat([this.#pending, chunk])
    let events = 0
    let start = 0
    for (;;) {
      const end = bytes.indexOf(EVENT_END, start)
      if (end === -1) break
      if (bytes[start] !== COLON && end > start) {
        onEvent(bytes, start, end)
        events++
      }
      start = end + 2
    }
    this.#pending = start < bytes.length ? bytes.subarray(start) : undefined
    return events
  }

  /** Where, in `chunk`, a cut would fall in the middle of an event: undefined when no event starts in it. */
  static midEventOffset (chunk: Buffer): number | undefined {
    const end = chunk.indexOf(EVENT_END)
    const limit = end === -1 ? chunk.length : end
    if (limit < 2) return undefined
    return 1 + Math.floor(Math.random() * (limit - 1))
  }

  /** Forgets a half event, as a client does when its connection ends. */
  reset (): void {
    this.#pending = undefined
  }
}
