// Runs in the browser page, bundled by esbuild at test time: the MCP SDK's own
// client, as a web app uses it, with a fetch that records what the page could read.
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'

/** One request the client sent, and what the page could read of its answer. */
export interface PageRequest {
  method: string
  lastEventId: string | null
  status?: number
  /** Readable only when the proxy exposes the header (Access-Control-Expose-Headers). */
  sessionId?: string | null
  resumeStatus?: string | null
  /** The request failed: no connection, or an answer CORS did not let the page read. */
  error?: string
}

export interface ScenarioResult {
  sessionId: string | undefined
  progress: number[]
  text: string[]
  requests: PageRequest[]
}

export interface PageApi {
  /** Connects to `url`, calls `countdown` with progress, then ends the session. */
  mcpScenario: (url: string, steps: number, intervalMs: number) => Promise<ScenarioResult>
  /** Connects to `url` and disconnects: 'connected', or the error the page got. */
  mcpTryConnect: (url: string) => Promise<string>
  /** Tells the test of each progress notification as it arrives (playwright's exposeFunction). */
  mcpProgress: (progress: number) => Promise<void>
}

const page = globalThis as unknown as PageApi

function connectTo (url: string, requests: PageRequest[]): { client: Client, transport: StreamableHTTPClientTransport } {
  const recordingFetch: typeof fetch = async (input, init) => {
    const record: PageRequest = { method: init?.method ?? 'GET', lastEventId: new Headers(init?.headers).get('last-event-id') }
    requests.push(record)
    try {
      const response = await fetch(input, init)
      record.status = response.status
      record.sessionId = response.headers.get('mcp-session-id')
      record.resumeStatus = response.headers.get('x-resume-status')
      return response
    } catch (error) {
      record.error = String(error)
      throw error
    }
  }
  const client = new Client({ name: 'browser-page', version: '1.0.0' })
  // Quick retries: the test cuts the connection for a few hundred milliseconds.
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    fetch: recordingFetch,
    reconnectionOptions: { initialReconnectionDelay: 100, maxReconnectionDelay: 400, reconnectionDelayGrowFactor: 1.5, maxRetries: 20 }
  })
  return { client, transport }
}

page.mcpScenario = async (url, steps, intervalMs) => {
  const requests: PageRequest[] = []
  const { client, transport } = connectTo(url, requests)
  await client.connect(transport)
  const progress: number[] = []
  const result = await client.callTool({ name: 'countdown', arguments: { steps, intervalMs } }, undefined, {
    timeout: 10000,
    onprogress: (update) => {
      progress.push(update.progress)
      page.mcpProgress(update.progress).catch(() => {})
    }
  })
  const sessionId = transport.sessionId
  await transport.terminateSession()
  await client.close()
  const content = result.content as Array<{ text?: string }>
  return { sessionId, progress, text: content.map((item) => String(item.text)), requests }
}

page.mcpTryConnect = async (url) => {
  const { client, transport } = connectTo(url, [])
  try {
    await client.connect(transport)
    await client.close()
    return 'connected'
  } catch (error) {
    return String(error)
  }
}
