import { ChildHandle } from './ipc/child-handle.js'
import type { ProxyApi, ProxyReady, ProxySpec } from './processes/proxy.js'

export type ProxyProcess = ChildHandle<ProxyApi, ProxyReady>

/** A proxy under test in a process of its own; `--expose-gc` lets it report memory after a full GC. */
export async function startProxy (spec: ProxySpec, label: string): Promise<ProxyProcess> {
  return await ChildHandle.fork<ProxyApi, ProxyReady>(new URL('./processes/proxy.js', import.meta.url), {
    label,
    args: [JSON.stringify(spec)],
    execArgv: ['--expose-gc']
  })
}

export function originOf (proxy: ProxyProcess): string {
  return `http://127.0.0.1:${proxy.ready.port}`
}
