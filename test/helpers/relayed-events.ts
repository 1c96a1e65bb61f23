import type { RunningProxy } from './proxy.js'
import { SseClient } from './sse-client.js'
import type { SseUpstream } from './sse-upstream.js'

interface Teardown { teardown: (fn: () => unknown) => void }

/**
 * A client on each of `paths` of the proxy, closed when the test ends; once each has its
 * stream open on `upstream` (which has no other), `text` goes to all of them, and each
 * has received `events` events.
 */
export async function clientsReceiving (test: Teardown, proxy: RunningProxy, upstream: SseUpstream, paths: readonly string[], text: string, events: number): Promise<SseClient[]> {
  const clients: SseClient[] = []
  test.teardown(() => { for (const client of clients) client.close() })
  for (const path of paths) clients.push(await SseClient.open(proxy.url(path)))
  await upstream.waitForStreams(paths.length)
  upstream.broadcast(text)
  for (const client of clients) await client.waitForEvents(events)
  return clients
}
