import type { PauseFigures } from './pauses/pause-monitor.js'
import { findNginx, nginxVersion, startNginx } from './nginx.js'
import { processCpuMicros } from './process-cpu.js'
import { bareOptions, pluginOptions, redisStoreOptions } from './proxy-options.js'
import { originOf, startProxy, type ProxyProcess } from './proxy-process.js'
import { benchRedisUrl, cleanUpPrefix, freshKeyPrefix, probeRedis } from './redis-store.js'

export const PEER_NAMES = ['direct', 'reply-from', 'nginx', 'plugin', 'plugin-bare', 'plugin-redis'] as const
export type PeerName = typeof PEER_NAMES[number]

/** What the clients read through in one throughput measurement. */
export interface Peer {
  readonly name: PeerName
  readonly origin: string
  /** The proxy process's CPU time so far; null for direct, which has no proxy. */
  cpuMicros: () => Promise<number | null>
  /** Starts a window of the proxy's event-loop delay and GC pauses, and reads it; null for peers that are not a Node proxy. */
  resetPauses: () => Promise<void>
  pauses: () => Promise<PauseFigures | null>
  stop: () => Promise<void>
}

/**
 * Starts a peer afresh for each measurement: the plugin keeps a finished stream's
 * history for history.ttlSeconds, and what one measurement leaves in a heap must
 * not slow the next.
 */
export interface PeerLauncher {
  readonly name: PeerName
  launch: () => Promise<Peer>
}

export interface PeerLineUp {
  readonly launchers: PeerLauncher[]
  readonly skipped: Array<{ name: PeerName, reason: string }>
  readonly nginxVersion: string | null
  readonly redisVersion: string | null
}

/** Peers that need something outside npm (nginx, a Redis) are skipped, with the reason, when it is not there. */
export async function lineUpPeers (names: readonly PeerName[], upstreamOrigin: string, upstreamPort: number): Promise<PeerLineUp> {
  const launchers: PeerLauncher[] = []
  const skipped: PeerLineUp['skipped'] = []
  let version: string | null = null
  let redisVersion: string | null = null
  for (const name of names) {
    if (name === 'plugin-redis') {
      const redisUrl = benchRedisUrl()
      const probe = await probeRedis(redisUrl)
      if ('reason' in probe) {
        skipped.push({ name, reason: probe.reason })
        continue
      }
      redisVersion = `Redis ${probe.version}`
      launchers.push({ name, launch: async () => await launchRedisPeer(upstreamOrigin, redisUrl) })
    } else if (name === 'nginx') {
      const binary = findNginx()
      if (binary === undefined) {
        skipped.push({ name, reason: 'no nginx binary (apt-get install -y nginx, or set NGINX_BIN)' })
        continue
      }
      version = nginxVersion(binary)
      launchers.push({ name, launch: async () => await launchNginx(binary, upstreamPort) })
    } else {
      launchers.push({ name, launch: async () => await launchNodePeer(name, upstreamOrigin) })
    }
  }
  return { launchers, skipped, nginxVersion: version, redisVersion }
}

const NO_PAUSES = { resetPauses: async () => {}, pauses: async () => null } as const

async function launchNginx (binary: string, upstreamPort: number): Promise<Peer> {
  const nginx = await startNginx(binary, upstreamPort)
  return { name: 'nginx', origin: `http://127.0.0.1:${nginx.port}`, cpuMicros: async () => await processCpuMicros(nginx.pid), ...NO_PAUSES, stop: nginx.stop }
}

async function launchNodePeer (name: Exclude<PeerName, 'nginx' | 'plugin-redis'>, upstreamOrigin: string): Promise<Peer> {
  switch (name) {
    case 'direct':
      return { name, origin: upstreamOrigin, cpuMicros: async () => null, ...NO_PAUSES, stop: async () => {} }
    case 'reply-from':
      return nodeProxyPeer(name, await startProxy({ kind: 'reply-from', upstreamOrigin }, name))
    case 'plugin':
      return nodeProxyPeer(name, await startProxy({ kind: 'plugin', options: pluginOptions(upstreamOrigin) }, name))
    case 'plugin-bare':
      return nodeProxyPeer(name, await startProxy({ kind: 'plugin', options: bareOptions(upstreamOrigin) }, name))
  }
}

/**
 * The plugin with the Redis store, under a key prefix of its own (`bench:<uuid>:`),
 * so that nothing of an earlier measurement, or of anyone else sharing the Redis,
 * is in its way; its keys are deleted once it has stopped.
 */
async function launchRedisPeer (upstreamOrigin: string, redisUrl: string): Promise<Peer> {
  const keyPrefix = freshKeyPrefix()
  const cleanUp = async (): Promise<void> => { await cleanUpPrefix(redisUrl, keyPrefix) }
  let proxy: ProxyProcess
  try {
    proxy = await startProxy({ kind: 'plugin', options: redisStoreOptions(pluginOptions(upstreamOrigin), redisUrl, keyPrefix) }, 'plugin-redis')
  } catch (error) {
    await cleanUp()
    throw error
  }
  const peer = nodeProxyPeer('plugin-redis', proxy)
  return {
    ...peer,
    stop: async () => {
      try {
        await peer.stop()
      } finally {
        await cleanUp()
      }
    }
  }
}

/** CPU is read from /proc where it can be: a saturated proxy answers over IPC late, and its figure would cover the wrong interval. */
function nodeProxyPeer (name: PeerName, proxy: ProxyProcess): Peer {
  return {
    name,
    origin: originOf(proxy),
    cpuMicros: async () => await processCpuMicros(proxy.pid) ?? (await proxy.call('sample')).cpuMicros,
    resetPauses: async () => await proxy.call('resetPauses'),
    pauses: async () => await proxy.call('pauses'),
    stop: async () => await proxy.stop()
  }
}
