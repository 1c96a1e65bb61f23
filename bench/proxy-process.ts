import { mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { ChildHandle } from './ipc/child-handle.js'
import type { ProxyApi, ProxyReady, ProxySpec } from './processes/proxy.js'

export type ProxyProcess = ChildHandle<ProxyApi, ProxyReady>

/** Node options for every proxy process of the run (`--proxy-node-args`), and where their stdout goes then. */
export interface ProxyLaunchOptions {
  readonly nodeArgs: readonly string[]
  /** With nodeArgs, each proxy's stdout (--trace-gc writes there) goes to `<dir>/<label>-<pid>.log`. */
  readonly outputDir: string
}

let launchOptions: ProxyLaunchOptions = { nodeArgs: [], outputDir: '' }
let launched = 0

/** Set once by the harness, before any proxy starts. */
export function configureProxyLaunch (options: ProxyLaunchOptions): void {
  launchOptions = options
  if (options.nodeArgs.length > 0) mkdirSync(options.outputDir, { recursive: true })
}

/** A proxy under test in a process of its own; `--expose-gc` lets it report memory after a full GC. */
export async function startProxy (spec: ProxySpec, label: string): Promise<ProxyProcess> {
  const profiled = launchOptions.nodeArgs.length > 0
  // The pid is not known before the fork: a counter and the harness's pid name the file.
  const stdoutFile = profiled ? resolve(join(launchOptions.outputDir, `${label}-${process.pid}-${++launched}.log`)) : undefined
  return await ChildHandle.fork<ProxyApi, ProxyReady>(new URL('./processes/proxy.js', import.meta.url), {
    label,
    args: [JSON.stringify(spec)],
    execArgv: ['--expose-gc', ...launchOptions.nodeArgs],
    ...stdoutFile === undefined ? {} : { stdoutFile }
  })
}

export function originOf (proxy: ProxyProcess): string {
  return `http://127.0.0.1:${proxy.ready.port}`
}
