import { StaleOwnerError, StoreResetError } from '../../errors.js'
import type { FencedHistoryStore } from '../../cluster/cluster-store.js'
import type { HistoryLimits, HistoryRead, HistoryStats, RecordedEvent } from '../../history/history-store.js'
import type { RedisClient } from './client.js'
import { defineHistoryScripts, MAX_EVICTIONS_PER_SCRIPT, recordedEvent } from './history-scripts.js'
import { activeIndexKey, activeMember, historyKey, historyKeys, liveChannel, metaKey, sessionCountersKey, sessionStreamsKey, streamIndexKey } from './keys.js'
import { dropLeases } from './lease-scripts.js'
import { replyArray, replyNumber, timedOperation, type OperationObserver } from './operations.js'

export interface RedisHistoryStoreOptions {
  readonly keyPrefix: string
  readonly limits: HistoryLimits
  /** The store epoch (RedisStreamRegistry.ensureEpoch), read at every append. */
  readonly epoch: () => string
  readonly onOperation?: OperationObserver
  /**
   * store.durable: after each append, wait for one Redis replica to acknowledge it (WAIT 1).
   * WAIT holds the connection it is sent on, and every command queued behind it, until then.
   */
  readonly durable?: boolean
  /** How long an append waits for that acknowledgement; past it, the append resolves and 'wait' is reported as an error. Default 1000. */
  readonly durableTimeoutMs?: number
  /** How many streams expire() visits, at most: past it, the longest known are forgotten. Default 100 000. */
  readonly maxTrackedStreams?: number
}

const MAX_TRACKED_STREAMS = 100_000
const DURABLE_TIMEOUT_MS = 1000
/** expire() runs this many stream scripts at a time. */
const EXPIRE_CONCURRENCY = 64

function isPosition (seq: number): boolean {
  return Number.isSafeInteger(seq) && seq >= 0
}

/**
 * The history in Redis, shared by the replicas: one Redis Stream per proxied stream,
 * written by one Lua script per append (history-scripts.ts), fenced by the token of
 * the replica that owns the stream (RedisStreamRegistry).
 *
 * stats() counts what this process's own calls added and evicted, as the scripts
 * report it: exact with one replica; with several, each reports its own share, and
 * one that evicts what another appended may go below zero.
 */
export class RedisHistoryStore implements FencedHistoryStore {
  readonly #redis: RedisClient
  readonly #prefix: string
  readonly #limits: HistoryLimits
  readonly #epoch: () => string
  readonly #onOperation: OperationObserver | undefined
  readonly #maxTrackedStreams: number
  readonly #durableTimeoutMs: number | undefined
  readonly #fences = new Map<string, number>()
  /** `<sessionId> <streamId>` of the streams appended to or read here, oldest first: those expire() visits. */
  readonly #touched = new Set<string>()
  #events = 0
  #bytes = 0

  constructor (redis: RedisClient, options: RedisHistoryStoreOptions) {
    this.#redis = redis
    this.#prefix = options.keyPrefix
    this.#limits = options.limits
    this.#epoch = options.epoch
    this.#onOperation = options.onOperation
    this.#maxTrackedStreams = options.maxTrackedStreams ?? MAX_TRACKED_STREAMS
    this.#durableTimeoutMs = options.durable === true ? options.durableTimeoutMs ?? DURABLE_TIMEOUT_MS : undefined
    defineHistoryScripts(redis)
  }

  /** From now on, appends to this stream carry this fencing token: this replica owns it. */
  holdFence (streamId: string, token: number): void {
    this.#fences.set(streamId, token)
  }

  releaseFence (streamId: string): void {
    this.#fences.delete(streamId)
  }

  async append (sessionId: string, streamId: string, events: readonly RecordedEvent[]): Promise<void> {
    if (events.length === 0) return
    const keys = historyKeys(this.#prefix, sessionId, streamId)
    const args: Array<string | number> = [
      this.#fences.get(streamId) ?? 0,
      this.#epoch(),
      Date.now(),
      this.#limits.maxEvents,
      this.#limits.maxBytes,
      this.#limits.replay ? '1' : '0',
      streamId,
      liveChannel(this.#prefix, sessionId, streamId)
    ]
    for (const event of events) args.push(event.seq, event.upstreamId ?? '', event.text)
    const run = async (): Promise<void> => this.#appended(sessionId, streamId, replyArray(await this.#timed('append', async () =>
      await this.#redis.mcpSseAppend(keys.meta, keys.history, keys.sessionCounters, keys.sessionStreams, ...args))))
    await run()
    if (this.#durableTimeoutMs === undefined || await this.#waitForReplica(this.#durableTimeoutMs)) return
    // No replica acknowledged it: the primary that took it may have died before passing it on, and the
    // reconnect reached the replica promoted instead. Sent again, it adds nothing where it is, and goes
    // in where it was lost, so that what clients are sent next is in Redis.
    await run()
  }

  #appended (sessionId: string, streamId: string, reply: unknown[]): void {
    const [status, eventsDelta, bytesDelta, , lostThrough] = reply
    if (status === 'ok') {
      this.#count(eventsDelta, bytesDelta)
      // Redis lost writes it had acknowledged (the script booked them as evicted): counted as a failed operation.
      if (replyNumber(lostThrough) > 0) this.#onOperation?.('lost-writes', 'error', 0)
      this.#touch(sessionId, streamId)
      return
    }
    if (status === 'reset') throw new StoreResetError(streamId)
    throw new StaleOwnerError(streamId, status === 'fenced' || status === 'conflict' ? status : 'gap')
  }

  async readAfter (sessionId: string, streamId: string, afterSeq: number): Promise<HistoryRead> {
    if (!isPosition(afterSeq)) return { status: 'unknown' }
    const reply = replyArray(await this.#timed('read', async () => await this.#redis.mcpSseRead(
      metaKey(this.#prefix, sessionId, streamId),
      historyKey(this.#prefix, sessionId, streamId),
      afterSeq,
      afterSeq + 1
    )))
    const [status, entries] = reply
    if (status === 'found') {
      this.#touch(sessionId, streamId)
      return { status: 'found', events: replyArray(entries).map(recordedEvent) }
    }
    if (status === 'evicted') {
      this.#touch(sessionId, streamId)
      return { status: 'evicted' }
    }
    return { status: 'unknown' }
  }

  async upstreamIdAt (sessionId: string, streamId: string, seq: number): Promise<string | undefined> {
    if (!isPosition(seq) || seq === 0) return undefined
    const entries = await this.#timed('upstream-id', async () =>
      await this.#redis.xrange(historyKey(this.#prefix, sessionId, streamId), seq, seq))
    return entries[0] === undefined ? undefined : recordedEvent(entries[0]).upstreamId
  }

  async expire (now: number): Promise<void> {
    const cutoff = now - this.#limits.ttlMs
    const streams = [...this.#touched]
    for (let start = 0; start < streams.length; start += EXPIRE_CONCURRENCY) {
      await Promise.all(streams.slice(start, start + EXPIRE_CONCURRENCY).map(async (member) => await this.#expireStream(member, cutoff)))
    }
  }

  async dropStream (sessionId: string, streamId: string): Promise<void> {
    const keys = historyKeys(this.#prefix, sessionId, streamId)
    const reply = await this.#timed('drop', async () => {
      const dropped = await this.#redis.mcpSseDropStream(keys.meta, keys.history, keys.sessionCounters, keys.sessionStreams, streamId)
      if (dropped !== null) await dropLeases(this.#redis, this.#prefix, sessionId, [streamId])
      return dropped
    })
    this.#forget(sessionId, streamId)
    if (reply === null) return
    const [events, bytes] = replyArray(reply)
    this.#count(-replyNumber(events), -replyNumber(bytes))
    await this.#dropIndexes(sessionId, [streamId])
  }

  async dropSession (sessionId: string): Promise<void> {
    const reply = replyArray(await this.#timed('drop', async () => {
      const session = replyArray(await this.#redis.mcpSseDropSession(
        sessionCountersKey(this.#prefix, sessionId),
        sessionStreamsKey(this.#prefix, sessionId),
        metaKey(this.#prefix, sessionId, ''),
        historyKey(this.#prefix, sessionId, '')
      ))
      await dropLeases(this.#redis, this.#prefix, sessionId, streamIdsOf(session))
      return session
    }))
    const [events, bytes] = reply
    const dropped = streamIdsOf(reply)
    this.#count(-replyNumber(events), -replyNumber(bytes))
    for (const streamId of dropped) this.#forget(sessionId, streamId)
    if (dropped.length > 0) await this.#dropIndexes(sessionId, dropped)
  }

  stats (): HistoryStats {
    return { events: this.#events, bytes: this.#bytes }
  }

  /** Forgets what this process knew; the Redis client is the caller's, and stays open. */
  async close (): Promise<void> {
    this.#fences.clear()
    this.#touched.clear()
    this.#events = 0
    this.#bytes = 0
  }

  /** Whether a replica acknowledged the append in time. One that none did is reported, not refused. */
  async #waitForReplica (timeoutMs: number): Promise<boolean> {
    return await this.#timed('wait', async () => {
      const replicas = await this.#redis.wait(1, timeoutMs)
      if (replicas < 1) throw new Error('no Redis replica acknowledged the append in time')
      return true
    }).catch(() => false)
  }

  async #expireStream (member: string, cutoff: number): Promise<void> {
    const space = member.indexOf(' ')
    const sessionId = member.slice(0, space)
    const streamId = member.slice(space + 1)
    const keys = historyKeys(this.#prefix, sessionId, streamId)
    const reply = await this.#timed('expire', async () =>
      await this.#redis.mcpSseExpire(keys.meta, keys.history, keys.sessionCounters, cutoff, MAX_EVICTIONS_PER_SCRIPT))
    if (reply === null) {
      this.#touched.delete(member)
      return
    }
    const [events, bytes] = replyArray(reply)
    this.#count(-replyNumber(events), -replyNumber(bytes))
  }

  /** The stream index lives in the stream's own slot, the active index in its own: separate commands. */
  async #dropIndexes (sessionId: string, streamIds: readonly string[]): Promise<void> {
    await this.#timed('drop-index', async () => await Promise.all([
      ...streamIds.map(async (streamId) =>
        await this.#redis.mcpSseDeleteIfEqual(streamIndexKey(this.#prefix, streamId), sessionId)),
      this.#redis.zrem(activeIndexKey(this.#prefix, sessionId), ...streamIds.map((streamId) => activeMember(sessionId, streamId)))
    ]))
  }

  #count (events: unknown, bytes: unknown): void {
    this.#events += replyNumber(events)
    this.#bytes += replyNumber(bytes)
  }

  #touch (sessionId: string, streamId: string): void {
    const member = activeMember(sessionId, streamId)
    if (this.#touched.has(member)) return
    this.#touched.add(member)
    for (const oldest of this.#touched) {
      if (this.#touched.size <= this.#maxTrackedStreams) break
      this.#touched.delete(oldest)
    }
  }

  #forget (sessionId: string, streamId: string): void {
    this.#touched.delete(activeMember(sessionId, streamId))
    this.#fences.delete(streamId)
  }

  async #timed<T> (op: string, call: () => Promise<T>): Promise<T> {
    return await timedOperation(this.#onOperation, op, call)
  }
}

/** The stream ids of a drop-session reply, `{events, bytes, streamId...}`. */
function streamIdsOf (reply: readonly unknown[]): string[] {
  return reply.slice(2).filter((streamId): streamId is string => typeof streamId === 'string')
}
