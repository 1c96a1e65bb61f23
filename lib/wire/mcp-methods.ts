/**
 * The JSON-RPC method names of MCP 2024-11-05 to 2026-07-28, client- and server-sent, as
 * the SDK v2's schemas define them for 2025-11-25 and 2026-07-28 (tasks/update from
 * SEP-2663 among them). Metrics label methods by this list only, so that a client cannot
 * grow their cardinality.
 */
const MCP_METHODS: ReadonlySet<string> = new Set([
  'initialize',
  'ping',
  'server/discover',
  'subscriptions/listen',
  'completion/complete',
  'logging/setLevel',
  'tools/list',
  'tools/call',
  'prompts/list',
  'prompts/get',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'tasks/get',
  'tasks/list',
  'tasks/result',
  'tasks/update',
  'tasks/cancel',
  'roots/list',
  'sampling/createMessage',
  'elicitation/create',
  'notifications/initialized',
  'notifications/cancelled',
  'notifications/progress',
  'notifications/message',
  'notifications/roots/list_changed',
  'notifications/tools/list_changed',
  'notifications/prompts/list_changed',
  'notifications/resources/list_changed',
  'notifications/resources/updated',
  'notifications/subscriptions/acknowledged',
  'notifications/elicitation/complete',
  'notifications/tasks/status'
])

/** The label a metric gives a method: its name when MCP defines it, else `other`. */
export function mcpMethodLabel (method: unknown): string {
  return typeof method === 'string' && MCP_METHODS.has(method) ? method : 'other'
}
