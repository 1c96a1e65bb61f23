import type { IncomingHttpHeaders } from 'node:http'
import { pipeline, Transform, type Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { UpstreamTimeoutError, UpstreamUnavailableError } from '../errors.js'
import type { ProxyMetrics, RouteLabels } from '../metrics.js'
import { upstreamHeadersForClient, withoutHopByHop, type HeaderMap } from './headers.js'
import { isEventStream } from '../wire/content-type.js'

export interface UpstreamResponseHead {
  statusCode: number
  headers: IncomingHttpHeaders
}

export interface ForwardOptions {
  /** The full upstream URL, query string included; the client's query is not added. */
  url: string
  /** The client's request body, byte for byte. */
  body?: Buffer | undefined
  labels: RouteLabels
  metrics: ProxyMetrics
  rewriteRequestHeaders?: (headers: HeaderMap) => HeaderMap
  /**
   * Runs once the upstream's status and headers are in, before anything reaches the
   * client; when it returns a promise, the response waits for it (it must not reject).
   */
  onResponseHead?: (head: UpstreamResponseHead, reply: FastifyReply) => Promise<void> | undefined
  /** May take the whole response over instead (it then owns the body): true when it did. */
  takeOver?: (head: UpstreamResponseHead, body: Readable) => boolean
  /** Takes over a `200 text/event-stream` response; without it, and for every other response, the body passes through as it is. */
  onEventStream?: (body: Readable) => void
  /** Is given a copy of a body that passes through, once it has ended, when it is at most `maxBytes`. */
  observeBody?: { readonly maxBytes: number, readonly onBody: (body: Buffer, head: UpstreamResponseHead) => void } | undefined
}

/**
 * Sends the client's request upstream through @fastify/reply-from. Its retries are
 * off: a request is sent once, and an event stream that breaks is the
 * upstream stream's to resume, not reply-from's.
 */
export function forwardToUpstream (request: FastifyRequest, reply: FastifyReply, options: ForwardOptions): void {
  const { url } = options
  reply.from(url, {
    ...(options.body === undefined ? {} : { body: options.body, contentType: request.headers['content-type'] ?? 'application/octet-stream' }),
    // Exactly the URL's own query: reply-from would otherwise add the client's.
    queryString: () => new URL(url).search.slice(1),
    retryDelay: () => null,
    rewriteRequestHeaders: (_request, headers) => toUpstreamRequestHeaders(headers as HeaderMap, options) as IncomingHttpHeaders,
    rewriteHeaders: (headers) => upstreamHeadersForClient(headers as HeaderMap) as IncomingHttpHeaders,
    onResponse: (_request, _reply, typedResponse) => {
      // reply-from types this as a ServerResponse; at run time it is { statusCode, headers, stream }.
      const response = typedResponse as unknown as UpstreamResponseHead & { stream: Readable }
      passUpstreamResponse(reply, { statusCode: response.statusCode, headers: response.headers }, response.stream, options)
    },
    onError: (_reply, { error }) => sendUpstreamError(request, reply, options, error)
  })
}

/** The headers a request goes upstream with, from those the client sent. */
export function toUpstreamRequestHeaders (headers: HeaderMap, options: ForwardOptions): HeaderMap {
  const forwarded: HeaderMap = withoutHopByHop(headers)
  // The body is re-framed by the HTTP client; the proxy reads SSE as text, so no compression.
  delete forwarded['content-length']
  delete forwarded.expect
  forwarded['accept-encoding'] = 'identity'
  return options.rewriteRequestHeaders?.(forwarded) ?? forwarded
}

/** An upstream answer, once its head is on the reply: taken over, relayed as a stream, or passed through. */
export function passUpstreamResponse (reply: FastifyReply, head: UpstreamResponseHead, body: Readable, options: ForwardOptions): void {
  if (options.takeOver?.(head, body) === true) return
  const passOn = (): void => {
    if (options.onEventStream !== undefined && head.statusCode === 200 && isEventStream(head.headers['content-type'])) {
      options.onEventStream(body)
    } else {
      reply.send(options.observeBody === undefined ? body : observed(body, head, options.observeBody))
    }
  }
  const headHandled = options.onResponseHead?.(head, reply)
  if (headHandled === undefined) {
    passOn()
  } else {
    headHandled.then(passOn, passOn)
  }
}

/** The proxy's own answer to an upstream that could not be reached or did not answer in time: it never names the upstream. */
export function sendUpstreamError (request: FastifyRequest, reply: FastifyReply, options: ForwardOptions, error: Error): void {
  const clientError = isTimeout(error) ? new UpstreamTimeoutError() : new UpstreamUnavailableError()
  options.metrics.upstreamErrors.inc({ ...options.labels, reason: clientError.code })
  request.log.warn({ upstream: options.url, err: error }, clientError.message)
  reply.code(clientError.statusCode).send({
    statusCode: clientError.statusCode,
    code: clientError.code,
    error: clientError.name,
    message: clientError.message
  })
}

/**
 * The body, as it passes through to the client, copied up to a bound (past it, the
 * copy is dropped). A transform, not a second reader: nothing flows before the
 * reply reads it.
 */
function observed (body: Readable, head: UpstreamResponseHead, observer: NonNullable<ForwardOptions['observeBody']>): Readable {
  let chunks: Buffer[] | undefined = []
  let bytes = 0
  const copy = new Transform({
    transform (chunk: Buffer, _encoding, done) {
      bytes += chunk.length
      if (bytes > observer.maxBytes) chunks = undefined
      chunks?.push(chunk)
      done(null, chunk)
    },
    flush (done) {
      if (chunks !== undefined) observer.onBody(Buffer.concat(chunks), head)
      done()
    }
  })
  return pipeline(body, copy, () => {})
}

function rootCause (error: Error): Error {
  let current = error
  while (current.cause instanceof Error) current = current.cause
  return current
}

function isTimeout (error: Error): boolean {
  const code = (rootCause(error) as NodeJS.ErrnoException).code
  return code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT'
}

/**
 * Takes an upstream answer's headers off the reply, when the request goes upstream
 * again instead: the reply keeps the proxy's own (its CORS answer).
 */
export function dropUpstreamHead (reply: FastifyReply, head: UpstreamResponseHead): void {
  for (const name of Object.keys(upstreamHeadersForClient(head.headers))) reply.removeHeader(name)
}
