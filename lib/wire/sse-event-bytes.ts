import { answeredIds } from './json-rpc.js'
import { LF, CR, SPACE, LOWER_D } from './sse-bytes.js'

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
