import { answeredIds } from './json-rpc.js'
import type { SseEvent } from './sse-event.js'
import { serializeEvent } from './sse-serializer.js'

const LF = 0x0a
const CR = 0x0d
const SPACE = 0x20
const LOWER_D = 0x64
const LOWER_E = 0x65
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

/**
 * An event's wire form under a proxy id: its lines (as the relay scanner gives them) with
 * `id: <prefix><seq>\n` after a leading `event:` line, as the proxy has always written them
 * (type, id, data), then the blank line. One Buffer of its own, from Node's pool when small:
 * the history keeps it, and every client is written it as it is.
 */
export function eventWithProxyId (idPrefix: string, seq: number, lines: Buffer): Buffer {
  // A proxy id is base64url and digits: one byte per character.
  const idLine = `id: ${idPrefix}${seq}\n`
  const typeEnd = typeLineEnd(lines)
  const bytes = Buffer.allocUnsafe(idLine.length + lines.length + 1)
  lines.copy(bytes, 0, 0, typeEnd)
  bytes.write(idLine, typeEnd, 'latin1')
  lines.copy(bytes, typeEnd + idLine.length, typeEnd)
  bytes[bytes.length - 1] = LF
  return bytes
}

/** Whether `wire`, an event written by eventWithProxyId, carries these lines. */
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
