import { parseArgs } from 'node:util'

export const COMMAND = 'fastify-mcp-sse-resilience'

export const HELP = `Usage: ${COMMAND} [--config FILE] [--port N] [--host ADDRESS] [--log-level LEVEL]

Starts the fastify-mcp-sse-resilience proxy, configured by a YAML file
(every key: docs/configuration.md). SIGTERM or SIGINT (Ctrl-C) closes it
gracefully: client streams get a retry hint and end cleanly, then it exits 0.

Options:
  -c, --config FILE        the YAML config file. Default: the file that
                           MCP_SSE_RESILIENCE_CONFIG names, else the package's
                           config/default.yaml
  -p, --port N             the port to listen on. Default: 8080
  -H, --host ADDRESS       the address to listen on. Default: 127.0.0.1
  -l, --log-level LEVEL    fatal, error, warn, info, debug, trace or silent.
                           Default: info (JSON lines on stdout)
  -h, --help               this text

An invalid config file ends it with exit code 1 and its problems on stderr.
`

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]

export type CliCommand =
  | { readonly kind: 'help' }
  | { readonly kind: 'start', readonly configFile: string | undefined, readonly port: number, readonly host: string, readonly logLevel: LogLevel }

/** A command line that cannot be run; its message names what is wrong. */
export class CliUsageError extends Error {}

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  port: { type: 'string', short: 'p' },
  host: { type: 'string', short: 'H' },
  'log-level': { type: 'string', short: 'l' },
  help: { type: 'boolean', short: 'h' }
} as const

/** Reads the command line; throws CliUsageError with one message per problem. */
export function parseCliArgs (argv: readonly string[]): CliCommand {
  // Not strict: parseArgs' own messages suggest `--` tricks; these say what to fix.
  const { values, tokens } = parseArgs({ args: [...argv], options: OPTIONS, strict: false, allowPositionals: true, tokens: true })
  const problems: string[] = []
  for (const token of tokens) {
    if (token.kind === 'positional') {
      problems.push(`unexpected argument "${token.value}"`)
    } else if (token.kind === 'option' && !(token.name in OPTIONS)) {
      problems.push(`unknown option ${token.rawName}`)
    } else if (token.kind === 'option' && token.name === 'help') {
      if (token.value !== undefined) problems.push(`${token.rawName} takes no value`)
    } else if (token.kind === 'option' && (token.value === undefined || (token.inlineValue !== true && token.value.startsWith('-')))) {
      // `--host --port 80` would read "--port" as the host.
      problems.push(`${token.rawName} needs a value`)
    }
  }
  if (values.help === true && problems.length === 0) return { kind: 'help' }
  const port = portOf(stringValue(values.port) ?? '8080', problems)
  const logLevel = logLevelOf(stringValue(values['log-level']) ?? 'info', problems)
  if (problems.length > 0) throw new CliUsageError(problems.join('; '))
  return { kind: 'start', configFile: stringValue(values.config), port, host: stringValue(values.host) ?? '127.0.0.1', logLevel }
}

// Not strict, parseArgs types every value as string | boolean; the checks above make them strings.
function stringValue (value: string | boolean | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined
}

function portOf (text: string, problems: string[]): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN
  if (!(port <= 65535)) problems.push(`--port must be a whole number from 0 to 65535, not "${text}"`)
  return port
}

function logLevelOf (text: string, problems: string[]): LogLevel {
  const level = LOG_LEVELS.find((candidate) => candidate === text)
  if (level === undefined) problems.push(`--log-level must be one of ${LOG_LEVELS.join(', ')}, not "${text}"`)
  return level ?? 'info'
}
