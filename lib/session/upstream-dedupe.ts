/**
 * The upstream events a stream forwarded lately, to drop what an upstream sends
 * again after a reconnect. An event is a duplicate when its id and its data both
 * match one of the last `window` events: so an upstream that restarts and reuses
 * ids for new events gets them through. Events without an id are never dropped.
 */
export class UpstreamDedupe {
  readonly #window: number
  readonly #seen = new Set<string>()
  readonly #order: string[] = []
  #head = 0

  constructor (window: number) {
    this.#window = window
  }

  /** True when the event was seen already; otherwise remembers it. */
  isDuplicate (id: string, data: string): boolean {
    const key = `${id}\u0000${fingerprint(data)}`
    if (this.#seen.has(key)) return true
    this.#seen.add(key)
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
