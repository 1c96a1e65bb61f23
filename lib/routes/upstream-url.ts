/** The upstream URL with the client's query string added to the configured one. */
export function withClientQuery (upstream: string, clientUrl: string): string {
  const queryStart = clientUrl.indexOf('?')
  if (queryStart === -1 || queryStart === clientUrl.length - 1) return upstream
  const target = new URL(upstream)
  for (const [name, value] of new URLSearchParams(clientUrl.slice(queryStart + 1))) {
    target.searchParams.append(name, value)
  }
  return target.href
}
