import type { Redis } from 'ioredis'

/** What a live channel carries: an event the owner recorded, or the end of the stream. */
export interface LiveListener {
  readonly onEvent: (seq: number, text: string) => void
  readonly onEnd: () => void
  /** The subscriber reconnected: messages may have been lost meanwhile. */
  readonly resync: () => void
}

/**
 * One subscriber connection for every live channel this replica listens to:
 * a channel is subscribed while at least one listener wants it.
 */
export class LiveChannels {
  readonly #subscriber: Redis
  readonly #listeners = new Map<string, Set<LiveListener>>()

  constructor (subscriber: Redis) {
    this.#subscriber = subscriber
    subscriber.on('message', (channel: string, message: string) => this.#dispatch(channel, message))
    let connectedBefore = false
    subscriber.on('ready', () => {
      if (connectedBefore) this.#resyncAll()
      connectedBefore = true
    })
  }

  get channels (): number {
    return this.#listeners.size
  }

  /** Resolves once the channel is subscribed; the function it gives stops listening. */
  async listen (channel: string, listener: LiveListener): Promise<() => void> {
    let listeners = this.#listeners.get(channel)
    if (listeners === undefined) {
      listeners = new Set()
      this.#listeners.set(channel, listeners)
    }
    listeners.add(listener)
    await this.#subscriber.subscribe(channel)
    return () => this.#unlisten(channel, listener)
  }

  #unlisten (channel: string, listener: LiveListener): void {
    const listeners = this.#listeners.get(channel)
    if (listeners === undefined || !listeners.delete(listener) || listeners.size > 0) return
    this.#listeners.delete(channel)
    this.#subscriber.unsubscribe(channel).catch(() => {
      // A lost connection unsubscribes everything anyway; the channel is not resubscribed.
    })
  }

  #dispatch (channel: string, message: string): void {
    const listeners = this.#listeners.get(channel)
    if (listeners === undefined) return
    const space = message.indexOf(' ')
    const head = message.slice(0, space)
    if (head === 'end') {
      for (const listener of listeners) listener.onEnd()
      return
    }
    const seq = Number(head)
    const text = message.slice(space + 1)
    for (const listener of listeners) listener.onEvent(seq, text)
  }

  #resyncAll (): void {
    for (const listeners of this.#listeners.values()) {
      for (const listener of listeners) listener.resync()
    }
  }
}
