import type { IncomingHttpHeaders } from 'node:http'

// RFC 9110 section 7.6.1, plus the legacy names proxies still see.
const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade'
]

export type HeaderMap = Record<string, string | string[] | number | undefined>

/** A copy of `headers` without hop-by-hop fields, nor those the Connection header names. */
export function withoutHopByHop<T extends HeaderMap | IncomingHttpHeaders> (headers: T): T {
  const copy: HeaderMap = { ...headers }
  for (const name of listedInConnection(copy.connection)) delete copy[name]
  for (const name of HOP_BY_HOP) delete copy[name]
  return copy as T
}

/**
 * An upstream response's headers as the client gets them: without hop-by-hop fields,
 * nor CORS ones. The browser talks to the proxy, which answers CORS itself
 * (lib/routes/cors.ts); an upstream's `Access-Control-*` speak for its own origin.
 */
export function upstreamHeadersForClient<T extends HeaderMap | IncomingHttpHeaders> (headers: T): T {
  const copy: HeaderMap = withoutHopByHop(headers)
  for (const name of Object.keys(copy)) {
    if (name.startsWith('access-control-')) delete copy[name]
  }
  return copy as T
}

function listedInConnection (value: HeaderMap[string]): string[] {
  if (typeof value !== 'string') return []
  return value.split(',').map((name) => name.trim().toLowerCase()).filter((name) => name !== '')
}

/** The first value of a header that may have been sent more than once. */
export function firstHeaderValue (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}
