import { spawn, type ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import type { Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import type { FromReplica, ToReplica } from './replica-child.js'

/** A proxy replica in its own Node process, on http://127.0.0.1:<port>. */
export interface Replica {
  readonly url: string
  readonly pid: number
  /** Sends `signal` (SIGKILL unless told) and resolves once the process has exited. */
  kill (signal?: NodeJS.Signals): Promise<void>
  /** SIGSTOP: the process is frozen, its sockets stay open; resolves once it is stopped. */
  stop (): Promise<void>
  /** SIGCONT; resolves once it runs again. */
  cont (): Promise<void>
  /** Asks the replica to close its Fastify instance and waits for it to exit; SIGKILL after 5 s. */
  close (): Promise<void>
  /** The exit code; null when a signal ended it. */
  readonly exited: Promise<number | null>
}

export interface ReplicaExtra {
  /** Added to the parent's environment (REPLICA_LOG_LEVEL sets the replica's log level). */
  env?: Record<string, string>
}

interface Teardown { teardown: (fn: () => unknown) => void }

// The child is TypeScript, loaded the way tap loads the tests (as the chaos children are).
const TS_LOADER = new URL('../../node_modules/@tapjs/typescript/dist/esm/import.mjs', import.meta.url).href
const CHILD_SCRIPT = fileURLToPath(new URL('./replica-child.ts', import.meta.url))
export const REPLICA_NODE_ARGS: readonly string[] = [`--import=${TS_LOADER}`, '--enable-source-maps', CHILD_SCRIPT]

const OUTPUT_LINES_KEPT = 50
const CLOSE_GRACE_MS = 5000
// Compiling lib/ through the loader takes a few seconds on a cold cache.
const START_TIMEOUT_MS = 30000

const liveChildren = new Set<ChildProcess>()
// Whatever ends the test process, no replica outlives it.
process.once('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL')
})

/**
 * Starts a replica with these plugin options (JSON-serialisable, forwarded as they are).
 * With `t`, the replica is killed when the test ends; without, the caller kills or
 * closes it, and a forgotten replica does not keep the test process alive.
 */
export async function startReplica (t: Teardown, options: unknown, extra?: ReplicaExtra): Promise<Replica>
export async function startReplica (options: unknown, extra?: ReplicaExtra): Promise<Replica>
export async function startReplica (...args: [Teardown, unknown, ReplicaExtra?] | [unknown, ReplicaExtra?]): Promise<Replica> {
  const [first] = args
  if (isTeardown(first) && args.length >= 2) {
    const [, options, extra] = args as [Teardown, unknown, ReplicaExtra?]
    const replica = await ReplicaProcess.start(options, extra ?? {}, true)
    first.teardown(async () => await replica.kill())
    return replica
  }
  const [options, extra] = args as [unknown, ReplicaExtra?]
  return await ReplicaProcess.start(options, extra ?? {}, false)
}

function isTeardown (value: unknown): value is Teardown {
  return typeof value === 'object' && value !== null && typeof (value as Partial<Teardown>).teardown === 'function'
}

class ReplicaProcess implements Replica {
  readonly url: string
  readonly pid: number
  readonly #child: ChildProcess
  readonly #exited: Promise<number | null>
  /** True when a teardown will kill it: then it may hold the test process open. */
  readonly #ownedByTest: boolean
  #pendingOperations = 0
  #killRequested = false
  #stopped = false

  private constructor (child: ChildProcess, output: OutputTail, exited: Promise<number | null>, port: number, ownedByTest: boolean) {
    this.#child = child
    this.#exited = exited
    this.#ownedByTest = ownedByTest
    this.pid = child.pid ?? -1
    this.url = `http://127.0.0.1:${port}`
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
      if (code !== 0 && !this.#killRequested) {
        process.stderr.write(`replica ${this.pid} exited unexpectedly (${code ?? signal ?? '?'}); its last output:\n${output.text()}\n`)
      }
    })
    this.#updateRefs()
  }

  static async start (options: unknown, extra: ReplicaExtra, ownedByTest: boolean): Promise<ReplicaProcess> {
    const child = spawn(process.execPath, REPLICA_NODE_ARGS, {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      // Not tap's own NODE_OPTIONS (process info, coverage): this is a server, not a test. Its V8 coverage
      // would be merged into the test's by byte offset, over code compiled another way.
      // Transpile only, as under tap, also when a test runs outside it: tsc checks the types.
      env: { TS_NODE_TRANSPILE_ONLY: '1', ...withoutCoverage(process.env), NODE_OPTIONS: '', ...extra.env }
    })
    liveChildren.add(child)
    const output = new OutputTail(child)
    // A failed spawn, kill or send: kept with the output rather than thrown at the test.
    child.on('error', (error) => output.push(`[error] ${error.message}`))
    const exited = new Promise<number | null>((resolve) => {
      child.once('exit', (code) => {
        liveChildren.delete(child)
        resolve(code)
      })
    })
    try {
      const port = await waitForListening(child, options)
      return new ReplicaProcess(child, output, exited, port, ownedByTest)
    } catch (error) {
      child.kill('SIGKILL')
      if (child.pid !== undefined) await exited
      throw new Error(`replica did not start: ${(error as Error).message}\n${output.text()}`)
    }
  }

  get exited (): Promise<number | null> {
    return this.#holdingTestOpen(this.#exited)
  }

  get #hasExited (): boolean {
    return this.#child.exitCode !== null || this.#child.signalCode !== null
  }

  async kill (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.#hasExited) return
    this.#killRequested = true
    this.#child.kill(signal)
    // A stopped process only acts on SIGKILL; any other signal waits for SIGCONT.
    if (this.#stopped && signal !== 'SIGKILL') this.#child.kill('SIGCONT')
    await this.#holdingTestOpen(this.#exited)
  }

  async stop (): Promise<void> {
    if (this.#hasExited) throw new Error(`replica ${this.pid} has exited`)
    this.#child.kill('SIGSTOP')
    this.#stopped = true
    await this.#holdingTestOpen(waitForProcessState(this.pid, true))
  }

  async cont (): Promise<void> {
    if (this.#hasExited) throw new Error(`replica ${this.pid} has exited`)
    this.#child.kill('SIGCONT')
    this.#stopped = false
    await this.#holdingTestOpen(waitForProcessState(this.pid, false))
  }

  async close (): Promise<void> {
    if (this.#hasExited) return
    await this.#holdingTestOpen(this.#closeGracefully())
  }

  async #closeGracefully (): Promise<void> {
    if (this.#stopped) await this.cont()
    // A channel already gone means the child is on its way out anyway, or the SIGKILL below ends it.
    this.#child.send({ type: 'close' } satisfies ToReplica, () => {})
    let graceTimer: NodeJS.Timeout | undefined
    const gaveUp = new Promise<'gave up'>((resolve) => { graceTimer = setTimeout(() => resolve('gave up'), CLOSE_GRACE_MS) })
    const outcome = await Promise.race([this.#exited, gaveUp])
    clearTimeout(graceTimer)
    if (outcome === 'gave up') {
      process.stderr.write(`replica ${this.pid} did not close within ${CLOSE_GRACE_MS} ms: SIGKILL\n`)
      this.#child.kill('SIGKILL')
      await this.#exited
    }
  }

  /** While `work` runs, the replica's handles keep the test process alive, so that it can await it. */
  async #holdingTestOpen<T> (work: Promise<T>): Promise<T> {
    this.#pendingOperations++
    this.#updateRefs()
    try {
      return await work
    } finally {
      this.#pendingOperations--
      this.#updateRefs()
    }
  }

  #updateRefs (): void {
    const keepAlive = this.#ownedByTest || this.#pendingOperations > 0
    const handles = [this.#child, this.#child.channel, this.#child.stdout as Socket | null, this.#child.stderr as Socket | null]
    for (const handle of handles) {
      if (keepAlive) handle?.ref()
      else handle?.unref()
    }
  }
}

async function waitForListening (child: ChildProcess, options: unknown): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`no answer within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS)
    const onMessage = (message: FromReplica): void => {
      if (message.type === 'listening') finish(message.port)
      else finish(new Error(message.message))
    }
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => finish(new Error(`exited (${code ?? signal ?? '?'}) before listening`))
    const onError = (error: Error): void => finish(error)
    const finish = (result: number | Error): void => {
      clearTimeout(timer)
      child.off('message', onMessage)
      child.off('exit', onExit)
      child.off('error', onError)
      if (result instanceof Error) reject(result)
      else resolve(result)
    }
    child.on('message', onMessage)
    child.once('exit', onExit)
    child.once('error', onError)
    child.send({ type: 'start', options } satisfies ToReplica)
  })
}

/**
 * Signals are delivered asynchronously: this waits until /proc shows the process
 * stopped (state T) or running again. Where there is no /proc, it trusts the signal.
 */
async function waitForProcessState (pid: number, stopped: boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    let stat: string
    try {
      stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    } catch {
      return
    }
    // The command name, in parentheses, may hold spaces: the state follows the last ')'.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    if ((state === 'T' || state === 't') === stopped) return
    if (Date.now() > deadline) throw new Error(`process ${pid} is still in state ${state}`)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}

/** The child's last lines of stdout and stderr, interleaved as they came. */
class OutputTail {
  readonly #lines: string[] = []

  constructor (child: ChildProcess) {
    for (const [name, stream] of [['stdout', child.stdout], ['stderr', child.stderr]] as const) {
      if (stream === null) continue
      let partial = ''
      stream.setEncoding('utf8')
      stream.on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n')
        partial = lines.pop() ?? ''
        for (const line of lines) this.push(`[${name}] ${line}`)
      })
      stream.once('end', () => { if (partial !== '') this.push(`[${name}] ${partial}`) })
    }
  }

  push (line: string): void {
    this.#lines.push(line)
    if (this.#lines.length > OUTPUT_LINES_KEPT) this.#lines.shift()
  }

  text (): string {
    return this.#lines.length === 0 ? '(no output)' : this.#lines.join('\n')
  }
}

function withoutCoverage (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { NODE_V8_COVERAGE: _coverage, ...rest } = env
  return rest
}
