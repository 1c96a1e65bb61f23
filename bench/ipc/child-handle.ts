import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, openSync } from 'node:fs'
import { isMessageOfKind, type ReadyMessage, type ReplyMessage, type RpcMethods } from './protocol.js'

export interface ForkOptions {
  /** Names the child in errors. */
  readonly label: string
  readonly args?: readonly string[]
  readonly execArgv?: readonly string[]
  readonly readyTimeoutMs?: number
  /** The child's stdout goes to this file (appended) instead of the harness's stdout, which carries the report. */
  readonly stdoutFile?: string
}

interface PendingCall {
  readonly resolve: (value: unknown) => void
  readonly reject: (error: Error) => void
}

/** The harness's side of a child process: its ready info, calls to it, and its stop. */
export class ChildHandle<Api extends RpcMethods<Api>, ReadyInfo = unknown> {
  readonly label: string
  readonly ready: ReadyInfo
  readonly #child: ChildProcess
  readonly #pending = new Map<number, PendingCall>()
  #nextId = 1
  #exited = false

  private constructor (child: ChildProcess, label: string, ready: ReadyInfo) {
    this.#child = child
    this.label = label
    this.ready = ready
    child.on('message', (message: unknown) => {
      if (isMessageOfKind<ReplyMessage>(message, 'reply')) this.#settle(message)
    })
    child.once('exit', (code, signal) => {
      this.#exited = true
      this.#failPending(new Error(`${label} exited (code ${String(code)}, signal ${String(signal)})`))
    })
  }

  /** Starts a compiled child module and waits until it announces itself. */
  static async fork<Api extends RpcMethods<Api>, ReadyInfo = unknown> (module: URL, options: ForkOptions): Promise<ChildHandle<Api, ReadyInfo>> {
    const stdout = options.stdoutFile === undefined ? 'inherit' : openSync(options.stdoutFile, 'a')
    let child: ChildProcess
    try {
      child = fork(module, [...options.args ?? []], {
        execArgv: [...options.execArgv ?? []],
        stdio: ['ignore', stdout, 'inherit', 'ipc']
      })
    } finally {
      // The child holds its own copy of the descriptor.
      if (typeof stdout === 'number') closeSync(stdout)
    }
    // The child is ours: its ready message carries the ReadyInfo it was written to send.
    const info = await waitForReady(child, options.label, options.readyTimeoutMs ?? 20_000) as ReadyInfo
    return new ChildHandle<Api, ReadyInfo>(child, options.label, info)
  }

  get pid (): number {
    return this.#child.pid ?? -1
  }

  async call<Method extends keyof Api & string> (method: Method, ...args: Parameters<Api[Method]>): Promise<Awaited<ReturnType<Api[Method]>>> {
    if (this.#exited) throw new Error(`${this.label} has exited`)
    const id = this.#nextId++
    const value = await new Promise<unknown>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject })
      this.#child.send({ kind: 'call', id, method, args })
    })
    // The child answers with what its method returned.
    return value as Awaited<ReturnType<Api[Method]>>
  }

  /** Ends the child: politely first, then for sure. */
  async stop (): Promise<void> {
    if (this.#exited) return
    const exited = once(this.#child, 'exit')
    this.#child.kill('SIGTERM')
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 3000)
    await exited
    clearTimeout(timer)
  }

  #settle (message: ReplyMessage): void {
    const pending = this.#pending.get(message.id)
    if (pending === undefined) return
    this.#pending.delete(message.id)
    if ('error' in message) {
      pending.reject(new Error(`${this.label}: ${message.error}`))
    } else {
      pending.resolve(message.value)
    }
  }

  #failPending (error: Error): void {
    for (const pending of this.#pending.values()) pending.reject(error)
    this.#pending.clear()
  }
}

async function waitForReady (child: ChildProcess, label: string, timeoutMs: number): Promise<unknown> {
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${label} did not start within ${timeoutMs} ms`)), timeoutMs)
    const onMessage = (message: unknown): void => {
      if (!isMessageOfKind<ReadyMessage>(message, 'ready')) return
      cleanUp()
      resolve(message.info)
    }
    const onExit = (code: number | null): void => fail(new Error(`${label} exited before it was ready (code ${String(code)})`))
    function cleanUp (): void {
      clearTimeout(timer)
      child.off('message', onMessage)
      child.off('exit', onExit)
    }
    function fail (error: Error): void {
      cleanUp()
      child.kill('SIGKILL')
      reject(error)
    }
    child.on('message', onMessage)
    child.once('exit', onExit)
  })
}
