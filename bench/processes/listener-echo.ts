/**
 * Sends every listening server it is sent straight back, then lets go of its own
 * copy: each trip through IPC hands the proxy one more fd on its listening socket.
 */
import type { Server } from 'node:net'

process.on('message', (message: unknown, server?: Server) => {
  if (server === undefined) return
  // Closed once sent back (closing before would close the fd being sent). The proxy asks before it
  // announces itself ready, so no client connects meanwhile and this process accepts nothing.
  process.send?.(message, server, () => server.close())
})
process.on('disconnect', () => process.exit(0))
