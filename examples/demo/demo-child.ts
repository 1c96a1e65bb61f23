import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'

export interface DemoChildOptions {
  readonly name: string
  readonly args: readonly string[]
  readonly env?: NodeJS.ProcessEnv
  /** Each line the child writes, stdout or stderr. */
  readonly onLine: (line: string) => void
  /** The child exited without being asked to (a crash, a port in use). */
  readonly onUnexpectedExit: (code: number | null, signal: NodeJS.Signals | null) => void
}

const STOP_TIMEOUT_MS = 10000

/**
 * A Node process the demo owns. It runs in a process group of its own, so that
 * Ctrl-C reaches only the demo, which then stops its children in order, and
 * waits for each of them: the demo never leaves one behind when it exits.
 */
export class DemoChild {
  readonly #options: DemoChildOptions
  #child: ChildProcess | undefined
  #exited: Promise<unknown> = Promise.resolve()
  #expectingExit = false

  constructor (options: DemoChildOptions) {
    this.#options = options
  }

  get pid (): number | undefined {
    return this.#child?.pid
  }

  /**
   * Starts it; resolves once `ready` does: with `'message'`, once the child sent
   * `{ type: 'ready' }` over IPC. Rejects if the child exits first.
   */
  async start (ready: 'message' | (() => Promise<void>)): Promise<void> {
    const { args, env, name, onLine, onUnexpectedExit } = this.#options
    const child = spawn(process.execPath, [...args], {
      detached: true,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe', ...(ready === 'message' ? ['ipc' as const] : [])]
    })
    this.#child = child
    this.#expectingExit = false
    this.#exited = once(child, 'exit')
    for (const stream of [child.stdout, child.stderr]) {
      if (stream !== null) createInterface({ input: stream }).on('line', onLine)
    }
    let onEarlyExit: (code: number | null, signal: NodeJS.Signals | null) => void = () => {}
    const exitedEarly = new Promise<never>((_resolve, reject) => {
      onEarlyExit = (code, signal) => reject(new Error(`${name} exited before it was ready (${code ?? signal ?? '?'})`))
      child.once('exit', onEarlyExit)
    })
    const isReady = ready === 'message'
      ? new Promise<void>((resolve) => child.on('message', (message: { type?: string }) => { if (message.type === 'ready') resolve() }))
      : ready()
    await Promise.race([isReady, exitedEarly])
    child.off('exit', onEarlyExit)
    child.once('exit', (code, signal) => { if (!this.#expectingExit) onUnexpectedExit(code, signal) })
  }

  /** SIGKILL, as a crash: no goodbye on its sockets. Resolves once it is gone. */
  async kill (): Promise<void> {
    this.#expectingExit = true
    this.#child?.kill('SIGKILL')
    await this.#exited
  }

  /** SIGTERM, so that it closes cleanly; SIGKILL if it has not exited within 10 s. Resolves once it is gone. */
  async stop (): Promise<void> {
    const child = this.#child
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    this.#expectingExit = true
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS)
    await this.#exited
    clearTimeout(timer)
  }
}
