import type { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { dropUpstreamHead, type UpstreamResponseHead } from '../upstream/forward.js'

// Requests already sent again: never twice.
const resentRequests = new WeakSet<FastifyRequest>()

export interface Resend {
  /** Makes what the request addressed reachable again (a session reopened, an endpoint moved); false when it cannot be. */
  readonly recover: () => Promise<boolean>
  readonly resend: () => unknown
  /** Tells the client that what it addressed is gone. */
  readonly giveUp: () => void
}

/**
 * An upstream 404 for what the request addressed (an MCP session, a legacy
 * endpoint) means the upstream lost it (a restart). Once it is recovered the
 * request goes again: the upstream never processed it. Once per request; returns
 * whether it took the response over.
 */
export function resendOnceOn404 (request: FastifyRequest, reply: FastifyReply, head: UpstreamResponseHead, body: Readable, steps: Resend): boolean {
  if (head.statusCode !== 404 || resentRequests.has(request)) return false
  resentRequests.add(request)
  body.destroy()
  steps.recover().then(async (recovered) => {
    dropUpstreamHead(reply, head)
    if (recovered) await steps.resend()
    else steps.giveUp()
  }).catch(/* c8 ignore next -- the steps above answer every failure themselves; this only keeps an
     unforeseen rejection from going unhandled, and answers it with the error handler's 500. */ (error: unknown) => reply.send(error))
  return true
}
