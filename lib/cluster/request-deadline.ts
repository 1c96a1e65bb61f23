import { StoreUnavailableError } from '../errors.js'

/**
 * Bounds how long a client request waits for Redis. The Redis client never fails a
 * command on a lost connection (appends must wait for it), and a Redis that hangs
 * with its connection open answers nothing at all: past the deadline, the request
 * gets 503 instead of hanging.
 */
export async function withinDeadline<T> (work: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new StoreUnavailableError()), timeoutMs)
  })
  try {
    return await Promise.race([work, deadline])
  } finally {
    clearTimeout(timer)
  }
}
