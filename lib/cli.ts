#!/usr/bin/env node
import { COMMAND, CliUsageError, HELP, parseCliArgs, type CliCommand } from './standalone/cli-args.js'

// The fastify-mcp-sse-resilience command (package.json `bin`): the standalone server without fastify-cli.

let command: CliCommand
try {
  command = parseCliArgs(process.argv.slice(2))
} catch (error) {
  /* c8 ignore next -- parseCliArgs throws nothing else; anything else is a bug, and keeps its stack */
  if (!(error instanceof CliUsageError)) throw error
  process.stderr.write(`${COMMAND}: ${error.message}\nRun ${COMMAND} --help for the options.\n`)
  process.exit(2)
}

if (command.kind === 'help') {
  process.stdout.write(HELP)
} else {
  const { configFile, port, host, logLevel } = command
  // Loaded only to start: --help and usage errors answer at once.
  const { default: Fastify } = await import('fastify')
  const { default: standaloneServer } = await import('./server.js')
  // As lib/server.ts's options for fastify-cli: a shutdown closes every client socket, idle or not.
  const app = Fastify({ logger: { level: logLevel }, forceCloseConnections: true })
  await app.register(standaloneServer, { configFile })
  try {
    await app.listen({ port, host })
  } catch (error) {
    // A port in use or not allowed: a fact about this machine, not a bug; its message says it.
    /* c8 ignore next -- listen fails with system errors, which carry a code; anything else keeps its stack */
    if (typeof (error as NodeJS.ErrnoException).code !== 'string') throw error
    process.stderr.write(`${COMMAND}: cannot listen on ${host}:${port}: ${(error as Error).message}\n`)
    process.exit(1)
  }

  /* c8 ignore start -- only a failing onClose hook rejects close(), and the proxy's are not expected to fail */
  const closeFailed = (error: unknown): void => {
    app.log.error({ err: error }, 'could not close cleanly')
    process.exit(1)
  }
  /* c8 ignore stop */
  let closing = false
  const close = (signal: NodeJS.Signals): void => {
    if (closing) {
      app.log.warn({ signal }, 'second signal while closing: exiting at once')
      process.exit(1)
    }
    closing = true
    app.log.info({ signal }, 'closing: client streams get a retry hint and end')
    app.close().then(() => process.exit(0), closeFailed)
  }
  process.on('SIGTERM', close)
  process.on('SIGINT', close)
}
