import type { SessionRecord, SessionRecords } from '../../cluster/session-records.js'
import type { ProxySession } from '../../session/session-registry.js'
import { isChangeableList } from '../../wire/mcp-initialize.js'
import type { RedisClient } from './client.js'
import { sessionKey } from './keys.js'

/**
 * The session records in Redis: one hash per session, in the session's slot.
 * A record lives `idleTimeoutMs` past its last save or touch.
 */
export class RedisSessionRecords implements SessionRecords {
  readonly #redis: RedisClient
  readonly #keyPrefix: string
  readonly #idleTimeoutMs: number

  constructor (redis: RedisClient, options: { keyPrefix: string, idleTimeoutMs: number }) {
    this.#redis = redis
    this.#keyPrefix = options.keyPrefix
    this.#idleTimeoutMs = options.idleTimeoutMs
  }

  async save (session: ProxySession): Promise<void> {
    const key = sessionKey(this.#keyPrefix, session.id)
    const fields: Record<string, string | Buffer> = {
      route: session.routePath,
      ends: session.endsWithItsStreams ? '1' : '0',
      subs: JSON.stringify([...session.subscriptions])
    }
    if (session.upstreamSessionId !== undefined) fields.up = session.upstreamSessionId
    if (session.upstreamEndpoint !== undefined) fields.ep = session.upstreamEndpoint
    if (session.initializeRequest !== undefined) fields.init = session.initializeRequest
    if (session.initializedNotification !== undefined) fields.inited = session.initializedNotification
    if (session.serverCapabilities !== undefined) fields.caps = session.serverCapabilities.listChanged.join(',')
    await this.#redis.multi().hset(key, fields).pexpire(key, this.#idleTimeoutMs).exec()
  }

  /** The record, kept alive for another idle period; undefined when there is none. */
  async load (sessionId: string): Promise<SessionRecord | undefined> {
    const key = sessionKey(this.#keyPrefix, sessionId)
    const [fields] = await Promise.all([this.#redis.hgetallBuffer(key), this.#redis.pexpire(key, this.#idleTimeoutMs)])
    // save() always writes route, ends and subs: a record without them is none.
    const { route, ends, subs, up, ep, init, inited, ending, caps } = fields
    if (route === undefined || ends === undefined || subs === undefined) return undefined
    return {
      routePath: route.toString(),
      endsWithItsStreams: ends.toString() === '1',
      endRequested: ending !== undefined,
      upstreamSessionId: up?.toString(),
      upstreamEndpoint: ep?.toString(),
      initializeRequest: init,
      initializedNotification: inited,
      subscriptions: parseSubscriptions(subs.toString()),
      serverCapabilities: caps === undefined ? undefined : { listChanged: caps.toString().split(',').filter(isChangeableList) }
    }
  }

  /** Marks the record of a session its client asked to end (a field that save() leaves alone). */
  async markEndRequested (sessionId: string): Promise<void> {
    const key = sessionKey(this.#keyPrefix, sessionId)
    await this.#redis.multi().hset(key, 'ending', '1').pexpire(key, this.#idleTimeoutMs).exec()
  }

  async delete (sessionId: string): Promise<void> {
    await this.#redis.unlink(sessionKey(this.#keyPrefix, sessionId))
  }
}

function parseSubscriptions (json: string): string[] {
  const parsed: unknown = JSON.parse(json)
  return Array.isArray(parsed) ? parsed.filter((uri): uri is string => typeof uri === 'string') : []
}
