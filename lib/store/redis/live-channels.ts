import type { LiveFeed, LiveListener } from '../../cluster/live-feed.js'
import type { RedisClient } from './client.js'

/**
 * One subscriber connection for every live channel this replica listens to:
 * a channel is subscribed while at least one listener wants it.
 */
export class LiveChannels implements LiveFeed {
  readonly #subscriber: RedisClient
  readonly #listeners = new Map<string, Set<LiveListener>>()
  /** Settles once the first subscription is in: the subscriber connection is up. */
  #opened: Promise<void> | undefined

  constructor (subscriber: RedisClient) {
    this.#subscriber = subscriber
    // Buffers: the message gives the texts' lengths in bytes (see liveChannel()).
    subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) => this.#dispatch(channel.toString(), message))
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
    await this.#subscribe(channel)
    return () => this.#unlisten(channel, listener)
  }

  /**
   * A cluster client opens its subscriber connection on the first subscription, and a
   * second one sent before that connection is ready breaks its ready check (ioredis):
   * the others wait for the first.
   */
  async #subscribe (channel: string): Promise<void> {
    if (this.#opened === undefined) {
      const first = this.#subscriber.subscribe(channel)
      this.#opened = first.then(() => {}, () => { this.#opened = undefined })
      await first
      return
    }
    await this.#opened
    await this.#subscriber.subscribe(channel)
  }

  #unlisten (channel: string, listener: LiveListener): void {
    const listeners = this.#listeners.get(channel)
    if (listeners === undefined || !listeners.delete(listener) || listeners.size > 0) return
    this.#listeners.delete(channel)
    this.#subscriber.unsubscribe(channel).catch(() => {
      // A lost connection unsubscribes everything anyway; the channel is not resubscribed.
    })
  }

  #dispatch (channel: string, message: Buffer): void {
    const listeners = this.#listeners.get(channel)
    if (listeners === undefined) return
    const ended = parseEnd(message)
    if (ended) {
      for (const listener of listeners) listener.onEnd()
      return
    }
    for (const { seq, text } of parseEvents(message)) {
      for (const listener of listeners) listener.onEvent(seq, text)
    }
  }

  #resyncAll (): void {
    for (const listeners of this.#listeners.values()) {
      for (const listener of listeners) listener.resync()
    }
  }
}

const END = Buffer.from('end ')

function parseEnd (message: Buffer): boolean {
  return message.subarray(0, END.length).equals(END)
}

/** The events of one append's message, each with its seq; nothing for a message this code did not write. */
export function parseEvents (message: Buffer): Array<{ seq: number, text: string }> {
  const newline = message.indexOf(10)
  const header = message.toString('latin1', 0, newline === -1 ? 0 : newline)
  const space = header.indexOf(' ')
  const firstSeq = Number(header.slice(0, space))
  const lengths = header.slice(space + 1).split(',').map(Number)
  const total = lengths.reduce((sum, length) => sum + length, 0)
  if (newline === -1 || space <= 0 || !Number.isSafeInteger(firstSeq) || lengths.some((length) => !Number.isSafeInteger(length) || length < 0) ||
      total !== message.length - newline - 1) return []
  const events: Array<{ seq: number, text: string }> = []
  let offset = newline + 1
  for (const [index, length] of lengths.entries()) {
    events.push({ seq: firstSeq + index, text: message.toString('utf8', offset, offset + length) })
    offset += length
  }
  return events
}
