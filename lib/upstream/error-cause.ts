// Deep enough for undici's wrappers (TypeError "terminated" around a SocketError); bounds a chain that loops.
const MAX_CAUSE_DEPTH = 8

/**
 * `code: message` of the innermost error in the cause chain that has a code: what
 * went wrong with a socket or an HTTP exchange (`ECONNREFUSED: connect ECONNREFUSED
 * 127.0.0.1:3000`). Undefined when no error in the chain has a code.
 */
export function codedCause (error: Error): string | undefined {
  let found: string | undefined
  let current: unknown = error
  for (let depth = 0; depth < MAX_CAUSE_DEPTH && current instanceof Error; depth++) {
    const { code } = current as NodeJS.ErrnoException
    if (typeof code === 'string') found = `${code}: ${current.message}`
    current = current.cause
  }
  return found
}

/**
 * How the proxy's routes log an error: one line, its coded cause, when it came from
 * a socket or an HTTP exchange (an upstream down or restarting is what the proxy is
 * for); its stack only when it is unexpected. It also shortens @fastify/reply-from's
 * own "response errored" line.
 */
export function serializeError (error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  return codedCause(error) ?? error.stack ?? `${error.name}: ${error.message}`
}
