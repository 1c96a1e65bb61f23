import { createParser } from 'eventsource-parser'
import { StringDecoder } from 'node:string_decoder'
import { createSseParser, type SseParserHandlers } from '../../lib/wire/sse-parser.js'

/** What a reader of a stream sees, in order: events (id, type, data), comments, retries, malformed lines, an oversized stop. */
export type Seen =
  | ['event', string | undefined, string | undefined, string]
  | ['comment', string]
  | ['retry', number]
  | ['malformed', string]
  | ['oversized']

/** Handlers that note what the parser reports, in order. */
function noting (seen: Seen[]): SseParserHandlers {
  return {
    onEvent: (event) => seen.push(['event', event.id, event.event, event.data]),
    onComment: (comment) => seen.push(['comment', comment]),
    onRetry: (milliseconds) => seen.push(['retry', milliseconds]),
    onMalformedLine: (reason) => seen.push(['malformed', reason]),
    onOversizedEvent: () => seen.push(['oversized'])
  }
}

/** The string parser alone (sse-parser.ts) reading the upstream chunks: the relay's slow path. */
export function parseWithStrings (chunks: readonly Buffer[], maxEventBytes: number): Seen[] {
  const seen: Seen[] = []
  const parser = createSseParser(noting(seen), maxEventBytes)
  for (const chunk of chunks) parser.feed(chunk)
  return seen
}

/** Cuts the bytes at the given points (anywhere: inside UTF-8 sequences and CRLF pairs too). */
export function cutAt (bytes: Buffer, points: readonly number[]): Buffer[] {
  const sorted = [...new Set(points.map((point) => point % (bytes.length + 1)))].sort((a, b) => a - b)
  const chunks: Buffer[] = []
  let start = 0
  for (const point of [...sorted, bytes.length]) {
    if (point > start) chunks.push(bytes.subarray(start, point))
    start = point
  }
  return chunks
}

/**
 * The reference: eventsource-parser reading the whole stream, decoded as EventSource decodes
 * it (UTF-8, invalid sequences replaced). It reports no malformed lines and has no size limit;
 * the one place the proxy reads differently, on purpose, is a retry too large to write back.
 */
export function readWithEventsourceParser (bytes: Buffer): Seen[] {
  const seen: Seen[] = []
  const parser = createParser({
    onEvent: (event) => seen.push(['event', event.id, event.event === '' ? undefined : event.event, event.data]),
    onComment: (comment) => seen.push(['comment', comment]),
    // A retry past 2^53 would be written in exponent form, which clients refuse: the proxy drops it as malformed.
    onRetry: (milliseconds) => { if (Number.isSafeInteger(milliseconds)) seen.push(['retry', milliseconds]) }
  })
  const decoder = new StringDecoder('utf8')
  parser.feed(decoder.write(bytes) + decoder.end())
  return seen
}

/**
 * The relay's fast path: the string parser with `onEventLines`, each event's lines written as the
 * relay writes them (`id: <proxy id>\n` + lines + `\n`) and read back, which must give one event
 * under the proxy's id. Also says how many events came by the fast path.
 */
export function parseWithLines (chunks: readonly Buffer[], maxEventBytes: number): { seen: Seen[], fast: number } {
  const seen: Seen[] = []
  let fast = 0
  const parser = createSseParser({
    ...noting(seen),
    onEventLines (lines, id) {
      const proxyId = `p${fast++}`
      const wire = `id: ${proxyId}\n${lines}\n`
      const reread = parseWithStrings([Buffer.from(wire)], Number.MAX_SAFE_INTEGER)
      const event = reread[0]
      if (reread.length !== 1 || event?.[0] !== 'event' || event[1] !== proxyId) {
        throw new Error(`an event's lines do not read back as one event: ${JSON.stringify(wire)} -> ${JSON.stringify(reread)}`)
      }
      seen.push(['event', id, event[2], event[3]])
    }
  }, maxEventBytes)
  for (const chunk of chunks) parser.feed(chunk)
  return { seen, fast }
}
