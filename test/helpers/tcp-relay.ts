import { once } from 'node:events'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'

/** A TCP relay on 127.0.0.1 in front of a port, whose connections a test can cut. */
export interface TcpRelay {
  readonly port: number
  /** Destroys every open client/target socket pair at once. */
  cutAll (): void
  /** Relays new connections to another port from now on (an endpoint that follows a failover); open pairs are cut. */
  retarget (port: number): void
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

export interface TcpRelayOptions {
  /** Each chunk, either way, is passed on this much later: a slow link (in order, as TCP keeps it). */
  delayMs?: number
}

export async function startTcpRelay (t: Teardown, targetPort: number, options: TcpRelayOptions = {}): Promise<TcpRelay> {
  const pairs = new Set<SocketPair>()
  let paused = false
  let target = targetPort

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
    const pair: SocketPair = { client, target: connect(target, '127.0.0.1') }
    pairs.add(pair)
    // Either side ending, failing or closing ends the pair: a relay has no half-open state to keep.
    for (const socket of [client, pair.target]) {
      socket.on('error', () => cut(pair))
      socket.once('close', () => cut(pair))
    }
    if (options.delayMs === undefined) {
      client.pipe(pair.target)
      pair.target.pipe(client)
      return
    }
    const { delayMs } = options
    for (const [from, to] of [[client, pair.target], [pair.target, client]] as const) {
      from.on('data', (chunk: Buffer) => setTimeout(() => { if (!to.destroyed) to.write(chunk) }, delayMs))
    }
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
    retarget: (port) => {
      target = port
      cutAll()
    },
    pause: () => {
      paused = true
      cutAll()
    },
    resume: () => { paused = false },
    get connections () { return pairs.size },
    close
  }
}
