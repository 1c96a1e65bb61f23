import type { Dispatcher } from 'undici'
import type { ProxySession } from '../session/session-registry.js'
import { answeredIds } from '../wire/json-rpc.js'
import { serverCapabilitiesInBody, type ServerCapabilities } from '../wire/mcp-initialize.js'
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

export interface ReopenedSession {
  readonly upstreamSessionId: string
  /** What the new session's initialize answer announced, when it could be read. */
  readonly capabilities: ServerCapabilities | undefined
}

/**
 * Opens a new upstream MCP session for a proxy session whose upstream session
 * was lost (the upstream answered 404, MCP 2025-03-26 to 2025-11-25): the client's
 * own initialize and notifications/initialized again, then its resource
 * subscriptions. Undefined when the upstream would not open one.
 */
export async function reestablishUpstreamSession (
  dispatcher: Dispatcher,
  url: string,
  session: ProxySession,
  clientHeaders: HeaderMap,
  maxAnswerBytes: number
): Promise<ReopenedSession | undefined> {
  const handshake = handshakeOf(session)
  if (handshake === undefined) return undefined
  const headers = { accept: 'application/json, text/event-stream', ...handshakeHeaders(clientHeaders) }
  const opened = await send(dispatcher, 'POST', url, headers, handshake.initialize, maxAnswerBytes)
  const upstreamSessionId = opened.headers[SESSION_HEADER]
  if (opened.statusCode !== 200 || typeof upstreamSessionId !== 'string') return undefined
  const inSession = { ...headers, [SESSION_HEADER]: upstreamSessionId }
  for (const message of handshake.followUps) await send(dispatcher, 'POST', url, inSession, message)
  const contentType = opened.headers['content-type']
  const capabilities = opened.body === undefined ? undefined : serverCapabilitiesInBody(opened.body, typeof contentType === 'string' ? contentType : undefined, maxAnswerBytes)
  return { upstreamSessionId, capabilities }
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

interface Answer {
  readonly statusCode: number
  readonly headers: Record<string, string | string[] | undefined>
  /** Read when asked for, and at most that many bytes long. */
  readonly body?: Buffer | undefined
}

/**
 * The answers (the acknowledgements, the initialize result) are not the client's: they
 * are dropped, or, up to `keepBytes`, read for what the proxy needs to know of them.
 */
async function send (dispatcher: Dispatcher, method: 'POST' | 'DELETE', url: string, headers: Record<string, string>, body?: Buffer, keepBytes = 0): Promise<Answer> {
  const target = new URL(url)
  const response = await dispatcher.request({ origin: target.origin, path: `${target.pathname}${target.search}`, method, headers, body })
  const answer = { statusCode: response.statusCode, headers: response.headers }
  if (keepBytes === 0) {
    await response.body.dump()
    return answer
  }
  return { ...answer, body: await readAtMost(response.body, keepBytes) }
}

/** The body, or undefined once it grows past `maxBytes` (the rest is then dropped). */
async function readAtMost (body: AsyncIterable<Buffer> & { dump: () => Promise<void> }, maxBytes: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = []
  let bytes = 0
  for await (const chunk of body) {
    bytes += chunk.length
    if (bytes > maxBytes) {
      await body.dump()
      return undefined
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}
