import { LocalHistoryStore } from '../../lib/history/local-history-store.js'
import { UpstreamDedupe } from '../../lib/session/upstream-dedupe.js'
import { relayEvents, type RelayedEvent } from './relayed-events.js'

// Distinct events cycled through.
const POOL_SIZE = 4096
const BATCH = 10_000
const DEDUPE_WINDOW = 1000
const HISTORY_LIMITS = { maxEvents: 1000, maxBytes: 1024 * 1024, ttlMs: 300_000, replay: true }

export interface TrackerOpRates {
  /** What dedupe costs per event while a connection runs (`remember`), per second, with the default window. */
  readonly dedupe: number
  /** One-event `append` calls per second, with the default limits (so evicting as it goes). */
  readonly historyAppend: number
}

export function trackerOpRates (durationMs: number, eventBytes: number): TrackerOpRates {
  const pool: RelayedEvent[] = []
  relayEvents(POOL_SIZE, eventBytes, (batch) => pool.push(...batch))
  return {
    dedupe: opsPerSecond(durationMs, dedupeOperation(pool)),
    historyAppend: opsPerSecond(durationMs, historyAppendOperation(pool))
  }
}

function dedupeOperation (pool: readonly RelayedEvent[]): (index: number) => void {
  const dedupe = new UpstreamDedupe(DEDUPE_WINDOW)
  return (index) => {
    dedupe.remember((pool[index % POOL_SIZE] as RelayedEvent).upstreamId, index)
  }
}

function historyAppendOperation (pool: readonly RelayedEvent[]): (index: number) => void {
  const store = new LocalHistoryStore(HISTORY_LIMITS)
  let seq = 0
  return (index) => {
    const event = pool[index % POOL_SIZE] as RelayedEvent
    store.append('bench-session', 'bench-stream', [{ seq: ++seq, upstreamId: event.upstreamId, text: event.text }])
  }
}

/** Runs `operation` in batches for a warm-up, then for `durationMs`, and counts. */
function opsPerSecond (durationMs: number, operation: (index: number) => void): number {
  let index = 0
  const runFor = (ms: number): number => {
    const start = performance.now()
    let done = 0
    while (performance.now() - start < ms) {
      for (let count = 0; count < BATCH; count++) operation(index++)
      done += BATCH
    }
    return done / ((performance.now() - start) / 1000)
  }
  runFor(durationMs / 4)
  return runFor(durationMs)
}
