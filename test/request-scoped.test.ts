import t, { type Test } from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import type { McpSseResilienceOptions } from '../lib/index.js'
import { startProxy } from './helpers/proxy.js'

// MCP 2026-07-28 streams belong to their request: relayed as they come, never kept.
const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'x' }

async function setup (test: Test, handler: (request: IncomingMessage, response: ServerResponse) => void, extra: Omit<McpSseResilienceOptions, 'routes'> = {}) {
  const upstream = createServer((request, response) => {
    request.on('error', () => {})
    response.writeHead(200, { 'content-type': 'text/event-stream' })
    response.flushHeaders()
    handler(request, response)
  })
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  test.teardown(() => { upstream.closeAllConnections(); upstream.close() })
  return await startProxy(test, {
    routes: [{ kind: 'streamable-http', path: '/mcp', upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp` }],
    ...extra
  })
}

async function post (url: string): Promise<Response> {
  return await fetch(url, { method: 'POST', headers: HEADERS, body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}' })
}

t.test('events pass with the upstream\'s own ids; malformed lines are counted and skipped', async (t) => {
  const proxy = await setup(t, (_request, response) => {
    response.end('id: up-1\ndata: one\n\nbogus: line\ndata: two\n\n')
  })
  const response = await post(proxy.url('/mcp'))
  t.equal(await response.text(), 'id: up-1\ndata: one\n\ndata: two\n\n')
  const metrics = await (await fetch(proxy.url('/metrics'))).text()
  t.match(metrics, /sse_upstream_malformed_total\{route_kind="streamable-http",route="\/mcp",reason="unknown-field"\} 1/)
})

t.test('an oversized event or a broken upstream connection ends the stream cleanly', async (t) => {
  const proxy = await setup(t, (request, response) => {
    if (request.url?.includes('broken') === true) {
      response.write('data: before\n\n')
      setTimeout(() => response.socket?.destroy(), 20)
    } else {
      response.end(`data: ok\n\ndata: ${'x'.repeat(4096)}\n\n`)
    }
  }, { limits: { maxEventBytes: 1024 } })
  t.equal(await (await post(proxy.url('/mcp'))).text(), 'data: ok\n\n')
  t.equal(await (await post(proxy.url('/mcp?broken'))).text(), 'data: before\n\n')
})

t.test('a slow client holds the upstream back instead of filling memory, and still gets everything', async (t) => {
  const total = 20000
  let sent = 0
  const proxy = await setup(t, (_request, response) => {
    const write = (): void => {
      while (sent < total) {
        if (!response.write(`data: ${sent++} ${'y'.repeat(1000)}\n\n`)) {
          response.once('drain', write)
          return
        }
      }
      response.end()
    }
    write()
  })
  const response = await post(proxy.url('/mcp'))
  const reader = response.body!.getReader()
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.ok(sent < total, `the upstream could write only ${sent} of ${total} events (20 MB) while the client read nothing`)
  let text = ''
  const decoder = new TextDecoder()
  for (let chunk = await reader.read(); chunk.done !== true; chunk = await reader.read()) text += decoder.decode(chunk.value, { stream: true })
  const numbers = [...text.matchAll(/^data: (\d+) /gm)].map((match) => Number(match[1]))
  t.equal(numbers.length, total)
  t.ok(numbers.every((value, index) => value === index), 'in order, none lost')
})

t.test('a client behind by more than limits.clientBufferBytes in one write is cut and counted', async (t) => {
  const proxy = await setup(t, (_request, response) => {
    response.write(`data: ${'z'.repeat(200000)}\n\n`)
  }, { limits: { clientBufferBytes: 1024 } })
  const response = await post(proxy.url('/mcp'))
  await response.text().catch(() => '')
  const metrics = await (await fetch(proxy.url('/metrics'))).text()
  t.match(metrics, /sse_slow_consumer_disconnects_total\{route_kind="streamable-http",route="\/mcp"\} 1/)
})
