import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { freePort } from './free-port.js'
import { REDIS_SERVER_BINARY } from './redis-process.js'

/** A throwaway Redis Cluster of primaries on 127.0.0.1, without replicas, that keeps nothing on disk. */
export interface RedisCluster {
  /** redis://127.0.0.1:<port> of each primary. */
  readonly urls: string[]
  readonly ports: number[]
}

interface Teardown { teardown: (fn: () => unknown) => void }

export const REDIS_CLI_BINARY = process.env.REDIS_CLI_BINARY ?? '/usr/bin/redis-cli'
const READY_TIMEOUT_MS = 15000

const run = promisify(execFile)
const liveNodes = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of liveNodes) child.kill('SIGKILL')
})

/**
 * Starts `primaries` redis-servers in cluster mode as children of the test (killed on
 * teardown, or when the test process exits), joins them with `redis-cli --cluster create`,
 * and resolves once every node says `cluster_state:ok`.
 */
export async function startRedisCluster (t: Teardown, primaries = 3): Promise<RedisCluster> {
  for (const binary of [REDIS_SERVER_BINARY, REDIS_CLI_BINARY]) {
    if (!existsSync(binary)) throw new Error(`no ${binary} (set REDIS_SERVER_BINARY and REDIS_CLI_BINARY)`)
  }
  const dir = mkdtempSync(join(tmpdir(), 'redis-cluster-test-'))
  const children: ChildProcess[] = []
  t.teardown(async () => {
    await Promise.all(children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGKILL')
      await exited
    }))
    rmSync(dir, { recursive: true, force: true })
  })

  const ports: number[] = []
  for (let index = 0; index < primaries; index++) {
    // Redis 7 takes the bus port as an option: port + 10000 may be out of range, or taken.
    const [port, busPort] = [await freePort(), await freePort()]
    const child = spawn(REDIS_SERVER_BINARY, [
      '--port', String(port), '--cluster-port', String(busPort), '--bind', '127.0.0.1',
      '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', '2000',
      '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'
    ], { stdio: ['ignore', 'ignore', 'inherit'] })
    children.push(child)
    liveNodes.add(child)
    child.once('exit', () => liveNodes.delete(child))
    ports.push(port)
  }
  await Promise.all(ports.map(async (port) => await waitFor(port, async (redis) => await redis.ping() === 'PONG')))
  await run(REDIS_CLI_BINARY, ['--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-yes'])
  await Promise.all(ports.map(async (port) => await waitFor(port, async (redis) => (await redis.cluster('INFO')).includes('cluster_state:ok'))))
  return { ports, urls: ports.map((port) => `redis://127.0.0.1:${port}`) }
}

async function waitFor (port: number, ready: (redis: Redis) => Promise<boolean>): Promise<void> {
  const redis = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 0, retryStrategy: () => 50, lazyConnect: true })
  redis.on('error', () => {})
  const deadline = Date.now() + READY_TIMEOUT_MS
  try {
    for (;;) {
      if (await ready(redis).catch(() => false)) return
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} not ready within ${READY_TIMEOUT_MS} ms`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  } finally {
    redis.disconnect()
  }
}
