import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import type { Server } from 'node:http'

/** Messages between the soak and an upstream child process, over the IPC channel. */
export type ToChild = { type: 'stop' } | { type: 'stats' }
export type FromChild =
  | { type: 'ready', port: number }
  | { type: 'listen-error', code: string }
  | { type: 'stopped', topics: Record<string, number> }
  | { type: 'stats', sessions: number }

export interface ChildConfig {
  /** 0 for any free port (the first start); the same port on every restart. */
  port: number
  /** Where the child keeps its durable state; it survives SIGKILL. */
  stateFile: string
  /** How often every topic produces. */
  tickMs: number
}

/** The child's configuration, passed as its only argument. */
export function childConfig<T extends ChildConfig> (): T {
  return JSON.parse(process.argv[2] ?? '{}') as T
}

export function send (message: FromChild): void {
  process.send?.(message)
}

/**
 * State written to a temporary file and renamed over the old one: a SIGKILL at
 * any moment leaves either the old state or the new, never half of one. The page
 * cache outlives the process, so no fsync is needed for a kill (only for a crash
 * of the machine).
 */
export function saveState (file: string, state: unknown): void {
  writeFileSync(`${file}.tmp`, JSON.stringify(state))
  renameSync(`${file}.tmp`, file)
}

export function loadState<T> (file: string, empty: T): T {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T
  } catch {
    return empty
  }
}

/**
 * Listens on the configured port, tells the parent, and exits with the parent.
 * `onStop` stops production and tells what each topic produced; `sessions` how many sessions the upstream holds.
 */
export function listen (server: Server, port: number, onStop: () => Record<string, number>, sessions: () => number = () => 0): void {
  server.once('error', (error: NodeJS.ErrnoException) => {
    send({ type: 'listen-error', code: error.code ?? error.message })
    process.exit(1)
  })
  server.listen(port, '127.0.0.1', () => {
    const address = server.address()
    send({ type: 'ready', port: typeof address === 'object' && address !== null ? address.port : port })
  })
  process.on('message', (message: ToChild) => {
    if (message.type === 'stop') send({ type: 'stopped', topics: onStop() })
    if (message.type === 'stats') send({ type: 'stats', sessions: sessions() })
  })
  // The soak went away (it failed, or was killed): so does the upstream.
  process.on('disconnect', () => process.exit(0))
}
