import type { IncomingMessage, ServerResponse } from 'node:http'
import { Readable } from 'node:stream'

/**
 * node:http in front of a fetch-shaped handler, as `@modelcontextprotocol/node`'s
 * `toNodeHandler` does: the request becomes a web Request whose signal aborts when the
 * client goes away, and the Response's body is piped back as it is produced.
 */
export function serveWebHandler (handle: (request: Request) => Promise<Response>): (request: IncomingMessage, response: ServerResponse) => void {
  return (request, response) => {
    const aborted = new AbortController()
    response.once('close', () => { if (!response.writableFinished) aborted.abort() })
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.once('end', () => {
      const headers = new Headers()
      for (const [name, value] of Object.entries(request.headers)) {
        if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value)
      }
      const hasBody = request.method !== 'GET' && request.method !== 'HEAD'
      const webRequest = new Request(`http://${request.headers.host ?? '127.0.0.1'}${request.url ?? '/'}`, {
        method: request.method,
        headers,
        body: hasBody ? Buffer.concat(chunks) : undefined,
        signal: aborted.signal
      })
      handle(webRequest).then(async (answer) => {
        response.writeHead(answer.status, Object.fromEntries(answer.headers))
        response.flushHeaders()
        if (answer.body === null) {
          response.end()
          return
        }
        const body = Readable.fromWeb(answer.body as import('node:stream/web').ReadableStream<Uint8Array>)
        response.once('close', () => body.destroy())
        body.on('error', () => response.destroy())
        body.pipe(response)
      }).catch(() => {
        if (!response.headersSent) response.writeHead(500)
        response.end()
      })
    })
  }
}
