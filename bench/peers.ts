import { findNginx, nginxVersion, startNginx } from './nginx.js'
import { processCpuMicros } from './process-cpu.js'
import { bareOptions, pluginOptions } from './proxy-options.js'
import { originOf, startProxy, type ProxyProcess } from './proxy-process.js'

export const PEER_NAMES = ['direct', 'reply-from', 'nginx', 'plugin', 'plugin-bare'] as const
export type PeerName = typeof PEER_NAMES[number]

/** What the clients read through in one throughput measurement. */
export interface Peer {
  readonly name: PeerName
  readonly origin: string
  /** The proxy process's CPU time so far; null for direct, which has no proxy. */
  cpuMicros: () => Promise<number | null>
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
}

export function lineUpPeers (names: readonly PeerName[], upstreamOrigin: string, upstreamPort: number): PeerLineUp {
  const launchers: PeerLauncher[] = []
  const skipped: PeerLineUp['skipped'] = []
  let version: string | null = null
  for (const name of names) {
    if (name === 'nginx') {
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
  return { launchers, skipped, nginxVersion: version }
}

async function launchNginx (binary: string, upstreamPort: number): Promise<Peer> {
  const nginx = await startNginx(binary, upstreamPort)
  return { name: 'nginx', origin: `http://127.0.0.1:${nginx.port}`, cpuMicros: async () => await processCpuMicros(nginx.pid), stop: nginx.stop }
}

async function launchNodePeer (name: Exclude<PeerName, 'nginx'>, upstreamOrigin: string): Promise<Peer> {
  switch (name) {
    case 'direct':
      return { name, origin: upstreamOrigin, cpuMicros: async () => null, stop: async () => {} }
    case 'reply-from':
      return nodeProxyPeer(name, await startProxy({ kind: 'reply-from', upstreamOrigin }, name))
    case 'plugin':
      return nodeProxyPeer(name, await startProxy({ kind: 'plugin', options: pluginOptions(upstreamOrigin) }, name))
    case 'plugin-bare':
      return nodeProxyPeer(name, await startProxy({ kind: 'plugin', options: bareOptions(upstreamOrigin) }, name))
  }
}

/** CPU is read from /proc where it can be: a saturated proxy answers over IPC late, and its figure would cover the wrong interval. */
function nodeProxyPeer (name: PeerName, proxy: ProxyProcess): Peer {
  return {
    name,
    origin: originOf(proxy),
    cpuMicros: async () => await processCpuMicros(proxy.pid) ?? (await proxy.call('sample')).cpuMicros,
    stop: async () => await proxy.stop()
  }
}
