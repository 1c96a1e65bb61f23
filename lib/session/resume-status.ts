import type { SseEvent } from '../wire/sse-event.js'

/** Why a Last-Event-ID could not be served. */
export type ResumeMiss = 'evicted' | 'unknown' | 'malformed' | 'not-replayable' | 'store-reset'

/**
 * Why the proxy reconnected an upstream stream without knowing that the upstream
 * sent again what it sent meanwhile: how the connection ended, a takeover from a
 * replica that died, or a new upstream session (which can replay nothing).
 */
export type GapCause = 'ended' | 'failed' | 'stalled' | 'takeover' | 'session-reestablished'

/** The response header that tells a resuming client whether it got everything it missed. */
export const RESUME_STATUS_HEADER = 'x-resume-status'
/** The in-band event that says the same; MCP clients and EventSource ignore unknown event types. */
export const RESUME_STATUS_EVENT = 'resume-status'

// How a recorded gap notice starts once serialized (the type line comes first).
const GAP_NOTICE_PREFIX = `event: ${RESUME_STATUS_EVENT}\n`

/**
 * `recovered`, with how many upstream gaps the replayed events cross, or
 * `unrecoverable; reason=<miss>`.
 */
export function resumeStatusValue (miss: ResumeMiss | undefined, upstreamGaps = 0): string {
  if (miss !== undefined) return `unrecoverable; reason=${miss}`
  return upstreamGaps === 0 ? 'recovered' : `recovered; upstream-gaps=${upstreamGaps}`
}

/** The first event of a stream whose Last-Event-ID could not be served; it carries no id. */
export function missNotice (miss: ResumeMiss): SseEvent {
  return { event: RESUME_STATUS_EVENT, data: `{"recovered":false,"reason":"${miss}"}` }
}

/**
 * The event recorded where an upstream may have sent events the proxy never got.
 * It carries a proxy id like any event, so a later resume replays it in its place.
 */
export function gapNotice (cause: GapCause): SseEvent {
  return { event: RESUME_STATUS_EVENT, data: `{"recovered":false,"reason":"upstream-gap","cause":"${cause}"}` }
}

/** How many of these recorded events are gap notices (a miss notice is never recorded). */
export function countGapNotices (events: ReadonlyArray<{ readonly text: string }>): number {
  let gaps = 0
  for (const event of events) {
    if (event.text.startsWith(GAP_NOTICE_PREFIX)) gaps++
  }
  return gaps
}
