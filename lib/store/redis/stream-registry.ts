import { randomBytes } from 'node:crypto'
import type { LeaseToRenew, StreamPosition, StreamRef, StreamRegistry } from '../../cluster/stream-registry.js'
import type { RedisClient } from './client.js'
import { activeIndexKey, activeIndexKeys, activeMember, epochKey, historyKey, leaseKey, liveChannel, metaKey, parseActiveMember, sessionCountersKey, sessionStreamsKey, streamIndexKey } from './keys.js'
import { defineLeaseScripts, RENEW_KEYS_IN_SLOT, RENEW_KEYS_WITH_INDEXES } from './lease-scripts.js'
import { replyArray, timedOperation, type OperationObserver } from './operations.js'
import { defineRegistryScripts } from './registry-scripts.js'

export interface RedisStreamRegistryOptions {
  readonly keyPrefix: string
  /**
   * How long a stream's keys outlive the last sign of it (registration, lease renewal,
   * its end), so that Redis never keeps a stream whose replicas are all gone.
   */
  readonly retainMs: number
  readonly onOperation?: OperationObserver
}

/** 6 random bytes: 8 base64url characters. */
function freshEpoch (): string {
  return randomBytes(6).toString('base64url')
}

/**
 * At most this many leases per renewal script: about 8 commands each, so that one call holds
 * Redis for a millisecond or two, not more.
 */
const RENEW_BATCH = 200

function chunks<Item> (items: readonly Item[], size: number): Item[][] {
  const result: Item[][] = []
  for (let start = 0; start < items.length; start += size) result.push(items.slice(start, start + size))
  return result
}

function integerField (value: string | undefined): number {
  const parsed = Number(value ?? 0)
  return Number.isSafeInteger(parsed) ? parsed : 0
}

/**
 * The stream registry in Redis. The active index lists the unfinished streams by
 * lease expiry, so that the others find the streams whose owner died.
 */
export class RedisStreamRegistry implements StreamRegistry {
  readonly #redis: RedisClient
  readonly #prefix: string
  readonly #onOperation: OperationObserver | undefined
  readonly #retainMs: number

  constructor (redis: RedisClient, options: RedisStreamRegistryOptions) {
    this.#redis = redis
    this.#prefix = options.keyPrefix
    this.#retainMs = options.retainMs
    this.#onOperation = options.onOperation
    defineRegistryScripts(redis)
    defineLeaseScripts(redis)
  }

  /** The store epoch: the one in Redis, or a new one when Redis has none (first start, or it lost its data). */
  async ensureEpoch (): Promise<string> {
    const key = epochKey(this.#prefix)
    return await this.#timed('epoch', async () => {
      const current = await this.#redis.get(key)
      if (current !== null) return current
      // Another replica may win the race: then its value is the epoch (SET NX GET, Redis 7.0+).
      const fresh = freshEpoch()
      return await this.#redis.set(key, fresh, 'NX', 'GET') ?? fresh
    })
  }

  /** Records a new stream; a stream already registered keeps its position, and gets the new descriptor. */
  async register (sessionId: string, streamId: string, descriptor: string, epoch: string): Promise<void> {
    await this.#timed('register', async () => await Promise.all([
      this.#redis.mcpSseRegister(
        metaKey(this.#prefix, sessionId, streamId),
        historyKey(this.#prefix, sessionId, streamId),
        sessionStreamsKey(this.#prefix, sessionId),
        epoch,
        descriptor,
        streamId,
        this.#retainMs
      ),
      this.#redis.set(streamIndexKey(this.#prefix, streamId), sessionId, 'PX', this.#retainMs)
    ]))
  }

  /** The session that owns a stream, for a client that resumes with only a Last-Event-ID. */
  async sessionOf (streamId: string): Promise<string | undefined> {
    const sessionId = await this.#timed('session-of', async () => await this.#redis.get(streamIndexKey(this.#prefix, streamId)))
    return sessionId ?? undefined
  }

  /** Takes the lease of an unfinished stream that has none; its fencing token, or undefined. */
  async claim (sessionId: string, streamId: string, owner: string, ttlMs: number, now: number): Promise<number | undefined> {
    const token = await this.#timed('claim', async () => await this.#redis.mcpSseClaim(
      metaKey(this.#prefix, sessionId, streamId),
      leaseKey(this.#prefix, sessionId, streamId),
      owner,
      ttlMs
    ))
    if (token === -1) {
      await this.forgetActive(sessionId, streamId)
      return undefined
    }
    // 0, held: due in the index all the same (the owner's clock behind ours), so look again a lease later, not at every sweep.
    await this.#markActive(sessionId, streamId, now + ttlMs)
    return typeof token === 'number' && token > 0 ? token : undefined
  }

  /** Extends the lease, only for the holder of this token; false once it lost it. */
  async renew (sessionId: string, streamId: string, owner: string, token: number, ttlMs: number, now: number): Promise<boolean> {
    const [renewed] = await this.renewMany(owner, [{ sessionId, streamId, token }], ttlMs, now)
    return renewed === true
  }

  /**
   * Extends many leases at once, each only for the holder of its token; true or false for each, in order.
   * On one Redis, one script call per RENEW_BATCH leases. On a cluster, where a call may touch one slot
   * only, one script call per lease, then one ZADD per active index shard and one PEXPIRE per stream
   * index: auto-pipelining sends each wave in one write per node.
   */
  async renewMany (owner: string, leases: readonly LeaseToRenew[], ttlMs: number, now: number): Promise<boolean[]> {
    if (leases.length === 0) return []
    return await this.#timed('renew', async () => this.#redis.isCluster
      ? await this.#renewInSlots(owner, leases, ttlMs, now)
      : (await Promise.all(chunks(leases, RENEW_BATCH).map(async (chunk) => await this.#renewScript(owner, chunk, ttlMs, now)))).flat())
  }

  async #renewInSlots (owner: string, leases: readonly LeaseToRenew[], ttlMs: number, now: number): Promise<boolean[]> {
    const renewed = await Promise.all(leases.map(async ({ sessionId, streamId, token }) => replyArray(await this.#redis.mcpSseRenewInSlot(
      leaseKey(this.#prefix, sessionId, streamId),
      metaKey(this.#prefix, sessionId, streamId),
      historyKey(this.#prefix, sessionId, streamId),
      sessionCountersKey(this.#prefix, sessionId),
      sessionStreamsKey(this.#prefix, sessionId),
      RENEW_KEYS_IN_SLOT,
      ttlMs,
      this.#retainMs,
      now + ttlMs,
      holder(owner, token),
      activeMember(sessionId, streamId)
    ))[0] === 1))
    const dueByShard = new Map<string, string[]>()
    const held = leases.filter((_, index) => renewed[index] === true)
    for (const { sessionId, streamId } of held) {
      const shard = activeIndexKey(this.#prefix, sessionId)
      const members = dueByShard.get(shard) ?? []
      members.push(activeMember(sessionId, streamId))
      dueByShard.set(shard, members)
    }
    const expiresAt = now + ttlMs
    await Promise.all([
      ...[...dueByShard].map(async ([shard, members]) => await this.#redis.zadd(shard, ...members.flatMap((member) => [expiresAt, member]))),
      ...held.map(async ({ streamId }) => await this.#redis.pexpire(streamIndexKey(this.#prefix, streamId), this.#retainMs))
    ])
    return renewed
  }

  async #renewScript (owner: string, leases: readonly LeaseToRenew[], ttlMs: number, now: number): Promise<boolean[]> {
    const keys: string[] = []
    const args: Array<string | number> = [RENEW_KEYS_WITH_INDEXES, ttlMs, this.#retainMs, now + ttlMs]
    for (const { sessionId, streamId, token } of leases) {
      keys.push(
        leaseKey(this.#prefix, sessionId, streamId),
        metaKey(this.#prefix, sessionId, streamId),
        historyKey(this.#prefix, sessionId, streamId),
        sessionCountersKey(this.#prefix, sessionId),
        sessionStreamsKey(this.#prefix, sessionId),
        streamIndexKey(this.#prefix, streamId),
        activeIndexKey(this.#prefix, sessionId)
      )
      args.push(holder(owner, token), activeMember(sessionId, streamId))
    }
    const reply = replyArray(await this.#redis.mcpSseRenewMany(keys.length, ...keys, ...args))
    return leases.map((_, index) => reply[index] === 1)
  }

  /**
   * Gives the lease up, only for its holder. An unfinished stream stays in the active
   * index, due now, so that another replica claims it at once; a finished one leaves it.
   */
  async release (sessionId: string, streamId: string, owner: string, token: number): Promise<boolean> {
    const reply = await this.#timed('release', async () => await this.#redis.mcpSseRelease(
      leaseKey(this.#prefix, sessionId, streamId),
      metaKey(this.#prefix, sessionId, streamId),
      holder(owner, token)
    ))
    const [released, finished] = replyArray(reply)
    if (finished === 1) await this.forgetActive(sessionId, streamId)
    else if (released === 1) await this.#timed('release', async () => await this.#redis.zadd(activeIndexKey(this.#prefix, sessionId), 'XX', 0, activeMember(sessionId, streamId)))
    return released === 1
  }

  /** Marks the stream ended for good, unless a newer owner holds it, and tells its live subscribers `end <last>`. */
  async finish (sessionId: string, streamId: string, token: number): Promise<boolean> {
    const finished = await this.#timed('finish', async () => await this.#redis.mcpSseFinish(
      metaKey(this.#prefix, sessionId, streamId),
      historyKey(this.#prefix, sessionId, streamId),
      token,
      liveChannel(this.#prefix, sessionId, streamId),
      this.#retainMs
    ))
    if (finished !== 1) return false
    await this.forgetActive(sessionId, streamId)
    return true
  }

  async position (sessionId: string, streamId: string): Promise<StreamPosition | undefined> {
    const meta = await this.#timed('position', async () => await this.#redis.hgetall(metaKey(this.#prefix, sessionId, streamId)))
    if (meta.last === undefined) return undefined
    return {
      lastSeq: integerField(meta.last),
      evictedThrough: integerField(meta.evicted),
      cursor: meta.cursor,
      finished: meta.finished === '1',
      descriptor: meta.desc,
      fence: integerField(meta.fence),
      epoch: meta.epoch ?? ''
    }
  }

  /** Unfinished streams whose lease expired at `now` (or was released), oldest expiry first. */
  async expiredLeases (now: number, limit: number): Promise<StreamRef[]> {
    const shards = await this.#timed('expired-leases', async () => await Promise.all(activeIndexKeys(this.#prefix).map(async (key) =>
      await this.#redis.zrangebyscore(key, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit))))
    const due: Array<{ member: string, expiresAt: number }> = []
    for (const reply of shards) {
      for (let index = 0; index + 1 < reply.length; index += 2) due.push({ member: reply[index] as string, expiresAt: Number(reply[index + 1]) })
    }
    due.sort((a, b) => a.expiresAt - b.expiresAt)
    return due.slice(0, limit).map(({ member }) => parseActiveMember(member)).filter((ref) => ref !== undefined)
  }

  async forgetActive (sessionId: string, streamId: string): Promise<void> {
    await this.#timed('forget-active', async () => await this.#redis.zrem(activeIndexKey(this.#prefix, sessionId), activeMember(sessionId, streamId)))
  }

  async #markActive (sessionId: string, streamId: string, expiresAt: number): Promise<void> {
    await this.#timed('mark-active', async () => await this.#redis.zadd(activeIndexKey(this.#prefix, sessionId), expiresAt, activeMember(sessionId, streamId)))
  }

  async #timed<T> (op: string, call: () => Promise<T>): Promise<T> {
    return await timedOperation(this.#onOperation, op, call)
  }
}

function holder (owner: string, token: number): string {
  return `${owner}:${token}`
}
