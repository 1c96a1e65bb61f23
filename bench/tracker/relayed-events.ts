import { eventIdPrefix, mintEpoch, mintStreamId } from '../../lib/session/event-id.js'
import { createSseParser } from '../../lib/wire/sse-parser.js'
import { serializeEvent } from '../../lib/wire/sse-serializer.js'
import { eventWriter, wallClockMs } from '../wire/event-payload.js'

/** One event as the proxy holds it after parsing and serializing: what the trackers are given. */
export interface RelayedEvent {
  readonly seq: number
  readonly upstreamId: string
  readonly data: string
  /** The event as clients receive it, proxy id included. */
  readonly text: string
}

// The size of the upstream chunks the proxy parses, as the bench upstream writes them at full speed.
const CHUNK_BYTES = 16 * 1024

/**
 * Produces `count` events the way the proxy does, through its own SSE parser and
 * serializer, so that the strings the trackers keep are shaped as on the hot path
 * (slices of a decoded chunk, concatenations). Events come a chunk at a time.
 */
export function relayEvents (count: number, eventBytes: number, onChunk: (events: RelayedEvent[]) => void): void {
  const streamId = mintStreamId()
  const epoch = mintEpoch()
  const writeEvent = eventWriter(eventBytes)
  const perChunk = Math.max(1, Math.floor(CHUNK_BYTES / eventBytes))
  let batch: RelayedEvent[] = []
  let seq = 0
  const parser = createSseParser({
    onEvent: (event) => {
      seq++
      batch.push({ seq, upstreamId: event.id ?? '', data: event.data, text: serializeEvent({ id: eventIdPrefix(streamId, epoch) + seq, data: event.data }) })
    },
    onComment: () => {},
    onRetry: () => {},
    onMalformedLine: () => {},
    onOversizedEvent: () => { throw new Error('an event went past the parser limit') }
  }, 1024 * 1024)
  for (let first = 1; first <= count; first += perChunk) {
    const timestamp = wallClockMs().toFixed(3)
    let text = ''
    for (let upstreamSeq = first; upstreamSeq < Math.min(first + perChunk, count + 1); upstreamSeq++) text += writeEvent(upstreamSeq, timestamp)
    parser.feed(Buffer.from(text))
    onChunk(batch)
    batch = []
  }
}
