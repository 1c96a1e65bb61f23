import { ChildHandle } from './ipc/child-handle.js'
import type { LoadClientApi } from './processes/load-client.js'
import type { UpstreamApi, UpstreamReady } from './processes/upstream.js'

/** The processes every scenario shares: the upstream and the load generator. */
export interface Testbed {
  readonly upstream: ChildHandle<UpstreamApi, UpstreamReady>
  readonly client: ChildHandle<LoadClientApi>
  readonly upstreamOrigin: string
  /** Waits until the upstream has no stream open, so that one measurement leaves nothing to the next. */
  settle: (timeoutMs: number) => Promise<boolean>
  stop: () => Promise<void>
}

export async function startTestbed (): Promise<Testbed> {
  const upstream = await ChildHandle.fork<UpstreamApi, UpstreamReady>(new URL('./processes/upstream.js', import.meta.url), { label: 'upstream' })
  const client = await ChildHandle.fork<LoadClientApi>(new URL('./processes/load-client.js', import.meta.url), { label: 'load-client' })
  return {
    upstream,
    client,
    upstreamOrigin: `http://127.0.0.1:${upstream.ready.port}`,
    settle: async (timeoutMs) => {
      const deadline = performance.now() + timeoutMs
      while ((await upstream.call('stats')).openStreams > 0) {
        if (performance.now() > deadline) return false
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      return true
    },
    stop: async () => {
      await Promise.all([client.stop(), upstream.stop()])
    }
  }
}
