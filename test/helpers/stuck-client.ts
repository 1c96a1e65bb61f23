import { SseClient } from './sse-client.js'
import type { SseUpstream } from './sse-upstream.js'

/**
 * A client that takes nothing in, with far more waiting for it than the sockets hold:
 * a first client reads one event and leaves, 20 MB are recorded while no one is
 * attached, then this one resumes and stops reading. The proxy's history must hold
 * 30 000 events and 64 MiB, and its route be GET `${origin}/events` in front of `upstream`.
 */
export async function openStuckClient (upstream: SseUpstream, origin: string): Promise<SseClient> {
  const first = await SseClient.open(`${origin}/events`)
  await upstream.waitForStreams(1)
  upstream.broadcast('data: first\n\n')
  const [one] = await first.waitForEvents(1)
  first.close()
  await first.ended
  const payload = 'z'.repeat(1000)
  for (let i = 0; i < 20000; i++) upstream.broadcast(`data: ${i} ${payload}\n\n`)
  const deadline = Date.now() + 10000
  while (!/sse_history_events 20001/.test(await (await fetch(`${origin}/metrics`)).text())) {
    if (Date.now() > deadline) throw new Error('the history never held the 20 001 events')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const stuck = await SseClient.open(`${origin}/events`, { 'last-event-id': one?.id ?? '' })
  stuck.pause()
  await new Promise((resolve) => setTimeout(resolve, 200))
  return stuck
}
