import { once } from 'node:events'
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'

/**
 * A TCP relay between the demo's client and the proxy: the demo cuts the client's
 * connection here, as a load balancer, a Wi-Fi change or a sleeping laptop would.
 */
export class ClientRelay {
  readonly #server: Server
  readonly #sockets = new Set<Socket>()

  private constructor (targetPort: number) {
    this.#server = createServer((client) => {
      const target = connect(targetPort, '127.0.0.1')
      const pair = [client, target]
      for (const socket of pair) {
        this.#sockets.add(socket)
        socket.on('error', () => {})
        socket.once('close', () => {
          this.#sockets.delete(socket)
          for (const other of pair) other.destroy()
        })
      }
      client.pipe(target)
      target.pipe(client)
    })
  }

  static async start (targetPort: number): Promise<ClientRelay> {
    const relay = new ClientRelay(targetPort)
    relay.#server.listen(0, '127.0.0.1')
    await once(relay.#server, 'listening')
    return relay
  }

  get port (): number {
    return (this.#server.address() as AddressInfo).port
  }

  /** Destroys every connection at once, without a goodbye on either side. */
  cutAll (): void {
    for (const socket of this.#sockets) socket.destroy()
  }

  async close (): Promise<void> {
    this.cutAll()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}
