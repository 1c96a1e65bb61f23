import { createHook } from 'node:async_hooks'
import { get } from 'node:http'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/** The proxy's /metrics text, on a connection of its own that closes after the answer (no pooled socket). */
export async function scrape (url: string): Promise<string> {
  return await new Promise<string>((resolve, reject) => {
    get(url, { agent: false }, (response) => {
      let text = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => { text += chunk })
      response.once('end', () => resolve(text))
      response.once('error', reject)
    }).once('error', reject)
  })
}

/** The sum of every series of `name` whose labels include each of `labels` (`key="value"` text). */
export function metric (text: string, name: string, ...labels: string[]): number {
  let sum = 0
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line)
    if (match === null || match[1] !== name) continue
    if (!labels.every((label) => (match[2] ?? '').includes(label))) continue
    sum += Number(match[3])
  }
  return sum
}

/** What keeps the event loop alive, counted by kind (TCPSocketWrap, Timeout, ...). */
export function activeResources (): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1
  return counts
}

/** Kinds of which `now` holds more than `baseline`, with both counts. */
export function resourcesAbove (baseline: Record<string, number>, now: Record<string, number>): Record<string, { baseline: number, now: number }> {
  const above: Record<string, { baseline: number, now: number }> = {}
  for (const [kind, count] of Object.entries(now)) {
    if (count > (baseline[kind] ?? 0)) above[kind] = { baseline: baseline[kind] ?? 0, now: count }
  }
  return above
}

/** Listeners on `process` itself, over every event. */
export function processListeners (): number {
  return process.eventNames().reduce((sum, name) => sum + process.listenerCount(name), 0)
}

function collector (): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc
  if (exposed !== undefined) return exposed
  // Without --expose-gc (npm run test:chaos passes it): turn it on now, and take it from a fresh context.
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}

/** heapUsed after full collections, with turns of the event loop between them for finalizers. */
export async function settledHeapUsed (): Promise<number> {
  const gc = collector()
  for (let round = 0; round < 4; round++) {
    gc()
    await new Promise((resolve) => setImmediate(resolve))
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return process.memoryUsage().heapUsed
}

/**
 * Diagnostics (CHAOS_TRACE_TIMERS=1): remembers where every timer still pending was
 * created, so that a timer left behind can be traced to its line. Costs a stack
 * trace per timer: off by default.
 */
export function traceTimers (): () => string[] {
  const pending = new Map<number, { timer: { hasRef?: () => boolean }, stack: string }>()
  const hook = createHook({
    init (asyncId, type, _trigger, resource) {
      if (type !== 'Timeout') return
      const holder: { stack?: string } = {}
      Error.captureStackTrace(holder)
      pending.set(asyncId, { timer: resource as { hasRef?: () => boolean }, stack: (holder.stack ?? '').split('\n').slice(2, 9).join('\n') })
    },
    destroy (asyncId) { pending.delete(asyncId) }
  })
  hook.enable()
  return () => {
    hook.disable()
    return [...pending.values()].filter(({ timer }) => timer.hasRef?.() === true).map(({ stack }) => stack)
  }
}
