import { Agent, request as httpRequest } from 'node:http'

const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1.0.0' } }
})

export interface SessionsOpened {
  readonly opened: number
  readonly failed: number
}

/** Opens MCP sessions through a streamable-http route: one `initialize` POST each, then nothing. */
export async function openSessions (url: string, count: number, concurrency: number): Promise<SessionsOpened> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency })
  let next = 0
  let opened = 0
  let failed = 0
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++
      if (await initialize(url, agent)) opened++
      else failed++
    }
  }
  try {
    await Promise.all(Array.from({ length: concurrency }, worker))
  } finally {
    agent.destroy()
  }
  return { opened, failed }
}

async function initialize (url: string, agent: Agent): Promise<boolean> {
  return await new Promise((resolve) => {
    const request = httpRequest(url, {
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }
    }, (response) => {
      response.resume()
      response.once('end', () => resolve(response.statusCode === 200 && response.headers['mcp-session-id'] !== undefined))
    })
    request.once('error', () => resolve(false))
    request.end(INITIALIZE)
  })
}
