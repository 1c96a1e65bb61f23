import type { RecordedEvent } from '../history/history-store.js'
import type { StreamEnvironment } from './stream-environment.js'

/**
 * Appends a stream's events to its history store: undefined once stored, a promise
 * while the store does I/O. A failure is logged, never thrown. With a shared store,
 * an event that is not recorded must not go out: another replica would go on from
 * the recorded position, and give its seq to another event; `onRefused` lets the
 * stream go.
 */
export function storeWriter (
  env: Pick<StreamEnvironment, 'store' | 'log' | 'upstreamUrl' | 'ownership'>,
  sessionId: string,
  streamId: string,
  onRefused: () => void
): (recorded: readonly RecordedEvent[]) => Promise<void> | undefined {
  const { store, log, upstreamUrl, ownership } = env
  const failed = (error: unknown): void => {
    if (isOwnershipLost(error) || ownership !== undefined) {
      log.warn({ upstream: upstreamUrl, streamId, err: error }, 'the store refused this replica\'s events; it stops reading the upstream')
      onRefused()
      return
    }
    log.error({ err: error, streamId }, 'could not record events; they are sent, but cannot be replayed')
  }
  return (recorded) => {
    if (recorded.length === 0) return undefined
    try {
      return store.append(sessionId, streamId, recorded)?.catch(failed)
    } catch (error) {
      failed(error)
      return undefined
    }
  }
}

function isOwnershipLost (error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code
  return code === 'FST_MCP_SSE_STALE_OWNER' || code === 'FST_MCP_SSE_STORE_RESET'
}
