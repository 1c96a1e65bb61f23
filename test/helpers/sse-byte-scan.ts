import { createParser } from 'eventsource-parser'
import { StringDecoder } from 'node:string_decoder'
import { createSseParser } from '../../lib/wire/sse-parser.js'
import { createRelayScanner, type SlowPathReason } from '../../lib/wire/sse-byte-scanner.js'

/** What a reader of a stream sees, in order: events (id, type, data), comments, retries, malformed lines, an oversized stop. */
export type Seen =
  | ['event', string | undefined, string | undefined, string]
  | ['comment', string]
  | ['retry', number]
  | ['malformed', string]
  | ['oversized']

/** Today's path: the string parser (sse-parser.ts) reading the upstream chunks. */
export function parseWithStrings (chunks: readonly Buffer[], maxEventBytes: number): Seen[] {
  const seen: Seen[] = []
  const parser = createSseParser({
    onEvent: (event) => seen.push(['event', event.id, event.event, event.data]),
    onComment: (comment) => seen.push(['comment', comment]),
    onRetry: (milliseconds) => seen.push(['retry', milliseconds]),
    onMalformedLine: (reason) => seen.push(['malformed', reason]),
    onOversizedEvent: () => seen.push(['oversized'])
  }, maxEventBytes)
  for (const chunk of chunks) parser.feed(chunk)
  return seen
}

export interface Scanned {
  seen: Seen[]
  /** Each event's output bytes, as the scanner gave them. */
  outputs: Buffer[]
  /** What the relay would write for each event, under proxy ids `p<n>`. */
  written: string[]
  slowPathReason: SlowPathReason | undefined
}

/**
 * The byte path: the relay scanner reading the chunks, each event written as the relay will
 * (`id: <proxy id>\n` + bytes + `\n`) and read back by the string parser, which must find one
 * event with the proxy's id in it.
 */
export function scanWithBytes (chunks: readonly Buffer[], maxEventBytes: number): Scanned {
  const seen: Seen[] = []
  const outputs: Buffer[] = []
  const written: string[] = []
  const views: Buffer[] = []
  const scanner = createRelayScanner({
    onEvent (bytes, id, type) {
      const proxyId = `p${outputs.length}`
      outputs.push(Buffer.from(bytes))
      views.push(bytes)
      const wire = Buffer.concat([Buffer.from(`id: ${proxyId}\n`), bytes, Buffer.from('\n')])
      written.push(wire.toString('utf8'))
      const reread = parseWithStrings([wire], Number.MAX_SAFE_INTEGER)
      const event = reread[0]
      if (reread.length !== 1 || event?.[0] !== 'event' || event[1] !== proxyId) {
        throw new Error(`the output of an event does not read back as one event: ${JSON.stringify(wire.toString('utf8'))} -> ${JSON.stringify(reread)}`)
      }
      if (event[2] !== type) throw new Error(`type ${String(type)} reported, ${String(event[2])} in the bytes`)
      seen.push(['event', id, event[2], event[3]])
    },
    onComment: (comment) => seen.push(['comment', comment]),
    onRetry: (milliseconds) => seen.push(['retry', milliseconds]),
    onMalformedLine: (reason) => seen.push(['malformed', reason]),
    onOversizedEvent: () => seen.push(['oversized'])
  }, maxEventBytes)
  // The scanner may move bytes inside a chunk it reads: it gets copies, and the caller's chunks stay as they were.
  for (const chunk of chunks) scanner.feed(Buffer.from(chunk))
  // What the scanner moves inside a chunk never touches the bytes of an event it gave out.
  views.forEach((view, i) => {
    if (!view.equals(outputs[i] ?? Buffer.alloc(0))) throw new Error(`the bytes of event ${i} changed after it was given out`)
  })
  return { seen, outputs, written, slowPathReason: scanner.slowPathReason }
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
