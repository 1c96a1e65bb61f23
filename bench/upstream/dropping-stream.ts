import type { ServerResponse } from 'node:http'
import { wallClockMs, type EventWriter } from '../wire/event-payload.js'

/**
 * The reconnection scenario's stream: one event at once, then a clean close after
 * `dropAfterMs`, the server staying up. The first event of the next connection
 * of the same key carries the time of that close (`dropAt`), so that the client
 * can time the whole reconnect.
 */
export class DroppingStreams {
  readonly #lastDropAt = new Map<string, number>()

  serve (response: ServerResponse, writeEvent: EventWriter, key: string, firstSeq: number, dropAfterMs: number): void {
    const dropAt = this.#lastDropAt.get(key)
    const extra = dropAt === undefined ? '' : `,"dropAt":${dropAt.toFixed(3)}`
    response.write(writeEvent(firstSeq, wallClockMs().toFixed(3), extra))
    const timer = setTimeout(() => {
      this.#lastDropAt.set(key, wallClockMs())
      response.end()
    }, dropAfterMs)
    response.once('close', () => clearTimeout(timer))
  }
}
