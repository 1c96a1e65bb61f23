import type { FastifyInstance } from 'fastify'
import type { StoreOptions } from '../config/schema.js'
import { InvalidConfigError } from '../errors.js'

/** The Redis key spaces that the plugin instances of each server use. */
const claims = new WeakMap<object, Set<string>>()

/**
 * Replicas that share a key space serve the same routes: each may take over the
 * others' streams, and finishes those of routes it does not know. Two instances of
 * the plugin in one server (one route set each) must therefore not share one.
 */
export function claimStore (fastify: FastifyInstance, store: StoreOptions): void {
  const claimed = claims.get(fastify.server) ?? new Set<string>()
  claims.set(fastify.server, claimed)
  const keySpace = `${store.cluster.length > 0 ? store.cluster.join(',') : store.url} ${store.keyPrefix}`
  if (claimed.has(keySpace)) {
    // The URL may carry a password: it is not repeated.
    throw new InvalidConfigError('options', `  - store.keyPrefix: "${store.keyPrefix}" is already used, on the same store.url or store.cluster, by another registration of the plugin on this server; give each registration its own store.keyPrefix`)
  }
  claimed.add(keySpace)
}
