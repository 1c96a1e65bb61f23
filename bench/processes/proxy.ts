/**
 * One proxy under test, in its own process: plain @fastify/reply-from, or the
 * plugin with the options the harness passes. It reports its own CPU and memory.
 */
import replyFrom from '@fastify/reply-from'
import Fastify, { type FastifyInstance } from 'fastify'
import type { AddressInfo, Socket } from 'node:net'
import mcpSseResilience, { type McpSseResilienceOptions } from '../../lib/index.js'
import { announceReady, serveCalls } from '../ipc/serve.js'
import { ConnectionTimings, type ResumeStages } from '../pauses/connection-timings.js'
import { PauseMonitor, type PauseFigures } from '../pauses/pause-monitor.js'
import { listenerCopies } from './listener-copies.js'
import { countRedisCommands, type RedisCommandCount } from './redis-command-count.js'

export type ProxySpec =
  | { readonly kind: 'reply-from', readonly upstreamOrigin: string }
  | { readonly kind: 'plugin', readonly options: McpSseResilienceOptions, readonly countRedisCommands?: boolean }

export interface ProxySample {
  readonly cpuMicros: number
  readonly rssBytes: number
  readonly heapUsedBytes: number
}

export type ProxyApi = {
  sample: () => Promise<ProxySample>
  /** Runs a full GC first when the process was started with --expose-gc. */
  sampleAfterGc: () => Promise<ProxySample>
  /** Starts a new window for `pauses`. */
  resetPauses: () => Promise<void>
  /** The event loop's delay and the GC pauses since `resetPauses` (or the start). */
  pauses: () => Promise<PauseFigures>
  /** Where resumes waited since the last call: before the accept, before the request, before the head. */
  takeResumeStages: () => Promise<ResumeStages>
  /** The Redis commands sent so far; all zero unless the spec asked for `countRedisCommands`. */
  redisCommands: () => Promise<RedisCommandCount>
}

export interface ProxyReady {
  readonly port: number
}

async function buildApp (spec: ProxySpec): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, forceCloseConnections: true })
  if (spec.kind === 'reply-from') {
    // reply-from's defaults, as a user would register it.
    await app.register(replyFrom, { base: spec.upstreamOrigin })
    app.get('/stream', (request, reply) => reply.from(request.url))
  } else {
    await app.register(mcpSseResilience, spec.options)
  }
  return app
}

function sample (): ProxySample {
  const cpu = process.cpuUsage()
  const memory = process.memoryUsage()
  return { cpuMicros: cpu.user + cpu.system, rssBytes: memory.rss, heapUsedBytes: memory.heapUsed }
}

const pauses = new PauseMonitor()
const spec = JSON.parse(process.argv[2] ?? '{}') as ProxySpec
const redisCommands = spec.kind === 'plugin' && spec.countRedisCommands === true ? countRedisCommands() : () => ({ commands: {}, batches: 0 })
const app = await buildApp(spec)
await app.listen({ host: '127.0.0.1', port: 0, backlog: 4096 })
// BENCH_PROXY_LISTENERS=n: n fds on the listening socket, so that a busy loop accepts n connections per iteration, not 1.
for (const copy of await listenerCopies(app.server, Number(process.env['BENCH_PROXY_LISTENERS'] ?? 1) - 1)) {
  copy.on('connection', (socket: Socket) => app.server.emit('connection', socket))
}
const resumeStages = new ConnectionTimings(app.server)

serveCalls<ProxyApi>({
  sample: async () => sample(),
  sampleAfterGc: async () => {
    globalThis.gc?.()
    return sample()
  },
  resetPauses: async () => pauses.reset(),
  pauses: async () => pauses.read(),
  takeResumeStages: async () => resumeStages.take(),
  redisCommands: async () => redisCommands()
})

// The harness stops a proxy with SIGTERM: exiting through process.exit lets --cpu-prof write its profile.
process.once('SIGTERM', () => process.exit(0))

announceReady({ port: (app.server.address() as AddressInfo).port } satisfies ProxyReady)
