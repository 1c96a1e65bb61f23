import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startDemoUpstream } from './mcp-server.js'

// `npm run demo`: the example MCP server, and the standalone proxy in front of it.
const packageRoot = fileURLToPath(new URL('../../../', import.meta.url))
const proxyPort = process.env.FASTIFY_PORT ?? '8080'
const upstreamPort = Number(process.env.DEMO_UPSTREAM_PORT ?? 3000)

const upstream = await startDemoUpstream(upstreamPort)
const configFile = join(mkdtempSync(join(tmpdir(), 'mcp-sse-demo-')), 'demo.yaml')
writeFileSync(configFile, `routes:
  - kind: streamable-http
    path: /mcp
    upstream: ${upstream.origin}/mcp
  - kind: legacy-sse
    path: /sse
    messagesPath: /messages
    upstream: ${upstream.origin}/sse
metrics:
  enabled: true
  path: /metrics
`)

const fastifyCli = createRequire(import.meta.url).resolve('fastify-cli/cli.js')
const proxy = spawn(process.execPath, [fastifyCli, 'start', '--options', '--config', 'config/fastify-cli.json', 'dist/server.js'], {
  cwd: packageRoot,
  env: { ...process.env, MCP_SSE_RESILIENCE_CONFIG: configFile, FASTIFY_PORT: proxyPort },
  stdio: ['ignore', 'inherit', 'inherit']
})

const proxyUrl = `http://127.0.0.1:${proxyPort}`
console.log(`
Example MCP server: ${upstream.origin}/mcp (Streamable HTTP) and ${upstream.origin}/sse (HTTP+SSE)
Proxy:              ${proxyUrl}/mcp and ${proxyUrl}/sse, metrics at ${proxyUrl}/metrics

List the tools through the proxy with the MCP Inspector:
  npx @modelcontextprotocol/inspector@2 --cli ${proxyUrl}/mcp --transport http --method tools/list

Or with curl: initialize, note the Mcp-Session-Id header, then call a tool that streams progress:
  curl -si ${proxyUrl}/mcp -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \\
    -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'
  curl -N ${proxyUrl}/mcp -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \\
    -H 'mcp-session-id: <the id>' -H 'mcp-protocol-version: 2025-11-25' \\
    -d '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"countdown","arguments":{"steps":5,"intervalMs":500},"_meta":{"progressToken":"p1"}}}'

Press Ctrl-C to stop.
`)

function stop (): void {
  proxy.kill('SIGTERM')
  upstream.close().then(() => process.exit(0), () => process.exit(1))
}
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
proxy.once('exit', (code) => {
  if (code !== 0 && code !== null) {
    console.error(`the proxy exited with code ${code}`)
    upstream.close().finally(() => process.exit(code))
  }
})
