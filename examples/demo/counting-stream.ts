import type { IncomingMessage, ServerResponse } from 'node:http'

/**
 * A plain SSE endpoint that counts: `id: n` and `data: n`, one every `intervalMs`.
 * It keeps nothing: a request with `Last-Event-ID: n` simply counts on from n + 1,
 * as a well-behaved SSE server does. So a restarted process carries on where the
 * proxy's reconnect says it stopped.
 */
export function serveCountingStream (request: IncomingMessage, response: ServerResponse, intervalMs: number): void {
  const header = request.headers['last-event-id']
  const last = typeof header === 'string' && /^\d{1,15}$/.test(header) ? Number(header) : 0
  let n = last
  response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  response.flushHeaders()
  const timer = setInterval(() => {
    n++
    response.write(`id: ${n}\ndata: ${n}\n\n`)
  }, intervalMs)
  response.once('close', () => clearInterval(timer))
}
