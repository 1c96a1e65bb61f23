import { randomBytes } from 'node:crypto'

// 128 random bits: a stream id is the capability to resume it, so it must be unguessable.
const STREAM_ID_BYTES = 16
const EVENT_ID = /^([A-Za-z0-9_-]{22})\.([1-9]\d{0,14})$/

export interface EventPosition {
  streamId: string
  seq: number
}

export function mintStreamId (): string {
  return randomBytes(STREAM_ID_BYTES).toString('base64url')
}

/** A proxy event id names its stream and its position in it: `<stream id>.<seq>`. */
export function formatEventId (streamId: string, seq: number): string {
  return `${streamId}.${seq}`
}

/** The position a `Last-Event-ID` names, or undefined when it is not a proxy event id. */
export function parseEventId (value: string): EventPosition | undefined {
  const match = EVENT_ID.exec(value)
  if (match === null) return undefined
  return { streamId: match[1] as string, seq: Number(match[2]) }
}
