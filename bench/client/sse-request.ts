import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http'

export interface OpenedStream {
  readonly request: ClientRequest
  readonly response: IncomingMessage
}

export interface StartedStream {
  readonly request: ClientRequest
  /** The response head; any status but 200 is an error. */
  readonly opened: Promise<OpenedStream>
}

/**
 * A GET for an event stream, on a connection of its own (as a browser's or an
 * SDK's stream would hold one). The request is there at once, to be destroyed
 * even before it is answered.
 */
export function startEventStream (url: string, headers: Record<string, string> = {}, timeoutMs = 30_000): StartedStream {
  const request = httpRequest(url, { agent: false, headers: { accept: 'text/event-stream', ...headers } })
  const opened = new Promise<OpenedStream>((resolve, reject) => {
    const timer = setTimeout(() => {
      request.destroy(new Error(`no response from ${url} within ${timeoutMs} ms`))
    }, timeoutMs)
    request.once('response', (response) => {
      clearTimeout(timer)
      if (response.statusCode !== 200) {
        response.resume()
        request.destroy()
        reject(new Error(`${url} answered ${String(response.statusCode)}`))
        return
      }
      resolve({ request, response })
    })
    request.once('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
  })
  request.end()
  return { request, opened }
}

export async function openEventStream (url: string, headers: Record<string, string> = {}, timeoutMs = 30_000): Promise<OpenedStream> {
  return await startEventStream(url, headers, timeoutMs).opened
}
