/** One event as the history keeps it. */
export interface RecordedEvent {
  /** Its position in its stream, from 1; the proxy's event id carries it. */
  readonly seq: number
  /** The upstream's own id, kept for upstream resume and dedup; never sent to clients. */
  readonly upstreamId: string | undefined
  /**
   * The event as clients receive it, proxy id line included (batch-builder.ts). Empty in
   * ids-only mode. Its own Buffer, never a view of an upstream chunk, and never changed.
   */
  readonly bytes: Buffer
}

/**
 * What one upstream chunk produced, as clients receive it: one Buffer with the events
 * under their proxy ids and the comments and retry hints between them, in order. Each
 * event is a range of it, so that recording and sending a chunk costs no object per event.
 */
export interface EventBatch {
  /** The wire bytes; never changed once made. */
  readonly bytes: Buffer
  /** Events in it. */
  readonly count: number
  /** The seq of its first event; seqs are consecutive. Meaningless when count is 0. */
  readonly firstSeq: number
  /** The seq of its last event; undefined when it holds none (comments only), which is always sent. */
  readonly seq: number | undefined
  /** Event i is bytes[bounds[2i], bounds[2i + 1]). */
  readonly bounds: Uint32Array
  /** Event i's upstream id. */
  readonly upstreamIds: ReadonlyArray<string | undefined>
  /** The bytes of its largest event, or of all it holds when it has none: what one client must take in at once. */
  readonly largest: number
}

const NO_BOUNDS = new Uint32Array(0)

/** Event i of a batch, as a view of its bytes. */
export function eventAt (batch: EventBatch, index: number): RecordedEvent {
  const { bounds } = batch
  return {
    seq: batch.firstSeq + index,
    upstreamId: batch.upstreamIds[index],
    bytes: batch.bytes.subarray(bounds[2 * index], bounds[2 * index + 1])
  }
}

/** A batch of events that each have their own bytes: for stores' tests, and the few places events come one by one. */
export function batchOf (events: readonly RecordedEvent[]): EventBatch {
  const bounds = new Uint32Array(2 * events.length)
  let length = 0
  let largest = 0
  events.forEach((event, index) => {
    bounds[2 * index] = length
    length += event.bytes.length
    bounds[2 * index + 1] = length
    largest = Math.max(largest, event.bytes.length)
  })
  const first = events[0]?.seq ?? 0
  return {
    bytes: Buffer.concat(events.map((event) => event.bytes), length),
    count: events.length,
    firstSeq: first,
    seq: events.length === 0 ? undefined : first + events.length - 1,
    bounds,
    upstreamIds: events.map((event) => event.upstreamId),
    largest
  }
}

/** Consecutive batches of one stream as one, for a store that takes them in one write. */
export function joinBatches (batches: readonly EventBatch[]): EventBatch {
  if (batches.length === 1) return batches[0] as EventBatch
  let count = 0
  let length = 0
  let largest = 0
  for (const batch of batches) {
    count += batch.count
    length += batch.bytes.length
    largest = Math.max(largest, batch.largest)
  }
  const bounds = count === 0 ? NO_BOUNDS : new Uint32Array(2 * count)
  const upstreamIds: Array<string | undefined> = []
  let firstSeq = 0
  let seq: number | undefined
  let at = 0
  let offset = 0
  for (const batch of batches) {
    if (batch.count > 0) {
      if (seq === undefined) firstSeq = batch.firstSeq
      seq = batch.seq
      for (let index = 0; index < 2 * batch.count; index++) bounds[at++] = (batch.bounds[index] as number) + offset
      for (const id of batch.upstreamIds) upstreamIds.push(id)
    }
    offset += batch.bytes.length
  }
  return { bytes: Buffer.concat(batches.map((batch) => batch.bytes), length), count, firstSeq, seq, bounds, upstreamIds, largest }
}
