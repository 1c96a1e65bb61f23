import type { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { parseRetryAfter } from './backoff.js'
import { isEventStream } from '../wire/content-type.js'
import type { HeaderMap } from './headers.js'

export type ConnectResult =
  /** `freshSession`: the upstream session is a new one, which cannot have kept what the old one sent. */
  | { readonly kind: 'connected', readonly body: Readable, readonly freshSession?: boolean }
  | { readonly kind: 'retry', readonly reason: string, readonly retryAfterMs?: number | undefined }
  | { readonly kind: 'give-up', readonly reason: string, readonly statusCode?: number | undefined }

/** Statuses worth another try (RFC 9110): the server's trouble, a timeout, or "too many". */
function isRetryable (statusCode: number): boolean {
  return statusCode >= 500 || statusCode === 408 || statusCode === 429
}

/**
 * Opens an upstream event stream again, for a stream that dropped, with the
 * upstream's last event id. reply-from serves a client's request; a reconnect has
 * no client request, so it goes through the same undici dispatcher directly.
 */
export async function connectEventStream (dispatcher: Dispatcher, url: string, headers: HeaderMap, lastEventId: string | undefined): Promise<ConnectResult> {
  const requestHeaders = eventStreamHeaders(headers)
  if (lastEventId !== undefined) requestHeaders['last-event-id'] = lastEventId
  return await openEventStream(dispatcher, url, { method: 'GET', headers: requestHeaders })
}

/**
 * Sends a request whose answer is an event stream again (an MCP 2026-07-28
 * `subscriptions/listen`), for a stream that dropped. `signal` abandons it.
 */
export async function postForEventStream (dispatcher: Dispatcher, url: string, headers: HeaderMap, body: Buffer, signal: AbortSignal): Promise<ConnectResult> {
  const requestHeaders = eventStreamHeaders(headers)
  requestHeaders.accept = 'application/json, text/event-stream'
  requestHeaders['content-type'] = 'application/json'
  return await openEventStream(dispatcher, url, { method: 'POST', headers: requestHeaders, body, signal })
}

function eventStreamHeaders (headers: HeaderMap): Record<string, string> {
  const requestHeaders: Record<string, string> = { accept: 'text/event-stream', 'accept-encoding': 'identity' }
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) requestHeaders[name] = String(value)
  }
  return requestHeaders
}

async function openEventStream (
  dispatcher: Dispatcher,
  url: string,
  request: { method: 'GET' | 'POST', headers: Record<string, string>, body?: Buffer, signal?: AbortSignal }
): Promise<ConnectResult> {
  const target = new URL(url)
  try {
    const response = await dispatcher.request({ origin: target.origin, path: `${target.pathname}${target.search}`, ...request })
    const contentType = response.headers['content-type']
    if (response.statusCode === 200 && isEventStream(typeof contentType === 'string' ? contentType : undefined)) {
      return { kind: 'connected', body: response.body }
    }
    await response.body.dump()
    const retryAfter = response.headers['retry-after']
    if (isRetryable(response.statusCode)) {
      return { kind: 'retry', reason: `status ${response.statusCode}`, retryAfterMs: parseRetryAfter(typeof retryAfter === 'string' ? retryAfter : undefined, Date.now()) }
    }
    return { kind: 'give-up', reason: `status ${response.statusCode}`, statusCode: response.statusCode }
  } catch (error) {
    return { kind: 'retry', reason: (error as NodeJS.ErrnoException).code ?? (error as Error).message }
  }
}
