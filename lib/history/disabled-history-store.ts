import type { HistoryRead, HistoryStats, HistoryStore } from './history-store.js'

const NOTHING_KEPT: HistoryRead = { status: 'unknown' }
const NO_STATS: HistoryStats = { events: 0, bytes: 0 }

/** `history.enabled: false`: the store that keeps nothing, so every resume is a miss the client is told about. */
export class DisabledHistoryStore implements HistoryStore {
  append (): undefined { return undefined }
  async readAfter (): Promise<HistoryRead> { return NOTHING_KEPT }
  async upstreamIdAt (): Promise<string | undefined> { return undefined }
  async expire (): Promise<void> {}
  async dropStream (): Promise<void> {}
  async dropSession (): Promise<void> {}
  stats (): HistoryStats { return NO_STATS }
  async close (): Promise<void> {}
}
