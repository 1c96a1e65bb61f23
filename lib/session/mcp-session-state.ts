import type { JsonRpcMessage } from '../wire/json-rpc.js'
import type { ProxySession } from './session-registry.js'

/**
 * Records what opening the session again upstream must send:
 * the client's initialize, its notifications/initialized, and the resources it is
 * subscribed to, at most `maxSubscriptions` of them. True when the messages changed any of it.
 */
export function recordSessionState (session: ProxySession, messages: readonly JsonRpcMessage[], maxSubscriptions: number): boolean {
  let changed = false
  for (const message of messages) {
    const uri = (message.params as { uri?: unknown } | undefined)?.uri
    if (message.method === 'initialize') {
      session.initializeRequest = Buffer.from(JSON.stringify(message))
    } else if (message.method === 'notifications/initialized') {
      session.initializedNotification = Buffer.from(JSON.stringify(message))
    } else if (message.method === 'resources/subscribe' && typeof uri === 'string' && session.subscriptions.size < maxSubscriptions) {
      session.subscriptions.add(uri)
    } else if (message.method === 'resources/unsubscribe' && typeof uri === 'string') {
      session.subscriptions.delete(uri)
    } else {
      continue
    }
    changed = true
  }
  return changed
}
