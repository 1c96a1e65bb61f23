/**
 * The upstream events a stream forwarded lately, to drop what an upstream sends
 * again after a reconnect. An event is a duplicate when its id and its data both
 * match one of the last `window` events, received on an earlier connection: so an
 * upstream that restarts and reuses ids for new events gets them through, and one
 * connection never loses an event to its own repeats. Events without an id are never dropped.
 */
export class UpstreamDedupe {
  readonly #window: number
  /** Each remembered event, with the connection it came on. */
  readonly #seen = new Map<string, number>()
  readonly #order: string[] = []
  #head = 0
  #connection = 0

  constructor (window: number) {
    this.#window = window
  }

  /** The upstream stream was opened again: what came before may now be replayed. */
  reconnected (): void {
    this.#connection++
  }

  /** True when the event came on an earlier connection already; otherwise remembers it. */
  isDuplicate (id: string, data: string): boolean {
    const key = `${id}\u0000${fingerprint(data)}`
    const seenOn = this.#seen.get(key)
    if (seenOn !== undefined && seenOn < this.#connection) return true
    this.#seen.set(key, this.#connection)
    if (seenOn !== undefined) return false
    this.#order.push(key)
    if (this.#order.length - this.#head > this.#window) this.#forgetOldest()
    return false
  }

  #forgetOldest (): void {
    this.#seen.delete(this.#order[this.#head] as string)
    this.#head++
    if (this.#head > this.#window) {
      this.#order.splice(0, this.#head)
      this.#head = 0
    }
  }
}

/** FNV-1a over the UTF-16 code units, with the length: cheap, and enough to tell events apart. */
function fingerprint (data: string): string {
  let hash = 0x811c9dc5
  for (let index = 0; index < data.length; index++) {
    hash ^= data.charCodeAt(index)
    hash = Math.imul(hash, 0x01000193)
  }
  return `${data.length}:${hash >>> 0}`
}
