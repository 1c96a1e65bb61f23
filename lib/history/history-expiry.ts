import type { FastifyBaseLogger } from 'fastify'
import type { HistoryStore } from './history-store.js'

/**
 * Evicts expired events a few times per TTL, so that the history of a quiet
 * stream ages out too. Returns the function that stops it.
 */
export function scheduleHistoryExpiry (history: HistoryStore, ttlMs: number, log: FastifyBaseLogger): () => void {
  const everyMs = Math.max(1000, Math.min(10_000, ttlMs / 4))
  const timer = setInterval(() => {
    history.expire(Date.now()).catch((error: unknown) => log.error({ err: error }, 'could not evict expired history'))
  }, everyMs)
  timer.unref()
  return () => clearInterval(timer)
}
