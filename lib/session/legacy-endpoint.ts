/**
 * Where a legacy-sse (2024-11-05) session POSTs its messages upstream. Each upstream
 * stream names it in its `endpoint` event, so it may move when the stream reconnects.
 * While the stream is down, or the session behind a new endpoint is being opened
 * again, POSTs wait for it, each for a bounded time.
 */
export class LegacyEndpoint {
  #url: string | undefined
  #held = false
  #waiters = new Set<() => void>()

  get url (): string | undefined {
    return this.#url
  }

  /** The stream dropped: the endpoint it named may be gone with it. */
  hold (): void {
    this.#held = true
  }

  /**
   * A stream taken over from another replica: the endpoint its upstream session had,
   * held until the reopened stream names one, the same (the session lives on) or another.
   */
  recall (url: string): void {
    this.#url = url
    this.#held = true
  }

  /** A stream named its endpoint; POSTs go there once `ready` settles. */
  moveTo (url: string, ready: Promise<unknown>): void {
    this.#url = url
    this.#held = true
    ready.finally(() => this.#release()).catch(() => {})
  }

  /** The URL to POST to; undefined when it was not known again within `timeoutMs`. */
  async whenReady (timeoutMs: number): Promise<string | undefined> {
    if (!this.#held) return this.#url
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        this.#waiters.delete(done)
        resolve()
      }
      const timer = setTimeout(done, timeoutMs)
      this.#waiters.add(done)
    })
    return this.#held ? undefined : this.#url
  }

  #release (): void {
    this.#held = false
    for (const waiter of [...this.#waiters]) waiter()
  }
}
