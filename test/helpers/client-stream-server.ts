import { createServer, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import type { FastifyReply } from 'fastify'
import { ClientSseStream } from '../../lib/client/client-sse-stream.js'
import { SseClient } from './sse-client.js'

/**
 * A real client socket for code below the routes: a node:http server that hands each
 * request's response, as a ClientSseStream, to `onClient`, and an SseClient connected
 * to it. `onEnd` runs, then the server closes, when the test ends.
 */
export async function clientOverSocket (test: { teardown: (fn: () => void) => void }, onClient: (output: ClientSseStream) => void, onEnd: () => void): Promise<SseClient> {
  const server = createServer((_request, response: ServerResponse) => {
    // ClientSseStream takes the reply over: hijack() and the raw response are all it uses.
    const reply = { hijack () {}, raw: response } as unknown as FastifyReply
    onClient(new ClientSseStream(reply, {}, { heartbeatMs: 0, maxBufferedBytes: 1 << 20, onSlowConsumer: () => {} }))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  test.teardown(() => {
    onEnd()
    server.closeAllConnections()
    server.close()
  })
  return await SseClient.open(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`)
}
