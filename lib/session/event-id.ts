import { randomBytes } from 'node:crypto'

// 128 random bits: a stream id is the capability to resume it, so it must be unguessable.
const STREAM_ID_BYTES = 16
const EPOCH_BYTES = 6
const EVENT_ID = /^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{8})\.([1-9]\d{0,14})$/

export interface EventPosition {
  streamId: string
  /** The store's epoch when the event was recorded: a store that lost its data has another one. */
  epoch: string
  seq: number
}

export function mintStreamId (): string {
  return randomBytes(STREAM_ID_BYTES).toString('base64url')
}

/** A store epoch: 8 base64url characters, new whenever a store starts empty. */
export function mintEpoch (): string {
  return randomBytes(EPOCH_BYTES).toString('base64url')
}

/**
 * A proxy event id names its stream, the store epoch and its position in the
 * stream: `<stream id>.<epoch>.<seq>`. This is what comes before the seq.
 */
export function eventIdPrefix (streamId: string, epoch: string): string {
  return `${streamId}.${epoch}.`
}

/** The position a `Last-Event-ID` names, or undefined when it is not a proxy event id. */
export function parseEventId (value: string): EventPosition | undefined {
  const match = EVENT_ID.exec(value)
  if (match === null) return undefined
  return { streamId: match[1] as string, epoch: match[2] as string, seq: Number(match[3]) }
}
