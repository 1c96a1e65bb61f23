import { randomBytes } from 'node:crypto'
import { parseMessages, type JsonRpcBody, type JsonRpcMessage } from './json-rpc.js'

const LISTEN_METHOD = 'subscriptions/listen'
const ACKNOWLEDGED = 'notifications/subscriptions/acknowledged'
// MCP 2026-07-28 (basic/patterns/subscriptions): every message of a listen stream carries its request's id here.
const SUBSCRIPTION_ID_META_KEY = 'io.modelcontextprotocol/subscriptionId'
// The proxy's own requests are told apart by this prefix (as in upstream/mcp-session-reestablish.ts).
const PROXY_LISTEN_ID_PREFIX = 'mcp-sse-resilience-listen-'

/** The notification types a listen request asks for (SubscriptionFilter), as far as the proxy reads them. */
export interface ListenFilter {
  readonly toolsListChanged: boolean
  readonly promptsListChanged: boolean
  readonly resourcesListChanged: boolean
  readonly resourceSubscriptions: readonly string[]
}

/** A client's `subscriptions/listen` request. */
export interface ListenRequest {
  /** Its id as JSON text: what the stream's messages carry, and the proxy writes back over its own. */
  readonly idJson: string
  readonly message: JsonRpcMessage
  readonly filter: ListenFilter
}

/** The listen request a POST body holds, alone; undefined for anything else (a batch included). */
export function listenRequestIn ({ messages, batch }: JsonRpcBody): ListenRequest | undefined {
  const message = messages[0]
  if (batch || messages.length !== 1 || message?.method !== LISTEN_METHOD || !isRequestId(message.id)) return undefined
  const params = message.params as { notifications?: unknown } | undefined
  return { idJson: JSON.stringify(message.id), message, filter: filterOf(params?.notifications) }
}

/** The same listen request under a new id the proxy mints, unguessable, so its text can be swapped back blindly. */
export function relistenRequest (listen: ListenRequest): { idJson: string, body: Buffer } {
  const id = `${PROXY_LISTEN_ID_PREFIX}${randomBytes(12).toString('hex')}`
  return { idJson: JSON.stringify(id), body: Buffer.from(JSON.stringify({ ...listen.message, id })) }
}

/** The filter an acknowledgement says the server honours; undefined when `data` is not one. */
export function acknowledgedFilterIn (data: string): ListenFilter | undefined {
  // Cheap test first: only the first message of a stream is the acknowledgement.
  if (!data.includes(ACKNOWLEDGED)) return undefined
  const message = parseMessages(data).find((item) => item.method === ACKNOWLEDGED)
  if (message === undefined) return undefined
  return filterOf((message.params as { notifications?: unknown } | undefined)?.notifications)
}

/** Whether `data` is the response to the listen request whose id is `idJson`: the end of its stream. */
export function isListenResponse (data: string, idJson: string): boolean {
  if (!data.includes('"result"') && !data.includes('"error"')) return false
  return parseMessages(data).some((message) => ('result' in message || 'error' in message) && JSON.stringify(message.id) === idJson)
}

/** What both filters ask for: a server honours at most what it was asked, and a client expects at most what it was told. */
export function narrowFilter (filter: ListenFilter, to: ListenFilter): ListenFilter {
  const uris = new Set(to.resourceSubscriptions)
  return {
    toolsListChanged: filter.toolsListChanged && to.toolsListChanged,
    promptsListChanged: filter.promptsListChanged && to.promptsListChanged,
    resourcesListChanged: filter.resourcesListChanged && to.resourcesListChanged,
    resourceSubscriptions: filter.resourceSubscriptions.filter((uri) => uris.has(uri))
  }
}

/**
 * What stands in for the notifications lost while a listen stream was away: each
 * kind it listens to changed, as the server would say it, under its subscription id.
 */
export function listenGapNotifications (filter: ListenFilter, idJson: string): string[] {
  const meta = `{"_meta":{"${SUBSCRIPTION_ID_META_KEY}":${idJson}}}`
  const notifications: string[] = []
  const listChanged = (kind: string): void => {
    notifications.push(`{"jsonrpc":"2.0","method":"notifications/${kind}/list_changed","params":${meta}}`)
  }
  if (filter.toolsListChanged) listChanged('tools')
  if (filter.promptsListChanged) listChanged('prompts')
  if (filter.resourcesListChanged) listChanged('resources')
  for (const uri of filter.resourceSubscriptions) {
    notifications.push(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/resources/updated', params: { uri, _meta: { [SUBSCRIPTION_ID_META_KEY]: JSON.parse(idJson) as unknown } } }))
  }
  return notifications
}

function filterOf (value: unknown): ListenFilter {
  const filter = typeof value === 'object' && value !== null ? value as Record<string, unknown> : {}
  const uris = filter.resourceSubscriptions
  return {
    toolsListChanged: filter.toolsListChanged === true,
    promptsListChanged: filter.promptsListChanged === true,
    resourcesListChanged: filter.resourcesListChanged === true,
    resourceSubscriptions: Array.isArray(uris) ? uris.filter((uri): uri is string => typeof uri === 'string') : []
  }
}

function isRequestId (id: unknown): boolean {
  return typeof id === 'string' || typeof id === 'number'
}
