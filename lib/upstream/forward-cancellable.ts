import type { IncomingHttpHeaders } from 'node:http'
import { finished } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Dispatcher } from 'undici'
import { passUpstreamResponse, sendUpstreamError, toUpstreamRequestHeaders, type ForwardOptions } from './forward.js'
import { upstreamHeadersForClient, type HeaderMap } from './headers.js'

const ignore = (): void => {}

/**
 * Sends a request upstream with undici itself, rather than through reply-from, whose
 * request takes no abort signal: the upstream request is aborted the moment the
 * client's response closes unfinished, before the upstream's head as well as after.
 * For MCP 2026-07-28, where closing a request's stream MUST be read as cancelling it
 * (basic/transports/streamable-http), and the SDK's client cancels just so.
 */
export function forwardCancellable (dispatcher: Dispatcher, request: FastifyRequest, reply: FastifyReply, options: ForwardOptions): void {
  const cancel = new AbortController()
  // Also called back when the response had already closed: a client that left during the preHandler.
  finished(reply.raw, (error) => {
    if (error === undefined || error === null) return
    cancel.abort()
    options.metrics.requestsCancelled.inc(options.labels)
  })
  send(dispatcher, request, reply, options, cancel.signal).catch(/* c8 ignore next -- send answers every failure
     itself; this only keeps an unforeseen one from going unhandled, with the error handler's 500. */ (error: unknown) => reply.send(error))
}

async function send (dispatcher: Dispatcher, request: FastifyRequest, reply: FastifyReply, options: ForwardOptions, signal: AbortSignal): Promise<void> {
  const url = new URL(options.url)
  let response: Dispatcher.ResponseData
  try {
    response = await dispatcher.request({
      origin: url.origin,
      path: url.pathname + url.search,
      method: request.method as Dispatcher.HttpMethod,
      headers: toUpstreamRequestHeaders({ ...request.headers, host: url.host }, options) as IncomingHttpHeaders,
      body: options.body,
      signal
    })
  } catch (error) {
    // A client that left is owed no answer.
    if (!signal.aborted) sendUpstreamError(request, reply, options, error as Error)
    return
  }
  const { statusCode, body } = response
  // An aborted body errors, and an unread body's error would crash the process (fastify/fastify-reply-from#328).
  body.on('error', ignore)
  const head = { statusCode, headers: response.headers as IncomingHttpHeaders }
  try {
    reply.code(statusCode)
  } catch (error) {
    // A status Fastify cannot send (undici reads any three digits).
    body.destroy()
    sendUpstreamError(request, reply, options, error as Error)
    return
  }
  const forwarded: HeaderMap = upstreamHeadersForClient(head.headers)
  for (const name of Object.keys(forwarded)) reply.header(name, forwarded[name])
  passUpstreamResponse(reply, head, body, options)
}
