/**
 * The names of every Redis key and channel the proxy uses. A session's keys all
 * carry the hash tag `{<sessionId>}`, so that in Redis Cluster they sit in one slot
 * and one script can touch them all. Session and stream ids are base64url: they
 * hold no brace, space or colon, so names built from them cannot collide.
 */

/** The keys of one stream's history, all in its session's slot. */
export interface HistoryKeys {
  /** Hash: last, evicted, bytes, cursor, fence, epoch, finished, desc. */
  readonly meta: string
  /** Redis Stream of the events, entry id `<seq>-<order>`. */
  readonly history: string
  /** Hash of the session's counters: order, bytes. */
  readonly sessionCounters: string
  /** Set of the session's stream ids. */
  readonly sessionStreams: string
}

function sessionTag (prefix: string, sessionId: string): string {
  return `${prefix}{${sessionId}}:`
}

export function metaKey (prefix: string, sessionId: string, streamId: string): string {
  return `${sessionTag(prefix, sessionId)}m:${streamId}`
}

export function historyKey (prefix: string, sessionId: string, streamId: string): string {
  return `${sessionTag(prefix, sessionId)}h:${streamId}`
}

export function sessionCountersKey (prefix: string, sessionId: string): string {
  return `${sessionTag(prefix, sessionId)}s`
}

export function sessionStreamsKey (prefix: string, sessionId: string): string {
  return `${sessionTag(prefix, sessionId)}streams`
}

/** String `<owner>:<token>`, with an expiry: the replica that reads the upstream. */
export function leaseKey (prefix: string, sessionId: string, streamId: string): string {
  return `${sessionTag(prefix, sessionId)}lease:${streamId}`
}

export function historyKeys (prefix: string, sessionId: string, streamId: string): HistoryKeys {
  return {
    meta: metaKey(prefix, sessionId, streamId),
    history: historyKey(prefix, sessionId, streamId),
    sessionCounters: sessionCountersKey(prefix, sessionId),
    sessionStreams: sessionStreamsKey(prefix, sessionId)
  }
}

/**
 * Where the new events of a stream are published, one message per append:
 * `<first seq> <byte length of each text, comma-separated>\n<the texts>`; its end as `end <last>`.
 */
export function liveChannel (prefix: string, sessionId: string, streamId: string): string {
  return `${sessionTag(prefix, sessionId)}live:${streamId}`
}

/**
 * String, with an expiry: a client that followed the stream from another replica left
 * less than a grace period ago, and may be on its way back.
 */
export function recentlyFollowedKey (prefix: string, sessionId: string, streamId: string): string {
  return `${sessionTag(prefix, sessionId)}followed:${streamId}`
}

/** String: the session that owns a stream, for clients that resume with only a Last-Event-ID. In the stream's own slot. */
export function streamIndexKey (prefix: string, streamId: string): string {
  return `${prefix}{${streamId}}:sid`
}

/** Sorted set of `<sessionId> <streamId>` scored by lease expiry (ms): the unfinished streams. */
export function activeIndexKey (prefix: string): string {
  return `${prefix}active`
}

export function activeMember (sessionId: string, streamId: string): string {
  return `${sessionId} ${streamId}`
}

/** Splits an active index member; undefined for anything this code did not write. */
export function parseActiveMember (member: string): { sessionId: string, streamId: string } | undefined {
  const space = member.indexOf(' ')
  if (space <= 0 || space === member.length - 1) return undefined
  return { sessionId: member.slice(0, space), streamId: member.slice(space + 1) }
}

/** Hash: a session's record, for the replicas that did not open it (session-records.ts). */
export function sessionKey (prefix: string, sessionId: string): string {
  return `${sessionTag(prefix, sessionId)}session`
}

/** String: the store epoch, a random value that changes when Redis loses its data. */
export function epochKey (prefix: string): string {
  return `${prefix}epoch`
}
