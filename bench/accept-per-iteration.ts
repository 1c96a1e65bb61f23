/**
 * How fast a busy Node process takes connections off a full listen queue.
 *
 *   npx tsc -p tsconfig.bench.json && node dist/bench/bench/accept-per-iteration.js [connections] [busyMs] [listeners]
 *
 * libuv 1.45 and later (Node 20 and up) accept ONE connection per listening fd
 * per poll of the event loop (libuv commit 6c692ad, "unix: don't accept()
 * connections in a loop"), so a loop that spends `busyMs` on every iteration
 * takes `connections × busyMs` to drain the queue. Each extra fd on the same
 * listening socket adds one accept per iteration: this script gets them on
 * Node 20 by sending the listening server to the child `listeners` times over
 * IPC (each send hands over a duplicate fd), the way Node 22.12's `reusePort`
 * would with separate sockets.
 */
import { fork } from 'node:child_process'
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'

const isChild = process.argv[2] === 'child'
const args = process.argv.slice(isChild ? 3 : 2)
const connections = Number(args[0] ?? 300)
const busyMs = Number(args[1] ?? 10)
const listeners = Number(args[2] ?? 1)

type ToChild = { kind: 'server' } | { kind: 'start' }
type ToParent = { kind: 'listening', count: number } | { kind: 'blocking' } | { kind: 'done', iterations: number, maxPerIteration: number, ms: number }

function spin (ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end);
}

function runChild (): void {
  const servers: Server[] = []
  let accepted = 0
  const send = (message: ToParent): void => { process.send?.(message) }
  process.on('message', (message: ToChild, handle?: Server) => {
    if (message.kind === 'server' && handle !== undefined) {
      servers.push(handle)
      handle.on('connection', (socket: Socket) => { accepted++; socket.destroy() })
      send({ kind: 'listening', count: servers.length })
      return
    }
    if (message.kind !== 'start') return
    send({ kind: 'blocking' })
    // The parent connects while this loop is blocked: every handshake lands in the listen queue.
    spin(1500)
    const perIteration: number[] = []
    const startedAt = performance.now()
    const tick = (): void => {
      perIteration.push(accepted)
      accepted = 0
      // Stands for the work an iteration does for a busy proxy's other ready sockets.
      spin(busyMs)
      if (perIteration.reduce((sum, count) => sum + count, 0) < connections) {
        setImmediate(tick)
        return
      }
      send({ kind: 'done', iterations: perIteration.filter((count) => count > 0).length, maxPerIteration: Math.max(...perIteration), ms: performance.now() - startedAt })
      for (const server of servers) server.close()
      process.disconnect()
    }
    setImmediate(tick)
  })
}

async function runParent (): Promise<void> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, resolve))
  const { port } = server.address() as AddressInfo
  const child = fork(new URL(import.meta.url), ['child', String(connections), String(busyMs), String(listeners)])
  const next = async (): Promise<ToParent> => await new Promise((resolve) => child.once('message', resolve))
  for (let index = 0; index < listeners; index++) {
    child.send({ kind: 'server' } satisfies ToChild, server)
    await next()
  }
  // Only the child accepts from now on.
  server.close()
  child.send({ kind: 'start' } satisfies ToChild)
  await next()
  const sockets: Socket[] = []
  for (let index = 0; index < connections; index++) sockets.push(connect(port, '127.0.0.1').on('error', () => {}))
  const done = await next()
  for (const socket of sockets) socket.destroy()
  if (done.kind !== 'done') throw new Error(`unexpected message ${done.kind}`)
  console.log(`node ${process.version}, libuv ${process.versions.uv}; ${listeners} listening fd(s), ${busyMs} ms of work per loop iteration: ` +
    `${connections} queued connections accepted over ${done.iterations} iterations (at most ${done.maxPerIteration} per iteration) in ${done.ms.toFixed(0)} ms`)
}

if (isChild) runChild()
else await runParent()
