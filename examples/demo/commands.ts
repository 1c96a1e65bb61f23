/** A command the demo prints for its user to paste, with what it shows. */
export interface TryItCommand {
  readonly about: string
  readonly lines: readonly string[]
}

const MCP_HEADERS = "-H 'content-type: application/json' -H 'accept: application/json, text/event-stream'"
const INITIALIZE = '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'
const COUNTDOWN = '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"countdown","arguments":{"steps":5,"intervalMs":300},"_meta":{"progressToken":"p1"}}}'

/**
 * Each works as pasted into a POSIX shell with curl (test/demo.test.ts runs them):
 * no placeholder to fill in, and what one needs from another is taken by the shell.
 */
export function tryItCommands (proxy: string): TryItCommand[] {
  return [
    {
      about: 'the counting stream through the proxy (Ctrl-C to stop)',
      lines: [`curl -sN ${proxy}/events`]
    },
    {
      about: 'leave after 1 s, then come back with the last id you got: the proxy replays what you missed',
      lines: [
        `ID=$(curl -sN --max-time 1 ${proxy}/events | sed -n 's/^id: //p' | tail -n 1)`,
        `curl -sN --max-time 1 -D - ${proxy}/events -H "Last-Event-ID: $ID"`
      ]
    },
    {
      about: 'MCP: initialize, keep the session id, then call a tool that streams its progress',
      lines: [
        `SID=$(curl -s -D - -o /dev/null ${proxy}/mcp ${MCP_HEADERS} \\`,
        `  -d '${INITIALIZE}' \\`,
        "  | tr -d '\\r' | awk -F': ' 'tolower($1) == \"mcp-session-id\" { print $2 }')",
        `curl -sN ${proxy}/mcp ${MCP_HEADERS} -H "mcp-session-id: $SID" -H 'mcp-protocol-version: 2025-11-25' \\`,
        `  -d '${COUNTDOWN}'`
      ]
    },
    {
      about: 'the same MCP server with the MCP Inspector\'s CLI',
      lines: [`npx -y @modelcontextprotocol/inspector@2 --cli ${proxy}/mcp --transport http --method tools/list`]
    },
    {
      about: 'liveness, readiness, and the proxy\'s own metrics',
      lines: [
        `curl -s -w '\\n' ${proxy}/healthz`,
        `curl -s -w '\\n' ${proxy}/readyz`,
        `curl -s ${proxy}/metrics | grep '^sse_'`
      ]
    }
  ]
}
