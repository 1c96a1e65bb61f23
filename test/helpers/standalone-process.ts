import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

// These run the built package (`npm test` builds it first), as a user runs it.
export const PACKAGE_ROOT = fileURLToPath(new URL('../..', import.meta.url))
const FASTIFY_CLI = createRequire(import.meta.url).resolve('fastify-cli/cli.js')

/** `npm start`'s command: fastify-cli's start of dist/server.js. */
export const NPM_START = [FASTIFY_CLI, 'start', '--options', '--config', 'config/fastify-cli.json', 'dist/server.js']
/** The package's bin, fastify-mcp-sse-resilience. */
export const BIN = ['dist/cli.js']

export interface StandaloneProcess {
  readonly child: ChildProcessWithoutNullStreams
  stdout: () => string
  stderr: () => string
  /** Resolves with the exit code (null after a signal it did not handle). */
  readonly exited: Promise<number | null>
  /** Resolves once stdout holds `text`; rejects if the process exits first. */
  waitForStdout: (text: string) => Promise<void>
}

interface Teardown { teardown: (fn: () => unknown) => void }

export function startStandalone (t: Teardown, args: readonly string[], env: NodeJS.ProcessEnv = {}): StandaloneProcess {
  const child = spawn(process.execPath, [...args], {
    cwd: PACKAGE_ROOT,
    // Without the test runner's NODE_OPTIONS hooks, and without a config file from the caller's environment.
    env: { ...process.env, NODE_OPTIONS: '', MCP_SSE_RESILIENCE_CONFIG: undefined, ...env },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  t.teardown(() => { child.kill('SIGKILL') })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    waitForStdout: async (text) => {
      while (!stdout.includes(text)) {
        await Promise.race([once(child.stdout, 'data'), exited.then(() => { throw new Error(`exited before printing "${text}":\n${stdout}\n${stderr}`) })])
      }
    }
  }
}

export async function writeConfig (text: string): Promise<string> {
  const file = join(await mkdtemp(join(tmpdir(), 'mcp-sse-standalone-')), 'proxy.yaml')
  await writeFile(file, text)
  return file
}

/** What no clean error message holds: a stack frame, the error's HTTP status, Node's banner after a crash. */
export const NOISE = /\n\s+at |statusCode|Node\.js v\d/
