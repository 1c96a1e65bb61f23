import type { EventBatch } from '../../lib/history/event-batch.js'
import { BatchBuilder } from '../../lib/session/batch-builder.js'
import { eventIdPrefix, mintEpoch, mintStreamId } from '../../lib/session/event-id.js'
import { createRelayScanner } from '../../lib/wire/sse-byte-scanner.js'
import { eventWriter, wallClockMs } from '../wire/event-payload.js'

// The size of the upstream chunks the proxy parses, as the bench upstream writes them at full speed.
const CHUNK_BYTES = 16 * 1024

/**
 * Produces `count` events the way the proxy does, through its own byte scanner and
 * recording step, so that what the trackers keep is shaped as on the hot path (one
 * batch per upstream chunk). Events come a chunk at a time.
 */
export function relayEvents (count: number, eventBytes: number, onChunk: (batch: EventBatch) => void): void {
  const streamId = mintStreamId()
  const epoch = mintEpoch()
  const writeEvent = eventWriter(eventBytes)
  const perChunk = Math.max(1, Math.floor(CHUNK_BYTES / eventBytes))
  let seq = 0
  const builder = new BatchBuilder(eventIdPrefix(streamId, epoch))
  const parser = createRelayScanner({
    onEvent: (lines, id) => builder.event(++seq, lines, id ?? ''),
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
    const batch = builder.take()
    if (batch !== undefined) onChunk(batch)
  }
}
