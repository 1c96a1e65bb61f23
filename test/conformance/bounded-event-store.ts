import { randomBytes } from 'node:crypto'
import type { EventId, EventStore, StreamId } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'

interface StoredEvent {
  readonly seq: number
  readonly streamId: StreamId
  readonly message: JSONRPCMessage
}

const EVENT_ID = /^([0-9a-f]{16})-([1-9][0-9]{0,15})$/

/**
 * The event store of one MCP session, for the SDK's StreamableHTTPServerTransport.
 *
 * - A replay sends the events of the stream that `Last-Event-ID` names, after it, in the
 *   order they were stored (sequence numbers, not strings: event 10 comes after event 9),
 *   and never an event of another stream (spec 2025-11-25, transports, "Resumability").
 * - It holds the last `maxEvents` events of the session. An id older than that, or one it
 *   never issued (another session's, another process's), is unknown: the SDK then answers
 *   400, an explicit refusal rather than a replay with a silent gap.
 * - The SDK stores an empty message as each stream's priming event; it only marks where
 *   a stream starts, so a replay does not send it again.
 */
export class BoundedEventStore implements EventStore {
  readonly #epoch = randomBytes(8).toString('hex')
  /** Ascending, contiguous sequence numbers: the oldest first. */
  readonly #events: StoredEvent[] = []
  #nextSeq = 1

  constructor (readonly maxEvents: number) {
    if (!Number.isSafeInteger(maxEvents) || maxEvents < 1) {
      throw new RangeError(`maxEvents must be a positive integer, got ${String(maxEvents)}`)
    }
  }

  get size (): number {
    return this.#events.length
  }

  async storeEvent (streamId: StreamId, message: JSONRPCMessage): Promise<EventId> {
    const event = { seq: this.#nextSeq++, streamId, message }
    this.#events.push(event)
    if (this.#events.length > this.maxEvents) this.#events.shift()
    return this.#idOf(event)
  }

  async getStreamIdForEventId (eventId: EventId): Promise<StreamId | undefined> {
    return this.#find(eventId)?.streamId
  }

  async replayEventsAfter (lastEventId: EventId, { send }: { send: (eventId: EventId, message: JSONRPCMessage) => Promise<void> }): Promise<StreamId> {
    const last = this.#find(lastEventId)
    // The SDK asks getStreamIdForEventId first and answers 400 for an unknown id; this is for any other caller.
    if (last === undefined) throw new RangeError(`unknown or expired event id: ${lastEventId}`)
    // A copy: events stored (and old ones dropped) while `send` awaits must not shift the walk.
    const after = this.#events.slice(last.seq - this.#oldestSeq() + 1)
    for (const event of after) {
      if (event.streamId === last.streamId && !isPriming(event.message)) await send(this.#idOf(event), event.message)
    }
    return last.streamId
  }

  #idOf (event: StoredEvent): EventId {
    return `${this.#epoch}-${event.seq}`
  }

  #find (eventId: EventId): StoredEvent | undefined {
    const match = EVENT_ID.exec(eventId)
    if (match === null || match[1] !== this.#epoch) return undefined
    return this.#events[Number(match[2]) - this.#oldestSeq()]
  }

  #oldestSeq (): number {
    return this.#events[0]?.seq ?? this.#nextSeq
  }
}

function isPriming (message: JSONRPCMessage): boolean {
  return Object.keys(message).length === 0
}
