import type { ProxySession } from '../session/session-registry.js'
import type { ServerCapabilities } from '../wire/mcp-initialize.js'

/** The part of a session that other replicas need to serve it. */
export interface SessionRecord {
  readonly routePath: string
  readonly endsWithItsStreams: boolean
  readonly endRequested: boolean
  readonly upstreamSessionId: string | undefined
  /** legacy-sse: where the upstream takes the session's messages. */
  readonly upstreamEndpoint: string | undefined
  readonly initializeRequest: Buffer | undefined
  readonly initializedNotification: Buffer | undefined
  readonly subscriptions: readonly string[]
  readonly serverCapabilities: ServerCapabilities | undefined
}

/**
 * Sessions in the shared store, so that a session opened through one replica works
 * through any other: its upstream session, its recorded initialize and subscriptions.
 */
export interface SessionRecords {
  save: (session: ProxySession) => Promise<void>
  /** The record, kept alive for another idle period; undefined when there is none. */
  load: (sessionId: string) => Promise<SessionRecord | undefined>
  /** Marks the record of a session its client asked to end (a mark that save() leaves alone). */
  markEndRequested: (sessionId: string) => Promise<void>
  delete: (sessionId: string) => Promise<void>
}

/** Brings a local session up to date with its record. */
export function applyRecord (session: ProxySession, record: SessionRecord): void {
  if (record.endRequested) session.endRequested = true
  if (record.upstreamSessionId !== undefined) session.upstreamSessionId = record.upstreamSessionId
  // The replica that reads a legacy-sse stream knows its endpoint first: the record follows it.
  if (record.upstreamEndpoint !== undefined && session.legacyEndpoint === undefined) session.upstreamEndpoint = record.upstreamEndpoint
  if (record.initializeRequest !== undefined) session.initializeRequest = record.initializeRequest
  if (record.initializedNotification !== undefined) session.initializedNotification = record.initializedNotification
  if (record.serverCapabilities !== undefined) session.serverCapabilities = record.serverCapabilities
  session.subscriptions.clear()
  for (const uri of record.subscriptions) session.subscriptions.add(uri)
}
