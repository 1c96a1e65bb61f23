import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport, type EventStore } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { SubscribeRequestSchema, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'
import { z } from 'zod'
import { childConfig, listen, loadState, saveState, type ChildConfig } from './child-common.js'

/**
 * The soak's MCP server (official SDK: McpServer and StreamableHTTPServerTransport),
 * run as a child process so that it can be killed with SIGKILL and started again
 * on the same port. Like most MCP servers it keeps its sessions in memory: a
 * restart loses them all, and the proxy must open them again.
 *
 * - `resources/subscribe` with `tick://<topic>` subscribes the session to a topic.
 *   Every topic produces one numbered notification per tick, for as long as the
 *   process lives, `{"method":"notifications/tick","params":{"topic":..,"n":..}}`,
 *   sent on the session's standalone GET stream with the event id `<topic>:<n>`.
 * - Topics and what was sent of them survive a kill (a state file), as a durable
 *   topic log and its delivery offset would. A GET with Last-Event-ID `<topic>:<n>`
 *   goes on after n. A fresh subscription starts REWIND events before the
 *   delivery offset, at least once, as a server that cannot tell what a new
 *   session has seen must: whatever the proxy forwarded already, it must drop.
 * - The tool `count` sends `steps` progress notifications on its POST stream.
 */

interface Config extends ChildConfig {
  /** Events a fresh subscription re-sends from before the delivery offset. */
  rewind: number
}

interface Topic {
  /** Produced so far: the topic's events are 1..n. */
  n: number
  /** The highest n written to any session's GET stream. */
  delivered: number
}

interface Session {
  readonly transport: StreamableHTTPServerTransport
  topic?: string
  /** The last n sent to this session. */
  cursor: number
  /** The open standalone GET stream, once the SDK has registered it. */
  get?: ServerResponse
  delivering: boolean
}

const TICK_METHOD = 'notifications/tick'
const TICK_ID = /^([^:]+):(\d+)$/

const config = childConfig<Config>()
const state = loadState<{ topics: Record<string, Topic> }>(config.stateFile, { topics: {} })
const sessions = new Map<string, Session>()
let producing = true

/** Event ids: a tick's names its topic and number, so it is the same in every session and process. */
class TickEventStore implements EventStore {
  #counter = 0

  constructor (readonly session: () => Session | undefined) {}

  async storeEvent (streamId: string, message: JSONRPCMessage): Promise<string> {
    if ('method' in message && message.method === TICK_METHOD) {
      const { topic, n } = message.params as { topic: string, n: number }
      return `${topic}:${n}`
    }
    return `${streamId}:${++this.#counter}`
  }

  /** A GET that resumes a topic goes on after its id: the delivery loop sends the rest. */
  async replayEventsAfter (lastEventId: string): Promise<string> {
    const match = TICK_ID.exec(lastEventId)
    const session = this.session()
    if (match !== null && session !== undefined && session.topic === match[1]) {
      session.cursor = Number(match[2])
      return '_GET_stream'
    }
    return match?.[1] ?? lastEventId
  }
}

function topicOf (name: string): Topic {
  let topic = state.topics[name]
  if (topic === undefined) {
    topic = { n: 0, delivered: 0 }
    state.topics[name] = topic
    saveState(config.stateFile, state)
  }
  return topic
}

/** Sends a session what its topic produced past its cursor, while its GET stream is open. */
async function deliver (session: Session): Promise<void> {
  if (session.delivering) return
  session.delivering = true
  try {
    while (session.get !== undefined && session.topic !== undefined) {
      const topic = topicOf(session.topic)
      if (session.cursor >= topic.n) break
      const n = ++session.cursor
      await session.transport.send({ jsonrpc: '2.0', method: TICK_METHOD, params: { topic: session.topic, n } })
      if (n > topic.delivered) topic.delivered = n
    }
  } finally {
    session.delivering = false
  }
}

/** Delivery runs on its own; a failure (the stream went away) is only the end of this round. */
function startDelivery (session: Session): void {
  deliver(session).catch((error: unknown) => process.stderr.write(`mcp upstream: delivery failed: ${String(error)}\n`))
}

function createMcpServer (): McpServer {
  const server = new McpServer({ name: 'chaos-mcp-upstream', version: '1.0.0' }, { capabilities: { resources: { subscribe: true } } })
  server.server.setRequestHandler(SubscribeRequestSchema, async (request, extra) => {
    const session = sessions.get(extra.sessionId ?? '')
    const name = request.params.uri.replace(/^tick:\/\//, '')
    if (session !== undefined) {
      const topic = topicOf(name)
      session.topic = name
      session.cursor = Math.max(0, topic.delivered - config.rewind)
      startDelivery(session)
    }
    return {}
  })
  server.registerTool('count', {
    description: 'Sends one progress notification per step, then answers.',
    inputSchema: { steps: z.number().int().min(1).max(1000), intervalMs: z.number().int().min(0).max(1000) }
  }, async ({ steps, intervalMs }, extra) => {
    const progressToken = extra._meta?.progressToken
    for (let step = 1; step <= steps; step++) {
      if (progressToken !== undefined) {
        await extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress: step, total: steps } })
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs))
    }
    return { content: [{ type: 'text', text: `counted ${steps}` }] }
  })
  return server
}

/** Resolves once the response's headers are out (the SDK has registered the stream by then), or it closed. */
async function headersSent (response: ServerResponse): Promise<boolean> {
  while (!response.headersSent && !response.destroyed) await new Promise((resolve) => setTimeout(resolve, 2))
  return response.headersSent && !response.destroyed
}

async function handleGet (session: Session, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const handled = session.transport.handleRequest(request, response)
  if (await headersSent(response) && response.statusCode === 200) {
    session.get = response
    response.once('close', () => {
      if (session.get === response) delete session.get
    })
    startDelivery(session)
  }
  await handled
}

async function handle (request: IncomingMessage, response: ServerResponse): Promise<void> {
  const sessionId = request.headers['mcp-session-id']
  const session = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined
  if (session !== undefined) {
    if (request.method === 'GET') return await handleGet(session, request, response)
    return await session.transport.handleRequest(request, response)
  }
  if (sessionId !== undefined || request.method !== 'POST') {
    // A session this process never opened (it restarted): the client must initialize again.
    response.writeHead(sessionId === undefined ? 400 : 404, { 'content-type': 'application/json' })
    response.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }))
    return
  }
  let created: Session | undefined
  const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
    sessionIdGenerator: () => randomUUID(),
    eventStore: new TickEventStore(() => created),
    onsessioninitialized: (id) => {
      created = { transport, cursor: 0, delivering: false }
      sessions.set(id, created)
    },
    onsessionclosed: (id) => { sessions.delete(id) }
  })
  await createMcpServer().connect(transport)
  await transport.handleRequest(request, response)
}

const server = createServer((request, response) => {
  if (new URL(request.url ?? '/', 'http://upstream').pathname !== '/mcp') {
    response.writeHead(404).end()
    return
  }
  handle(request, response).catch((error: unknown) => {
    if (!response.headersSent) response.writeHead(500)
    response.end(String(error))
  })
})

const tick = setInterval(() => {
  if (!producing) return
  for (const topic of Object.values(state.topics)) topic.n++
  // Saved before anything is sent: whatever a client may have seen is on record.
  saveState(config.stateFile, state)
  for (const session of sessions.values()) startDelivery(session)
}, config.tickMs)

listen(server, config.port, () => {
  producing = false
  clearInterval(tick)
  saveState(config.stateFile, state)
  return Object.fromEntries(Object.entries(state.topics).map(([name, topic]) => [name, topic.n]))
}, () => sessions.size)
