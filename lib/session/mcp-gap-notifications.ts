import type { SseEvent } from '../wire/sse-event.js'
import type { ProxySession } from './session-registry.js'

/**
 * What an MCP client would otherwise never learn after its session's stream had a
 * gap, said in the protocol's own terms: a `list_changed` for each list the server
 * announces changes of, and `resources/updated` for each resource the client
 * subscribed to. The client then fetches them again; a notification it did not
 * need costs it one request, one it lost would have left it stale.
 */
export function mcpGapNotifications (session: ProxySession): SseEvent[] {
  const notifications: SseEvent[] = []
  for (const list of session.serverCapabilities?.listChanged ?? []) {
    notifications.push({ data: `{"jsonrpc":"2.0","method":"notifications/${list}/list_changed"}` })
  }
  for (const uri of session.subscriptions) {
    notifications.push({ data: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/resources/updated', params: { uri } }) })
  }
  return notifications
}
