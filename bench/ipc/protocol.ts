/**
 * The messages between the harness and its child processes, over Node's IPC channel.
 * A child announces itself once it listens, then answers calls, one reply per call.
 */

/** The methods a child serves: each takes its arguments and answers with a promise. */
export type RpcMethods<Api> = { [Method in keyof Api]: (...args: never[]) => Promise<unknown> }

export interface ReadyMessage {
  readonly kind: 'ready'
  readonly info: unknown
}

export interface CallMessage {
  readonly kind: 'call'
  readonly id: number
  readonly method: string
  readonly args: unknown[]
}

export type ReplyMessage =
  | { readonly kind: 'reply', readonly id: number, readonly value: unknown }
  | { readonly kind: 'reply', readonly id: number, readonly error: string }

export function isMessageOfKind<Message extends { readonly kind: string }> (message: unknown, kind: Message['kind']): message is Message {
  return typeof message === 'object' && message !== null && (message as { kind?: unknown }).kind === kind
}
