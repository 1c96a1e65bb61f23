import { fork } from 'node:child_process'
import type { Server } from 'node:net'

/**
 * `count` more listening fds on `server`'s socket, each a net.Server of its own.
 * libuv (1.45 and later) accepts one connection per listening fd per loop
 * iteration, so a busy loop with n fds drains its accept queue n times faster.
 * Node 20 has no reusePort: duplicates come back over IPC from a helper process.
 */
export async function listenerCopies (server: Server, count: number): Promise<Server[]> {
  if (count <= 0) return []
  const echo = fork(new URL('./listener-echo.js', import.meta.url), [], { stdio: 'ignore' })
  const copies: Server[] = []
  try {
    for (let index = 0; index < count; index++) {
      copies.push(await new Promise<Server>((resolve, reject) => {
        echo.once('message', (_message: unknown, copy?: Server) => copy === undefined ? reject(new Error('no server came back')) : resolve(copy))
        echo.send({ copy: index }, server)
      }))
    }
  } finally {
    echo.disconnect()
  }
  return copies
}
