import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import type { ChildConfig, FromChild, ToChild } from './child-common.js'

// The children are TypeScript, loaded the way tap loads the tests.
const TS_LOADER = new URL('../../node_modules/@tapjs/typescript/dist/esm/import.mjs', import.meta.url).href

/**
 * An upstream server in a child process that the soak kills with SIGKILL and
 * starts again on the same port. Its state lives in a file, so that it survives.
 */
export class UpstreamProcess {
  readonly name: string
  readonly #script: string
  readonly #config: ChildConfig & Record<string, unknown>
  #child: ChildProcess | undefined
  #exited: Promise<unknown> = Promise.resolve()
  kills = 0
  /** Milliseconds from each kill until the new process listened. */
  readonly downtimesMs: number[] = []

  constructor (name: string, script: string, config: ChildConfig & Record<string, unknown>) {
    this.name = name
    this.#script = fileURLToPath(new URL(script, import.meta.url))
    this.#config = config
  }

  get port (): number {
    return this.#config.port
  }

  origin (): string {
    return `http://127.0.0.1:${this.port}`
  }

  async start (): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const child = spawn(process.execPath, [`--import=${TS_LOADER}`, this.#script, JSON.stringify(this.#config)], {
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
        // Not tap's own NODE_OPTIONS (process info): these are servers, not tests.
        env: { ...process.env, NODE_OPTIONS: '' }
      })
      this.#child = child
      this.#exited = once(child, 'exit')
      const message = await this.#next(child, (m) => m.type === 'ready' || m.type === 'listen-error').catch((error: Error) => error)
      if (!(message instanceof Error) && message.type === 'ready') {
        this.#config.port = message.port
        return
      }
      await this.#exited
      // The old process's port can take a moment to be free again.
      if (attempt >= 50) throw new Error(`${this.name} could not start on port ${this.port}: ${JSON.stringify(message)}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  /** SIGKILL: no cleanup, no goodbye; the sockets are reset by the kernel. */
  async kill (): Promise<void> {
    this.kills++
    this.#child?.kill('SIGKILL')
    await this.#exited
  }

  async restart (downMs: number): Promise<void> {
    const killedAt = Date.now()
    await this.kill()
    await new Promise((resolve) => setTimeout(resolve, downMs))
    await this.start()
    this.downtimesMs.push(Date.now() - killedAt)
  }

  /** Stops production; resolves with what each topic produced in all: the upstream's sequence is 1..n. */
  async stop (): Promise<Record<string, number>> {
    const child = this.#child
    if (child === undefined) throw new Error(`${this.name} is not running`)
    const stopped = this.#next(child, (m) => m.type === 'stopped')
    child.send({ type: 'stop' } satisfies ToChild)
    const message = await stopped
    return message.type === 'stopped' ? message.topics : {}
  }

  /** How many sessions the upstream holds now. */
  async sessions (): Promise<number> {
    const child = this.#child
    if (child === undefined) throw new Error(`${this.name} is not running`)
    const stats = this.#next(child, (m) => m.type === 'stats')
    child.send({ type: 'stats' } satisfies ToChild)
    const message = await stats
    return message.type === 'stats' ? message.sessions : -1
  }

  async close (): Promise<void> {
    this.#child?.kill('SIGKILL')
    await this.#exited
    this.#child = undefined
  }

  async #next (child: ChildProcess, wanted: (message: FromChild) => boolean): Promise<FromChild> {
    return await new Promise<FromChild>((resolve, reject) => {
      const onMessage = (message: FromChild): void => {
        if (!wanted(message)) return
        cleanup()
        resolve(message)
      }
      const onExit = (code: number | null, signal: string | null): void => {
        cleanup()
        reject(new Error(`${this.name} exited (${code ?? signal ?? ''}) before answering`))
      }
      const cleanup = (): void => {
        child.off('message', onMessage)
        child.off('exit', onExit)
      }
      child.on('message', onMessage)
      child.on('exit', onExit)
    })
  }
}
