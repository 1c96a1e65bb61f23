import type { IncomingMessage } from 'node:http'

/** What a client asks of the bench upstream, in the query string the proxies pass on. */
export interface StreamRequest {
  /** Bytes per event, about. */
  readonly eventBytes: number
  /** Events per second on this connection; 0 writes as fast as the socket takes them. */
  readonly ratePerSecond: number
  /** Ends the response cleanly this long after its first event; 0 never. */
  readonly dropAfterMs: number
  /** Names the stream across the proxy's reconnects. */
  readonly key: string
  /** The stream goes on after the Last-Event-ID it is resumed with. */
  readonly firstSeq: number
}

export interface StreamQuery {
  eventBytes: number
  ratePerSecond: number
  dropAfterMs?: number
  key?: string
}

export function streamPath (query: StreamQuery): string {
  const params = new URLSearchParams({ size: String(query.eventBytes), rate: String(query.ratePerSecond) })
  if (query.dropAfterMs !== undefined) params.set('dropAfterMs', String(query.dropAfterMs))
  if (query.key !== undefined) params.set('key', query.key)
  return `/stream?${params.toString()}`
}

export function parseStreamRequest (request: IncomingMessage, url: URL): StreamRequest {
  const lastEventId = Number(request.headers['last-event-id'])
  return {
    eventBytes: numberParam(url, 'size', 200),
    ratePerSecond: numberParam(url, 'rate', 0),
    dropAfterMs: numberParam(url, 'dropAfterMs', 0),
    key: url.searchParams.get('key') ?? '',
    firstSeq: Number.isSafeInteger(lastEventId) && lastEventId > 0 ? lastEventId + 1 : 1
  }
}

function numberParam (url: URL, name: string, fallback: number): number {
  const value = Number(url.searchParams.get(name) ?? Number.NaN)
  return Number.isFinite(value) && value >= 0 ? value : fallback
}
