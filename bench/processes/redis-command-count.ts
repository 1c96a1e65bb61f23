import { createHash } from 'node:crypto'
import { Redis } from 'ioredis'
import * as historyScripts from '../../lib/store/redis/history-scripts.js'
import * as leaseScripts from '../../lib/store/redis/lease-scripts.js'
import * as registryScripts from '../../lib/store/redis/registry-scripts.js'

/** What the proxy's Redis clients sent: commands by name (a script by its constant's name), and batches. */
export interface RedisCommandCount {
  readonly commands: Record<string, number>
  /**
   * Connection-ticks that sent at least one command: with auto-pipelining, what one tick sends on a
   * connection goes out in one write and comes back in one read, so this counts the round trips.
   */
  readonly batches: number
}

/**
 * Counts every command the proxy's ioredis clients send, by wrapping Redis.prototype.sendCommand
 * (which pipelines, auto-pipelining and Cluster clients all end in). Only for `countRedisCommands`
 * runs: it costs a Map update per command, which the other figures should not pay.
 */
export function countRedisCommands (): () => RedisCommandCount {
  const scriptNames = new Map<string, string>()
  for (const module of [historyScripts, leaseScripts, registryScripts]) {
    for (const [name, value] of Object.entries(module)) {
      if (name.endsWith('_SCRIPT') && typeof value === 'string') scriptNames.set(createHash('sha1').update(value).digest('hex'), name)
    }
  }
  const commands = new Map<string, number>()
  let batches = 0
  const sentThisTick = new Set<Redis>()
  const original = Redis.prototype.sendCommand
  Redis.prototype.sendCommand = function (this: Redis, command, stream) {
    const name = command.name === 'evalsha' || command.name === 'eval'
      ? scriptNameOf(command.args[0], command.name, scriptNames)
      : command.name
    commands.set(name, (commands.get(name) ?? 0) + 1)
    if (!sentThisTick.has(this)) {
      if (sentThisTick.size === 0) process.nextTick(() => sentThisTick.clear())
      sentThisTick.add(this)
      batches++
    }
    return original.call(this, command, stream)
  }
  return () => ({ commands: Object.fromEntries(commands), batches })
}

function scriptNameOf (first: unknown, kind: string, scriptNames: ReadonlyMap<string, string>): string {
  const text = Buffer.isBuffer(first) ? first.toString() : String(first)
  const sha = kind === 'eval' ? createHash('sha1').update(text).digest('hex') : text
  return scriptNames.get(sha) ?? `${kind} ${sha.slice(0, 8)}`
}
