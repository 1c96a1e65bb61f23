/** What every Redis call of the store shares: its timing, and the narrowing of its reply. */

/** Told of every Redis call: its name, whether Redis answered, and how long it took. */
export type OperationObserver = (op: string, result: 'ok' | 'error', seconds: number) => void

/** Times a Redis call and reports it to the observer. */
export async function timedOperation<T> (onOperation: OperationObserver | undefined, op: string, call: () => Promise<T>): Promise<T> {
  const started = performance.now()
  let result: 'ok' | 'error' = 'error'
  try {
    const reply = await call()
    result = 'ok'
    return reply
  } finally {
    onOperation?.(op, result, (performance.now() - started) / 1000)
  }
}

// Script replies are unknown to TypeScript: these narrow them.

export function replyArray (reply: unknown): unknown[] {
  return Array.isArray(reply) ? reply : []
}

export function replyNumber (reply: unknown): number {
  const value = Number(reply)
  return Number.isFinite(value) ? value : 0
}
