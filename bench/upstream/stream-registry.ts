import type { ServerResponse } from 'node:http'

/** The upstream's open event streams: how many, how many events went out, what waits in their buffers. */
export class StreamRegistry {
  readonly #open = new Set<ServerResponse>()
  eventsWritten = 0

  add (response: ServerResponse): void {
    this.#open.add(response)
    response.once('close', () => this.#open.delete(response))
  }

  get openCount (): number {
    return this.#open.size
  }

  /** Bytes written but not yet taken by the readers: grows when a proxy cannot keep up. */
  get backlogBytes (): number {
    let bytes = 0
    for (const response of this.#open) bytes += response.writableLength
    return bytes
  }
}
