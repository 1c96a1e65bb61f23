import type { FastifyReply } from 'fastify'
import type { Reservation } from '../session/session-registry.js'

/**
 * Keeps a place held for what a request may open until its response is over:
 * used by then (the session or stream took it), or given back, however the request ended.
 */
export function holdUntilAnswered (reply: FastifyReply, place: Reservation): Reservation {
  reply.raw.once('close', () => place.release())
  return place
}
