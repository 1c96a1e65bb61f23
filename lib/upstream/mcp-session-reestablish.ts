import type { Dispatcher } from 'undici'
import type { ProxySession } from '../session/session-registry.js'
import type { HeaderMap } from './headers.js'

const SESSION_HEADER = 'mcp-session-id'

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
  const initialize = session.initializeRequest
  if (initialize === undefined) return undefined
  const headers: Record<string, string> = { accept: 'application/json, text/event-stream', 'content-type': 'application/json' }
  for (const name of ['authorization', 'mcp-protocol-version', 'cookie']) {
    const value = clientHeaders[name]
    if (typeof value === 'string') headers[name] = value
  }
  const opened = await post(dispatcher, url, headers, initialize)
  const upstreamSessionId = opened.headers[SESSION_HEADER]
  if (opened.statusCode !== 200 || typeof upstreamSessionId !== 'string') return undefined
  const inSession = { ...headers, [SESSION_HEADER]: upstreamSessionId }
  await post(dispatcher, url, inSession, session.initializedNotification ?? Buffer.from('{"jsonrpc":"2.0","method":"notifications/initialized"}'))
  let next = 0
  for (const uri of session.subscriptions) {
    const subscribe = JSON.stringify({ jsonrpc: '2.0', id: `mcp-sse-resilience-resubscribe-${++next}`, method: 'resources/subscribe', params: { uri } })
    await post(dispatcher, url, inSession, Buffer.from(subscribe))
  }
  return upstreamSessionId
}

async function post (dispatcher: Dispatcher, url: string, headers: Record<string, string>, body: Buffer): Promise<{ statusCode: number, headers: Record<string, string | string[] | undefined> }> {
  const target = new URL(url)
  const response = await dispatcher.request({ origin: target.origin, path: `${target.pathname}${target.search}`, method: 'POST', headers, body })
  // The answers themselves (the initialize result, the acknowledgements) are not the client's.
  await response.body.dump()
  return { statusCode: response.statusCode, headers: response.headers }
}
