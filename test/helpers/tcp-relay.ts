import { once } from 'node:events'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'

/** A TCP relay on 127.0.0.1 in front of a port, whose connections a test can cut. */
export interface TcpRelay {
  readonly port: number
  /** Destroys every open client/target socket pair at once. */
  cutAll (): void
  /** Stops relaying: open pairs are cut, new connections destroyed as they arrive. */
  pause (): void
  resume (): void
  /** Open client/target pairs. */
  readonly connections: number
  close (): Promise<void>
}

interface Teardown { teardown: (fn: () => unknown) => void }

interface SocketPair {
  client: Socket
  target: Socket
}

export async function startTcpRelay (t: Teardown, targetPort: number): Promise<TcpRelay> {
  const pairs = new Set<SocketPair>()
  let paused = false

  const cut = (pair: SocketPair): void => {
    pairs.delete(pair)
    pair.client.destroy()
    pair.target.destroy()
  }
  const cutAll = (): void => {
    for (const pair of [...pairs]) cut(pair)
  }

  const server = createServer((client) => {
    if (paused) {
      client.destroy()
      return
    }
    const target = connect(targetPort, '127.0.0.1')
    const pair: SocketPair = { client, target }
    pairs.add(pair)
    // Either side ending, failing or closing ends the pair: a relay has no half-open state to keep.
    for (const socket of [client, target]) {
      socket.on('error', () => cut(pair))
      socket.once('close', () => cut(pair))
    }
    client.pipe(target)
    target.pipe(client)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')

  const close = async (): Promise<void> => {
    cutAll()
    if (!server.listening) return
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  t.teardown(close)

  return {
    port: (server.address() as AddressInfo).port,
    cutAll,
    pause: () => {
      paused = true
      cutAll()
    },
    resume: () => { paused = false },
    get connections () { return pairs.size },
    close
  }
}
