import type { Dispatcher } from 'undici'
import type { ProxySession } from '../session/session-registry.js'
import { answeredIds } from '../wire/json-rpc.js'
import type { HeaderMap } from './headers.js'

const SESSION_HEADER = 'mcp-session-id'
const DEFAULT_INITIALIZED = '{"jsonrpc":"2.0","method":"notifications/initialized"}'

// The JSON-RPC ids of the requests the proxy sends on its own behalf: their answers are never the client's.
const PROXY_REQUEST_ID_PREFIX = 'mcp-sse-resilience-'
const PROXY_REQUEST_ID_IN_JSON = `"${PROXY_REQUEST_ID_PREFIX}`

interface Handshake {
  readonly initialize: Buffer
  /** notifications/initialized, then one resources/subscribe per subscription. */
  readonly followUps: readonly Buffer[]
}

/**
 * Opens a new upstream MCP session for a proxy session whose upstream session
 * was lost (the upstream answered 404, MCP 2025-03-26 to 2025-11-25): the client's
 * own initialize and notifications/initialized again, then its resource
 * subscriptions. Returns the new upstream session id, or undefined when the
 * upstream would not open one.
 */
export async function reestablishUpstreamSession (
  dispatcher: Dispatcher,
  url: string,
  session: ProxySession,
  clientHeaders: HeaderMap
): Promise<string | undefined> {
  const handshake = handshakeOf(session)
  if (handshake === undefined) return undefined
  const headers = { accept: 'application/json, text/event-stream', ...handshakeHeaders(clientHeaders) }
  const opened = await send(dispatcher, 'POST', url, headers, handshake.initialize)
  const upstreamSessionId = opened.headers[SESSION_HEADER]
  if (opened.statusCode !== 200 || typeof upstreamSessionId !== 'string') return undefined
  const inSession = { ...headers, [SESSION_HEADER]: upstreamSessionId }
  for (const message of handshake.followUps) await send(dispatcher, 'POST', url, inSession, message)
  return upstreamSessionId
}

/** Ends an upstream session the proxy opened but no client will use (MCP: DELETE with its id). */
export async function endUpstreamSession (dispatcher: Dispatcher, url: string, upstreamSessionId: string, clientHeaders: HeaderMap): Promise<void> {
  await send(dispatcher, 'DELETE', url, { ...handshakeHeaders(clientHeaders), [SESSION_HEADER]: upstreamSessionId })
}

/**
 * The 2024-11-05 transport: a reconnected stream announced a new endpoint, so the
 * upstream session behind it is new and uninitialized. Replays the handshake there;
 * the answers come on the stream, where isProxyResponse() picks them out.
 * Returns false when there was nothing recorded to replay, or the upstream refused it.
 */
export async function reestablishLegacySession (
  dispatcher: Dispatcher,
  messagesUrl: string,
  session: ProxySession,
  clientHeaders: HeaderMap
): Promise<boolean> {
  const handshake = handshakeOf(session)
  if (handshake === undefined) return false
  const headers = handshakeHeaders(clientHeaders)
  for (const message of [handshake.initialize, ...handshake.followUps]) {
    const answer = await send(dispatcher, 'POST', messagesUrl, headers, message)
    if (answer.statusCode >= 300) return false
  }
  return true
}

/** Whether an event answers a request the proxy sent itself (a replayed handshake). */
export function isProxyResponse (data: string): boolean {
  return data.includes(PROXY_REQUEST_ID_IN_JSON) && answeredIds(data).some((id) => id.startsWith(PROXY_REQUEST_ID_IN_JSON))
}

function handshakeOf (session: ProxySession): Handshake | undefined {
  const initialize = session.initializeRequest
  if (initialize === undefined) return undefined
  // Its answer must not reach the client, which had its own long ago: the proxy's id marks it.
  const request = { ...JSON.parse(initialize.toString('utf8')) as Record<string, unknown>, id: `${PROXY_REQUEST_ID_PREFIX}initialize` }
  let next = 0
  const subscribes = [...session.subscriptions].map((uri) => Buffer.from(JSON.stringify({
    jsonrpc: '2.0', id: `${PROXY_REQUEST_ID_PREFIX}resubscribe-${++next}`, method: 'resources/subscribe', params: { uri }
  })))
  return {
    initialize: Buffer.from(JSON.stringify(request)),
    followUps: [session.initializedNotification ?? Buffer.from(DEFAULT_INITIALIZED), ...subscribes]
  }
}

function handshakeHeaders (clientHeaders: HeaderMap): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  for (const name of ['authorization', 'mcp-protocol-version', 'cookie']) {
    const value = clientHeaders[name]
    if (typeof value === 'string') headers[name] = value
  }
  return headers
}

async function send (dispatcher: Dispatcher, method: 'POST' | 'DELETE', url: string, headers: Record<string, string>, body?: Buffer): Promise<{ statusCode: number, headers: Record<string, string | string[] | undefined> }> {
  const target = new URL(url)
  const response = await dispatcher.request({ origin: target.origin, path: `${target.pathname}${target.search}`, method, headers, body })
  // The answers themselves (the initialize result, the acknowledgements) are not the client's.
  await response.body.dump()
  return { statusCode: response.statusCode, headers: response.headers }
}
