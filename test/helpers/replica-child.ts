import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'
import { mcpSseResilience, type McpSseResilienceOptions } from '../../lib/index.js'

/**
 * One proxy replica in its own process, started by replica-process.ts. The plugin
 * options come over IPC (or, to run it by hand, as JSON in the only argument); it
 * answers with the port it listens on.
 */

export type ToReplica =
  | { type: 'start', options: unknown }
  | { type: 'close' }

export type FromReplica =
  | { type: 'listening', port: number }
  | { type: 'failed', message: string }

function send (message: FromReplica): void {
  process.send?.(message)
}

function exitWithError (what: string): (error: unknown) => void {
  return (error) => {
    process.stderr.write(`replica failed to ${what}: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`)
    send({ type: 'failed', message: error instanceof Error ? error.message : String(error) })
    process.exit(1)
  }
}

async function start (options: unknown): Promise<void> {
  const app = Fastify({ logger: { level: process.env.REPLICA_LOG_LEVEL ?? 'warn' } })
  // Whatever the test sent is handed over as is: the plugin validates it.
  await app.register(mcpSseResilience, options as McpSseResilienceOptions)
  await app.listen({ port: 0, host: '127.0.0.1' })
  process.on('message', (message: ToReplica) => {
    if (message.type === 'close') app.close().then(() => process.exit(0), exitWithError('close'))
  })
  send({ type: 'listening', port: (app.server.address() as AddressInfo).port })
}

const optionsArgument = process.argv[2]
if (optionsArgument !== undefined) {
  start(JSON.parse(optionsArgument)).catch(exitWithError('start'))
} else {
  process.once('message', (message: ToReplica) => {
    if (message.type === 'start') start(message.options).catch(exitWithError('start'))
  })
}
// The test went away (it failed, or was killed): so does the replica.
process.on('disconnect', () => process.exit(0))
