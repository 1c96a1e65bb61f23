import { isMessageOfKind, type CallMessage, type ReplyMessage, type RpcMethods } from './protocol.js'

/** Answers the harness's calls with `methods`. The child exits when the harness goes. */
export function serveCalls<Api extends RpcMethods<Api>> (methods: Api): void {
  process.on('message', (message: unknown) => {
    if (!isMessageOfKind<CallMessage>(message, 'call')) return
    const call = message
    answer(methods, call).then(reply, (error: unknown) => {
      reply({ kind: 'reply', id: call.id, error: error instanceof Error ? error.stack ?? error.message : String(error) })
    })
  })
  process.on('disconnect', () => process.exit(0))
}

/** Tells the harness that the child is up, with what it needs to know (a port). */
export function announceReady (info: unknown): void {
  process.send?.({ kind: 'ready', info })
}

async function answer<Api extends RpcMethods<Api>> (methods: Api, call: CallMessage): Promise<ReplyMessage> {
  const method = (methods as Record<string, unknown>)[call.method]
  if (typeof method !== 'function') throw new Error(`no method ${call.method}`)
  const value: unknown = await Reflect.apply(method, methods, call.args)
  return { kind: 'reply', id: call.id, value }
}

function reply (message: ReplyMessage): void {
  process.send?.(message)
}
