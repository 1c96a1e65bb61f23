import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './free-port.js'

/** A throwaway redis-server on 127.0.0.1 that keeps nothing on disk. */
export interface RedisServer {
  readonly port: number
  /** redis://127.0.0.1:<port> */
  readonly url: string
  /** SIGKILL, then a fresh start on the same port: a Redis that lost its data. Resolves when it answers PING. */
  restart (): Promise<void>
  /** SIGKILL; resolves once it has exited. */
  kill (): Promise<void>
  /** Starts it again on its port (a no-op while it runs); resolves when it answers PING. */
  start (): Promise<void>
  /** SIGSTOP: a Redis that hangs with its connections open, as behind a dead network path. */
  freeze (): void
  /** SIGCONT. */
  thaw (): void
}

export interface RedisServerOptions {
  /** Only false: these servers never persist, so that a restart is a Redis that lost its data. */
  persistence?: false
}

interface Teardown { teardown: (fn: () => unknown) => void }

export const REDIS_SERVER_BINARY = process.env.REDIS_SERVER_BINARY ?? '/usr/bin/redis-server'
const READY_TIMEOUT_MS = 10000
const START_ATTEMPTS = 5

const liveServers = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of liveServers) child.kill('SIGKILL')
})

export async function startRedisServer (t: Teardown, _options: RedisServerOptions = {}): Promise<RedisServer> {
  if (!existsSync(REDIS_SERVER_BINARY)) throw new Error(`no redis-server at ${REDIS_SERVER_BINARY} (set REDIS_SERVER_BINARY)`)
  const dir = mkdtempSync(join(tmpdir(), 'redis-test-'))
  let port = 0
  let child: ChildProcess | undefined
  let exited: Promise<unknown> = Promise.resolve()

  const launch = async (): Promise<void> => {
    const launched = spawn(REDIS_SERVER_BINARY, [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'
    ], { stdio: ['ignore', 'ignore', 'pipe'] })
    child = launched
    liveServers.add(launched)
    // A spawn that fails emits 'error' and never 'exit'.
    exited = new Promise((resolve) => {
      launched.once('exit', resolve)
      launched.once('error', resolve)
    }).finally(() => liveServers.delete(launched))
    let stderr = ''
    launched.stderr?.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
    try {
      await waitForPong(port, launched)
    } catch (error) {
      launched.kill('SIGKILL')
      await exited
      throw new Error(`redis-server on port ${port}: ${(error as Error).message} ${stderr}`)
    }
  }

  const kill = async (): Promise<void> => {
    child?.kill('SIGCONT')
    child?.kill('SIGKILL')
    await exited
    child = undefined
  }

  const start = async (): Promise<void> => {
    if (child !== undefined) return
    // The port a killed server held can take a moment to be free again.
    for (let attempt = 1; ; attempt++) {
      try {
        await launch()
        return
      } catch (error) {
        child = undefined
        if (attempt >= START_ATTEMPTS) throw error
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    }
  }

  // Another process may take the free port before redis-server binds it: then try another.
  for (let attempt = 1; ; attempt++) {
    port = await freePort()
    try {
      await launch()
      break
    } catch (error) {
      child = undefined
      if (attempt >= START_ATTEMPTS) throw error
    }
  }
  t.teardown(async () => {
    await kill()
    rmSync(dir, { recursive: true, force: true })
  })

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    restart: async () => {
      await kill()
      await start()
    },
    kill,
    freeze: () => { child?.kill('SIGSTOP') },
    thaw: () => { child?.kill('SIGCONT') },
    start
  }
}

async function waitForPong (port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS
  for (;;) {
    if (child.pid === undefined) throw new Error('could not be spawned')
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited (${child.exitCode ?? child.signalCode ?? '?'})`)
    if (await answersPing(port)) return
    if (Date.now() > deadline) throw new Error(`no PONG within ${READY_TIMEOUT_MS} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

async function answersPing (port: number): Promise<boolean> {
  return await new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write('PING\r\n'))
    let reply = ''
    const finish = (ok: boolean): void => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => finish(false))
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      reply += chunk
      if (reply.includes('\r\n')) finish(reply.startsWith('+PONG'))
    })
    socket.once('error', () => finish(false))
    socket.once('close', () => finish(false))
  })
}
