import t, { type Test } from 'tap'
import { once } from 'node:events'
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage } from 'node:http'
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net'
import { startRedisServer } from './helpers/redis-process.js'
import { startReplica } from './helpers/replica-process.js'
import { startTcpRelay } from './helpers/tcp-relay.js'

// The helpers that run replicas, relays and Redis as separate pieces, tested so that they do not rot.

async function sleep (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}

/** An upstream whose /sse sends one event and stays open. */
async function startSseUpstream (t: Test): Promise<string> {
  const server = createHttpServer((request, response) => {
    if (request.url !== '/sse') {
      response.writeHead(404).end()
      return
    }
    response.writeHead(200, { 'content-type': 'text/event-stream' })
    response.write('data: hello from upstream\n\n')
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function get (url: string, headers: Record<string, string> = {}): Promise<IncomingMessage> {
  return await new Promise<IncomingMessage>((resolve, reject) => {
    const request = httpRequest(url, { agent: false, headers }, resolve)
    request.once('error', reject)
    request.end()
  })
}

/** The raw text of the first event of an SSE stream, up to its blank line. */
async function readFirstEvent (url: string): Promise<string> {
  const response = await get(url, { accept: 'text/event-stream' })
  response.setEncoding('utf8')
  let text = ''
  for await (const chunk of response) {
    text += chunk as string
    const end = text.indexOf('\n\n')
    if (end !== -1) {
      response.destroy()
      return text.slice(0, end)
    }
  }
  throw new Error(`the stream ended before an event: ${JSON.stringify(text)}`)
}

t.test('replica process', async (t) => {
  const upstream = await startSseUpstream(t)
  const options = { routes: [{ kind: 'sse', path: '/events', upstream: `${upstream}/sse` }] }
  // Both at once: each spends most of its start compiling lib/.
  const [streaming, stopping] = await Promise.all([startReplica(t, options), startReplica(t, options)])

  t.test('relays an SSE event, and kill() ends it', async (t) => {
    t.match(streaming.url, /^http:\/\/127\.0\.0\.1:\d+$/)
    t.ok(streaming.pid > 0)
    const event = await readFirstEvent(`${streaming.url}/events`)
    t.match(event, /^data: hello from upstream$/m, 'the payload came through')
    t.match(event, /^id: \S+$/m, 'with an id to resume from')
    await streaming.kill()
    t.equal(await streaming.exited, null, 'ended by the signal, not an exit code')
  })

  t.test('a stopped replica answers only after cont(), and close() is graceful', async (t) => {
    await stopping.stop()
    let answered = false
    const response = get(`${stopping.url}/no-such-route`).then((response) => {
      answered = true
      response.resume()
      return response.statusCode
    })
    await sleep(300)
    t.notOk(answered, 'no answer while stopped')
    await stopping.cont()
    t.equal(await response, 404, 'answered once it runs again')
    await stopping.close()
    t.equal(await stopping.exited, 0, 'closed its Fastify instance and exited cleanly')
  })
})

async function connectTo (port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.setEncoding('utf8')
  return socket
}

async function echoed (socket: Socket, text: string): Promise<string> {
  socket.write(text)
  let received = ''
  while (received.length < text.length) {
    const [chunk] = await once(socket, 'data') as [string]
    received += chunk
  }
  return received
}

t.test('tcp relay', async (t) => {
  const echoSockets = new Set<Socket>()
  const echo = createNetServer((socket) => {
    echoSockets.add(socket)
    socket.once('close', () => echoSockets.delete(socket))
    socket.on('error', () => {})
    socket.pipe(socket)
  })
  echo.listen(0, '127.0.0.1')
  await once(echo, 'listening')
  t.teardown(async () => {
    for (const socket of echoSockets) socket.destroy()
    await new Promise((resolve) => echo.close(resolve))
  })
  const relay = await startTcpRelay(t, (echo.address() as AddressInfo).port)

  const first = await connectTo(relay.port)
  t.equal(await echoed(first, 'through the relay'), 'through the relay')
  t.equal(relay.connections, 1)
  const firstClosed = once(first, 'close')
  relay.cutAll()
  await firstClosed
  t.equal(relay.connections, 0, 'the pair is gone')
  t.ok(first.destroyed, 'the client socket was closed')

  const second = await connectTo(relay.port)
  t.equal(await echoed(second, 'after the cut'), 'after the cut', 'a new connection works')

  const secondClosed = once(second, 'close')
  relay.pause()
  await secondClosed
  const refused = await connectTo(relay.port)
  let refusedReceived = ''
  refused.on('data', (chunk: string) => { refusedReceived += chunk })
  refused.write('anyone?')
  await once(refused, 'close')
  t.equal(refusedReceived, '', 'while paused, new connections are closed unanswered')
  relay.resume()
  const third = await connectTo(relay.port)
  t.equal(await echoed(third, 'resumed'), 'resumed')
  third.destroy()
})

/** One inline command on a fresh socket; the reply without its final CRLF. */
async function redisCommand (port: number, command: string): Promise<string> {
  const socket = await connectTo(port)
  socket.write(`${command}\r\n`)
  let reply = ''
  // A bulk string ($<length>) takes a second line, unless it is the null one ($-1).
  const complete = (): boolean => reply.split('\r\n').length > (reply.startsWith('$') && !reply.startsWith('$-1') ? 2 : 1)
  while (!complete()) {
    const [chunk] = await once(socket, 'data') as [string]
    reply += chunk
  }
  socket.destroy()
  return reply.slice(0, -2)
}

t.test('redis-server process', async (t) => {
  const redis = await startRedisServer(t)
  t.equal(redis.url, `redis://127.0.0.1:${redis.port}`)
  t.equal(await redisCommand(redis.port, 'PING'), '+PONG')
  t.equal(await redisCommand(redis.port, 'SET harness-key kept'), '+OK')
  t.equal(await redisCommand(redis.port, 'GET harness-key'), '$4\r\nkept')
  await redis.restart()
  t.equal(await redisCommand(redis.port, 'PING'), '+PONG', 'answers again on the same port')
  t.equal(await redisCommand(redis.port, 'GET harness-key'), '$-1', 'and lost its data')
})

t.test('chaos MCP client: a mid-event cut passes up part of one chunk, nothing after it', async (t) => {
  const { CuttableStream } = await import('./chaos/chaos-mcp-client.js')
  const first = 'event: message\nid: s.1\ndata: {"n":1}\n\n'
  const second = 'event: message\nid: s.2\ndata: {"n":2}\n\n'
  // Two writes, a moment apart, once the client waits for the body: it reads them as two chunks, the second while the first one's cut is under way.
  const server = createHttpServer((request, response) => {
    response.writeHead(200, { 'content-type': 'text/event-stream' })
    response.flushHeaders()
    setTimeout(() => {
      response.write(first)
      setTimeout(() => response.write(second), 1)
    }, 50)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const abort = new AbortController()
  const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { signal: abort.signal })
  let midEventCuts = 0
  const stream = new CuttableStream(response.body as ReadableStream<Uint8Array>, abort, () => 0.5, { done: () => {}, midEventCut: () => { midEventCuts++ } })
  stream.cut(true)
  const reader = stream.readable.getReader()
  let received = ''
  const decoder = new TextDecoder()
  for (;;) {
    const chunk = await reader.read().catch(() => ({ done: true as const, value: undefined }))
    if (chunk.done) break
    received += decoder.decode(chunk.value, { stream: true })
  }
  t.equal(midEventCuts, 1, 'one cut inside an event')
  t.ok(received.length > 0 && received.length < first.length && first.startsWith(received), `the client got a part of the first event only, and nothing spliced onto it (got ${JSON.stringify(received)})`)
})
