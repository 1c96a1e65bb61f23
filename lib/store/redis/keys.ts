/**
 * The names of every Redis key and channel the proxy uses. A session's keys all
 * carry the hash tag `{<sessionId>}`, so that in Redis Cluster they sit in one slot
 * and one script can touch them all; no command or script names keys of two slots. Session and stream ids are base64url: they
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

/**
 * The active index is this many sorted sets, each with a hash tag of its own: in Redis
 * Cluster they spread over the nodes, so that the lease renewals of every stream do not
 * all go to one. A sweep reads them all.
 */
export const ACTIVE_INDEX_SHARDS = 16

/**
 * Sorted set of `<sessionId> <streamId>` scored by lease expiry (ms): the unfinished streams
 * of the sessions of one shard, chosen by the session id (FNV-1a).
 */
export function activeIndexKey (prefix: string, sessionId: string): string {
  let hash = 0x811c9dc5
  for (let index = 0; index < sessionId.length; index++) {
    hash ^= sessionId.charCodeAt(index)
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  return activeIndexShardKey(prefix, hash % ACTIVE_INDEX_SHARDS)
}

function activeIndexShardKey (prefix: string, shard: number): string {
  return `${prefix}{active:${shard}}`
}

/** Every shard of the active index. */
export function activeIndexKeys (prefix: string): string[] {
  return Array.from({ length: ACTIVE_INDEX_SHARDS }, (_, shard) => activeIndexShardKey(prefix, shard))
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

/**
 * String: the store epoch, a random value that changes when Redis loses its data. One key,
 * in Redis Cluster too: it is read once per sweep, never per event.
 */
export function epochKey (prefix: string): string {
  return `${prefix}epoch`
}
