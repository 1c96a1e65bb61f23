import type { EventBatch } from '../history/event-batch.js'
import { LF } from '../wire/sse-bytes.js'
import { idLineStart, typeLineEnd } from '../wire/sse-event-bytes.js'

const ZERO = 0x30
// An id line's seq: at most 16 digits (Number.MAX_SAFE_INTEGER), and its line break.
const MAX_SEQ_BYTES = 17
const MIN_OUTPUT_BYTES = 1024
const EMPTY = Buffer.alloc(0)
// A chunk of many small events grows the bounds; a stream does not keep that size.
const MAX_KEPT_BOUNDS = 1024

/**
 * Writes what one upstream chunk produces straight into one output Buffer: each event's
 * lines under its proxy id line (after a leading `event:` line, as the proxy has always
 * written them: type, id, data), then the blank line; comments and retry hints as they
 * come. One copy of each event's bytes, and no object per event: the batch it makes is
 * what the history records and what every client is written.
 */
export class BatchBuilder {
  readonly #idStart: Buffer
  #output: Buffer = EMPTY
  #length = 0
  #bounds = new Uint32Array(64)
  #upstreamIds: Array<string | undefined> = []
  #count = 0
  #firstSeq = 0
  #largest = 0
  /** The last batch's size: the next output starts at about that, and rarely grows. */
  #sizeHint = MIN_OUTPUT_BYTES

  constructor (idPrefix: string) {
    this.#idStart = idLineStart(idPrefix)
  }

  /** An event: `lines` as the relay scanner gives them (sse-byte-scanner.ts), which may be a view of a chunk. */
  event (seq: number, lines: Buffer, upstreamId: string | undefined): void {
    const idStart = this.#idStart
    const need = lines.length + idStart.length + MAX_SEQ_BYTES + 1
    if (this.#output.length - this.#length < need) this.#grow(need)
    const output = this.#output
    const start = this.#length
    const typeEnd = typeLineEnd(lines)
    const digits = digitCount(seq)
    const idLength = idStart.length + digits + 1
    // Whole-Buffer copies and copyWithin: a Buffer method given a range costs more than the bytes it moves at this size.
    output.set(lines, start + idLength)
    if (typeEnd > 0) output.copyWithin(start, start + idLength, start + idLength + typeEnd)
    const idAt = start + typeEnd
    output.set(idStart, idAt)
    let digit = idAt + idLength - 2
    for (let rest = seq; digit >= idAt + idStart.length; rest = Math.floor(rest / 10)) output[digit--] = ZERO + rest % 10
    output[idAt + idLength - 1] = LF
    const end = start + idLength + lines.length + 1
    output[end - 1] = LF
    this.#length = end
    if (end - start > this.#largest) this.#largest = end - start
    if (this.#count === 0) this.#firstSeq = seq
    const at = 2 * this.#count
    if (at + 2 > this.#bounds.length) this.#growBounds()
    this.#bounds[at] = start
    this.#bounds[at + 1] = end
    this.#upstreamIds.push(upstreamId)
    this.#count++
  }

  /** Bytes that go out with the events but are not recorded: a comment, a `retry:`. */
  raw (bytes: Buffer): void {
    if (this.#output.length - this.#length < bytes.length) this.#grow(bytes.length)
    this.#output.set(bytes, this.#length)
    this.#length += bytes.length
    if (bytes.length > this.#largest) this.#largest = bytes.length
  }

  /** What was written since the last take(), as a batch; undefined when nothing was. */
  take (): EventBatch | undefined {
    const length = this.#length
    if (length === 0) return undefined
    const count = this.#count
    const firstSeq = this.#firstSeq
    const batch: EventBatch = {
      bytes: this.#output.subarray(0, length),
      count,
      firstSeq,
      seq: count === 0 ? undefined : firstSeq + count - 1,
      bounds: this.#bounds.slice(0, 2 * count),
      upstreamIds: this.#upstreamIds,
      largest: this.#largest
    }
    this.#sizeHint = Math.max(MIN_OUTPUT_BYTES, length + (length >> 2))
    // The batch keeps what was written: the next one gets Buffers of its own.
    this.#output = EMPTY
    this.#length = 0
    this.#upstreamIds = []
    this.#count = 0
    this.#largest = 0
    if (this.#bounds.length > MAX_KEPT_BOUNDS) this.#bounds = new Uint32Array(64)
    return batch
  }

  #grow (need: number): void {
    const output = Buffer.allocUnsafe(Math.max(this.#sizeHint, 2 * this.#output.length, this.#length + need))
    if (this.#length > 0) this.#output.copy(output, 0, 0, this.#length)
    this.#output = output
  }

  #growBounds (): void {
    const bounds = new Uint32Array(2 * this.#bounds.length)
    bounds.set(this.#bounds)
    this.#bounds = bounds
  }
}

function digitCount (seq: number): number {
  let digits = 1
  for (let rest = seq; rest >= 10; rest = Math.floor(rest / 10)) digits++
  return digits
}
