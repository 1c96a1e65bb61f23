import { eventLines } from '../wire/sse-event-bytes.js'
import type { ProxySession } from './session-registry.js'

/**
 * What an MCP client would otherwise never learn after its session's stream had a
 * gap, said in the protocol's own terms: a `list_changed` for each list the server
 * announces changes of, and `resources/updated` for each resource the client
 * subscribed to. The client then fetches them again; a notification it did not
 * need costs it one request, one it lost would have left it stale.
 */
export function mcpGapNotifications (session: ProxySession): Buffer[] {
  const notifications: Buffer[] = []
  for (const list of session.serverCapabilities?.listChanged ?? []) {
    notifications.push(listChangedLines(list))
  }
  for (const uri of session.subscriptions) {
    notifications.push(eventLines({ data: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/resources/updated', params: { uri } }) }))
  }
  return notifications
}

// A handful of lists (tools, prompts, resources): each notification's bytes are made once.
const listChanged = new Map<string, Buffer>()

function listChangedLines (list: string): Buffer {
  let lines = listChanged.get(list)
  if (lines === undefined) {
    lines = eventLines({ data: `{"jsonrpc":"2.0","method":"notifications/${list}/list_changed"}` })
    listChanged.set(list, lines)
  }
  return lines
}
