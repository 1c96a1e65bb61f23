/**
 * Sends every listening server it is sent straight back, then lets go of its own
 * copy: each trip through IPC hands the proxy one more fd on its listening socket.
 */
import type { Server } from 'node:net'

process.on('message', (message: unknown, server?: Server) => {
  if (server === undefined) return
  // Closed in the same turn it arrives: this process never polls the socket, so never accepts from it.
  process.send?.(message, server, () => server.close())
})
process.on('disconnect', () => process.exit(0))
