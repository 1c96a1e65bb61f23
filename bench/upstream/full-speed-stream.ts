import type { ServerResponse } from 'node:http'
import { wallClockMs, type EventWriter } from '../wire/event-payload.js'
import type { StreamRegistry } from './stream-registry.js'

// A busy server's write size: events are batched into writes of about this many bytes.
const WRITE_BYTES = 16 * 1024
// Writes per event-loop turn, so that one fast reader does not starve the other streams.
const WRITES_PER_TURN = 8

/**
 * Writes events as fast as the socket takes them: the next write waits only for
 * 'drain'. Every restart goes through setImmediate: a write the kernel takes at
 * once emits 'drain' from a nextTick, and pumping from there would chain ticks
 * forever, starving timers and IPC.
 */
export function streamAtFullSpeed (response: ServerResponse, writeEvent: EventWriter, eventBytes: number, firstSeq: number, registry: StreamRegistry): void {
  const eventsPerWrite = Math.max(1, Math.floor(WRITE_BYTES / eventBytes))
  let seq = firstSeq - 1
  const pumpLater = (): void => { setImmediate(pump) }
  const pump = (): void => {
    for (let writes = 0; writes < WRITES_PER_TURN; writes++) {
      if (response.destroyed) return
      const timestamp = wallClockMs().toFixed(3)
      let chunk = ''
      for (let index = 0; index < eventsPerWrite; index++) chunk += writeEvent(++seq, timestamp)
      registry.eventsWritten += eventsPerWrite
      if (!response.write(chunk)) {
        response.once('drain', pumpLater)
        return
      }
    }
    pumpLater()
  }
  pump()
}
