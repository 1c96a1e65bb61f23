import { LocalHistoryStore } from '../../lib/history/local-history-store.js'
import { relayEvents } from './relayed-events.js'

const HOUR_MS = 3_600_000
const SESSION = 'bench-session'
const STREAM = 'bench-stream'

/**
 * Bytes the history holds per 1000 events, on the V8 heap and off it (Buffers), from
 * heapUsed + arrayBuffers after forced GCs before and after recording `events` (the
 * process must run with --expose-gc). `replay` false is the ids-only mode.
 */
export function historyHeapPer1000 (events: number, eventBytes: number, replay: boolean): number {
  const before = heapAfterGc()
  const store = new LocalHistoryStore({ maxEvents: events, maxBytes: Number.MAX_SAFE_INTEGER, ttlMs: HOUR_MS, replay })
  relayEvents(events, eventBytes, (batch) => {
    store.append(SESSION, STREAM, batch.map(({ seq, upstreamId, bytes }) => ({ seq, upstreamId, bytes })))
  })
  const after = heapAfterGc()
  if (store.stats().events !== events) throw new Error(`the history kept ${store.stats().events} of ${events} events`)
  return (after - before) / events * 1000
}

function heapAfterGc (): number {
  const gc = globalThis.gc
  if (gc === undefined) throw new Error('run with --expose-gc')
  gc()
  gc()
  const { heapUsed, arrayBuffers } = process.memoryUsage()
  return heapUsed + arrayBuffers
}
