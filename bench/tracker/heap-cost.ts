import { LocalHistoryStore } from '../../lib/history/local-history-store.js'
import { relayEvents } from './relayed-events.js'

const HOUR_MS = 3_600_000
const SESSION = 'bench-session'
const STREAM = 'bench-stream'

/** Bytes per 1000 events, on the V8 heap and off it. */
export interface HistoryCost {
  readonly heap: number
  /** process.memoryUsage().external, which includes arrayBuffers (Node's Buffers). */
  readonly external: number
}

/**
 * Bytes the history holds per 1000 events, from heapUsed and external after
 * forced GCs before and after recording `events` (the process must run with
 * --expose-gc). `replay` false is the ids-only mode.
 */
export function historyCostPer1000 (events: number, eventBytes: number, replay: boolean): HistoryCost {
  const before = memoryAfterGc()
  const store = new LocalHistoryStore({ maxEvents: events, maxBytes: Number.MAX_SAFE_INTEGER, ttlMs: HOUR_MS, replay })
  relayEvents(events, eventBytes, (batch) => {
    store.append(SESSION, STREAM, batch.map(({ seq, upstreamId, text }) => ({ seq, upstreamId, text })))
  })
  const after = memoryAfterGc()
  if (store.stats().events !== events) throw new Error(`the history kept ${store.stats().events} of ${events} events`)
  return { heap: (after.heapUsed - before.heapUsed) / events * 1000, external: (after.external - before.external) / events * 1000 }
}

function memoryAfterGc (): NodeJS.MemoryUsage {
  const gc = globalThis.gc
  if (gc === undefined) throw new Error('run with --expose-gc')
  gc()
  gc()
  return process.memoryUsage()
}
