import { eventDropTime } from '../wire/event-fields.js'
import { wallClockMs } from '../wire/event-payload.js'
import { SseScanner } from '../wire/sse-scanner.js'
import { openEventStream } from './sse-request.js'

/**
 * Holds one stream whose upstream closes it again and again, and times each
 * reconnect: from the upstream's close to the first event of the new upstream
 * connection reaching the client (the upstream stamps that event with the close time).
 */
export async function timeUpstreamDrops (url: string, drops: number, timeoutMs: number): Promise<number[]> {
  const stream = await openEventStream(url)
  const samples: number[] = []
  const scanner = new SseScanner()
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${samples.length} of ${drops} reconnects within ${timeoutMs} ms`)), timeoutMs)
      let receivedAt = 0
      const onEvent = (chunk: Buffer, start: number, end: number): void => {
        const dropAt = eventDropTime(chunk, start, end)
        if (!Number.isNaN(dropAt)) samples.push(receivedAt - dropAt)
      }
      stream.response.on('data', (chunk: Buffer) => {
        receivedAt = wallClockMs()
        scanner.feed(chunk, onEvent)
        if (samples.length >= drops) {
          clearTimeout(timer)
          resolve()
        }
      })
      stream.response.once('close', () => {
        clearTimeout(timer)
        if (samples.length < drops) reject(new Error(`the stream closed after ${samples.length} reconnects`))
      })
    })
  } finally {
    stream.request.destroy()
  }
  return samples
}
