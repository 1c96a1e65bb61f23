/** Reads the fields the bench needs out of one event's bytes, without decoding the event. */

const ID_PREFIX = Buffer.from('id: ')
const SEQ_MARKER = Buffer.from('"seq":')
const TIMESTAMP_MARKER = Buffer.from('"t":')
const DROP_MARKER = Buffer.from('"dropAt":')
const LF = 0x0a

export function eventSeq (chunk: Buffer, start: number, end: number): number {
  return numberAfter(chunk, SEQ_MARKER, start, end)
}

/** When the upstream wrote the event, in wall-clock milliseconds. */
export function eventTimestamp (chunk: Buffer, start: number, end: number): number {
  return numberAfter(chunk, TIMESTAMP_MARKER, start, end)
}

/** When the upstream closed the previous connection of this stream, if the event says. */
export function eventDropTime (chunk: Buffer, start: number, end: number): number {
  return numberAfter(chunk, DROP_MARKER, start, end)
}

/** The event's `id:`; the bench's producers write it on the first line. */
export function eventId (chunk: Buffer, start: number, end: number): string | undefined {
  if (chunk.compare(ID_PREFIX, 0, ID_PREFIX.length, start, start + ID_PREFIX.length) !== 0) return undefined
  const lineEnd = chunk.indexOf(LF, start)
  return chunk.toString('latin1', start + ID_PREFIX.length, lineEnd === -1 || lineEnd > end ? end : lineEnd)
}

/** The number that follows `marker`, or NaN when the event has none. */
function numberAfter (chunk: Buffer, marker: Buffer, start: number, end: number): number {
  const at = chunk.indexOf(marker, start)
  if (at === -1 || at >= end) return Number.NaN
  const from = at + marker.length
  let to = from
  while (to < end && isNumberByte(chunk[to] as number)) to++
  return Number(chunk.toString('latin1', from, to))
}

function isNumberByte (byte: number): boolean {
  return (byte >= 0x30 && byte <= 0x39) || byte === 0x2e || byte === 0x2d
}
