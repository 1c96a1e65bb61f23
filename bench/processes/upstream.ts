/**
 * The bench upstream, in its own process: SSE streams at full speed, at a fixed
 * rate, or dropping on purpose, and a fake MCP endpoint for idle sessions.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { announceReady, serveCalls } from '../ipc/serve.js'
import { DroppingStreams } from '../upstream/dropping-stream.js'
import { answerMcpPost } from '../upstream/fake-mcp.js'
import { streamAtFullSpeed } from '../upstream/full-speed-stream.js'
import { PacedStreams } from '../upstream/paced-streams.js'
import { parseStreamRequest } from '../upstream/stream-request.js'
import { StreamGate } from '../upstream/stream-gate.js'
import { StreamRegistry } from '../upstream/stream-registry.js'
import { eventWriter } from '../wire/event-payload.js'

export interface UpstreamStats {
  readonly openStreams: number
  readonly eventsWritten: number
  readonly backlogBytes: number
  readonly cpuMicros: number
}

export type UpstreamApi = {
  stats: () => Promise<UpstreamStats>
  /** New streams send their response head, and wait for release() to send events. */
  hold: () => Promise<void>
  release: () => Promise<void>
}

export interface UpstreamReady {
  readonly port: number
}

const registry = new StreamRegistry()
const paced = new PacedStreams(registry)
const dropping = new DroppingStreams()
const gate = new StreamGate()

const server = createServer((request, response) => {
  const url = new URL(request.url ?? '/', 'http://upstream')
  if (request.method === 'GET' && url.pathname === '/stream') {
    openStream(request, response, url)
  } else if (request.method === 'POST' && url.pathname === '/mcp') {
    answerMcpPost(request, response)
  } else {
    response.writeHead(404).end()
  }
})

function openStream (request: IncomingMessage, response: ServerResponse, url: URL): void {
  const wanted = parseStreamRequest(request, url)
  const writeEvent = eventWriter(wanted.eventBytes)
  response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  // A comment at once: some proxies send the response head only with the first body bytes.
  response.write(': open\n\n')
  registry.add(response)
  gate.whenOpen(() => {
    if (response.destroyed) return
    if (wanted.dropAfterMs > 0) {
      dropping.serve(response, writeEvent, wanted.key, wanted.firstSeq, wanted.dropAfterMs)
    } else if (wanted.ratePerSecond > 0) {
      paced.add(response, writeEvent, wanted.ratePerSecond, wanted.firstSeq)
    } else {
      streamAtFullSpeed(response, writeEvent, wanted.eventBytes, wanted.firstSeq, registry)
    }
  })
}

serveCalls<UpstreamApi>({
  stats: async () => {
    const cpu = process.cpuUsage()
    return { openStreams: registry.openCount, eventsWritten: registry.eventsWritten, backlogBytes: registry.backlogBytes, cpuMicros: cpu.user + cpu.system }
  },
  hold: async () => gate.hold(),
  release: async () => gate.release()
})

server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
  announceReady({ port: (server.address() as AddressInfo).port } satisfies UpstreamReady)
})
