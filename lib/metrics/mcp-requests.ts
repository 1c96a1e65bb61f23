import type { Counter } from 'prom-client'
import type { RouteLabels } from '../metrics.js'
import type { JsonRpcMessage } from '../wire/json-rpc.js'
import { mcpMethodLabel } from '../wire/mcp-methods.js'

type MethodLabels = RouteLabels & { method: string }

// One label set per route and method, made once: as many as routes times known methods.
const labelSets = new WeakMap<RouteLabels, Map<string, MethodLabels>>()

/**
 * Counts the requests and notifications of a POST by method. In 2026-07-28 the
 * Mcp-Method header has been checked against the body by then, so the body's method
 * is the header's. Responses (a 2025-era client answering the server) are not counted.
 */
export function countMcpRequests (counter: Counter<'route_kind' | 'route' | 'method'>, route: RouteLabels, messages: readonly JsonRpcMessage[]): void {
  for (const message of messages) {
    if (!('method' in message)) continue
    counter.inc(labelsFor(route, mcpMethodLabel(message.method)))
  }
}

function labelsFor (route: RouteLabels, method: string): MethodLabels {
  let byMethod = labelSets.get(route)
  if (byMethod === undefined) {
    byMethod = new Map()
    labelSets.set(route, byMethod)
  }
  let labels = byMethod.get(method)
  if (labels === undefined) {
    labels = { ...route, method }
    byMethod.set(method, labels)
  }
  return labels
}
