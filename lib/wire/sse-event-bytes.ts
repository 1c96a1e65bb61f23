import { answeredIds } from './json-rpc.js'
import type { SseEvent } from './sse-event.js'
import { serializeEvent } from './sse-serializer.js'
import { CR, LF, LOWER_D, LOWER_E, SPACE } from './sse-bytes.js'

const RESULT = Buffer.from('"result"')
const ERROR = Buffer.from('"error"')

/**
 * The data of an event as the relay scanner gives it (sse-byte-scanner.ts: `event:` and
 * `data:` lines, each ending in a line break), decoded: for the few events whose text is read.
 */
export function eventData (bytes: Buffer): string {
  let data: string | undefined
  let start = 0
  for (let lf = bytes.indexOf(LF); lf !== -1; lf = bytes.indexOf(LF, start)) {
    // The scanner keeps only `event` and `data` lines: a `d` starts a data line.
    if (bytes[start] === LOWER_D) {
      const contentEnd = lf > start && bytes[lf - 1] === CR ? lf - 1 : lf
      const valueStart = start + 4 === contentEnd ? contentEnd : bytes[start + 5] === SPACE ? start + 6 : start + 5
      const value = bytes.toString('utf8', valueStart, contentEnd)
      data = data === undefined ? value : `${data}\n${value}`
    }
    start = lf + 1
  }
  return data ?? ''
}

/** The ids of the JSON-RPC responses an event carries; its data is decoded only when the bytes may hold one. */
export function answeredIdsInEvent (bytes: Buffer): string[] {
  // Most events on a stream are notifications.
  if (bytes.indexOf(RESULT) === -1 && bytes.indexOf(ERROR) === -1) return []
  return answeredIds(eventData(bytes))
}

/** What comes before the seq in an event's proxy id line: `id: <stream id>.<epoch>.`, as bytes, made once per stream. */
export function idLineStart (idPrefix: string): Buffer {
  return Buffer.from(`id: ${idPrefix}`, 'latin1')
}

/** Whether `wire`, an event under a proxy id (batch-builder.ts), carries these lines. */
export function hasLines (wire: Buffer, lines: Buffer): boolean {
  const typeEnd = typeLineEnd(lines)
  const idEnd = wire.indexOf(LF, typeEnd) + 1
  return wire.length - (idEnd - typeEnd) - 1 === lines.length &&
    wire.compare(lines, 0, typeEnd, 0, typeEnd) === 0 &&
    wire.compare(lines, typeEnd, lines.length, idEnd, wire.length - 1) === 0
}

/** Where a leading `event:` line ends (the scanner keeps only `event` and `data` lines: an `e` starts one); 0 for none. */
export function typeLineEnd (lines: Buffer): number {
  return lines[0] === LOWER_E ? lines.indexOf(LF) + 1 : 0
}

/** The lines of an event the proxy makes itself (a gap notice, a notification), in the scanner's form. */
export function eventLines (event: SseEvent): Buffer {
  const wire = serializeEvent({ event: event.event, data: event.data })
  // Without the blank line, as the scanner gives an event.
  return Buffer.from(wire.slice(0, -1))
}
