import { createServer, type ServerResponse } from 'node:http'
import { childConfig, listen, loadState, saveState, type ChildConfig } from './child-common.js'

/**
 * The soak's plain SSE upstream, run as a child process so that it can be killed
 * with SIGKILL and started again on the same port.
 *
 * GET /events?stream=<topic>&pad=<bytes>&perTick=<n> subscribes to a topic. Every
 * topic produces `perTick` events per tick, numbered 1, 2, 3, ... for as long as
 * the process lives, whether anyone listens or not. Each event is
 *
 *     id: <n>
 *     data: {"s":"<topic>","n":<n>,"pad":"xxx..."}
 *
 * The topics' counters are saved before their events are written to any socket,
 * so the numbering survives a kill: a restarted upstream goes on where the old one
 * stopped, and what it ever sent is 1..n. It honours Last-Event-ID: a request
 * that carries `n` gets n+1.. first, then live; one without gets live from now.
 * Writes respect backpressure: a connection whose socket is full is paused until
 * it drains, and catches up from the topic's numbering (any n can be rebuilt).
 */

interface Topic {
  n: number
  pad: number
  perTick: number
}

interface State {
  topics: Record<string, Topic>
}

interface Connection {
  readonly response: ServerResponse
  readonly topic: string
  /** The last n written to it. */
  cursor: number
  waitingForDrain: boolean
}

const config = childConfig<ChildConfig>()
const state = loadState<State>(config.stateFile, { topics: {} })
const connections = new Set<Connection>()
let producing = true
// Events per write: enough to batch a catch-up, few enough to keep each write small.
const MAX_EVENTS_PER_WRITE = 64

function eventText (topic: string, pad: number, n: number): string {
  return `id: ${n}\ndata: ${JSON.stringify({ s: topic, n, pad: 'x'.repeat(pad) })}\n\n`
}

function pump (connection: Connection): void {
  const topic = state.topics[connection.topic]
  if (topic === undefined || connection.waitingForDrain || connection.response.destroyed) return
  while (connection.cursor < topic.n) {
    const last = Math.min(topic.n, connection.cursor + MAX_EVENTS_PER_WRITE)
    let text = ''
    for (let n = connection.cursor + 1; n <= last; n++) text += eventText(connection.topic, topic.pad, n)
    connection.cursor = last
    if (!connection.response.write(text)) {
      connection.waitingForDrain = true
      connection.response.once('drain', () => {
        connection.waitingForDrain = false
        pump(connection)
      })
      return
    }
  }
}

const tick = setInterval(() => {
  if (!producing) return
  for (const topic of Object.values(state.topics)) topic.n += topic.perTick
  // Saved before anything is written: whatever a client may have seen is on record.
  saveState(config.stateFile, state)
  for (const connection of connections) pump(connection)
}, config.tickMs)

// Comments keep the proxy's idle timeout away once production has stopped.
setInterval(() => {
  for (const connection of connections) {
    if (!connection.waitingForDrain) connection.response.write(': keepalive\n\n')
  }
}, 5000)

const server = createServer((request, response) => {
  const url = new URL(request.url ?? '/', 'http://upstream')
  const name = url.searchParams.get('stream')
  if (request.method !== 'GET' || url.pathname !== '/events' || name === null) {
    response.writeHead(404).end()
    return
  }
  let topic = state.topics[name]
  if (topic === undefined) {
    topic = { n: 0, pad: Number(url.searchParams.get('pad') ?? 0), perTick: Number(url.searchParams.get('perTick') ?? 1) }
    state.topics[name] = topic
    saveState(config.stateFile, state)
  }
  const lastEventId = request.headers['last-event-id']
  const after = typeof lastEventId === 'string' && /^\d+$/.test(lastEventId) ? Number(lastEventId) : undefined
  if (after !== undefined && after > topic.n) {
    // Never expected: the state is saved before events are sent.
    process.stderr.write(`sse upstream: Last-Event-ID ${after} is past ${name}'s ${topic.n}\n`)
  }
  const connection: Connection = { response, topic: name, cursor: Math.min(after ?? topic.n, topic.n), waitingForDrain: false }
  response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  response.flushHeaders()
  connections.add(connection)
  response.once('close', () => connections.delete(connection))
  pump(connection)
})

listen(server, config.port, () => {
  producing = false
  clearInterval(tick)
  saveState(config.stateFile, state)
  return Object.fromEntries(Object.entries(state.topics).map(([name, topic]) => [name, topic.n]))
})
