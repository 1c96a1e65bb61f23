import { StringDecoder } from 'node:string_decoder'
import { createParser, type ParseError } from 'eventsource-parser'
import type { SseEvent } from './sse-event.js'
import { SseLineSplitter } from './sse-line-splitter.js'

export interface SseParserHandlers {
  onEvent: (event: SseEvent) => void
  onComment: (comment: string) => void
  onRetry: (milliseconds: number) => void
  /** A line the SSE spec says to ignore (unknown field, bad `retry:`). Parsing goes on. */
  onMalformedLine: (reason: string) => void
  /** An event grew past the limit. The parser stops; the stream cannot go on. */
  onOversizedEvent: () => void
  /**
   * Given, an event of only `data:`, `event:` and `id:` lines comes here instead of
   * onEvent: its lines as the upstream sent them, `id:` lines taken out, each ending
   * in LF, and its id (sse-line-splitter.ts). Written after an `id:` line of one's
   * own and followed by a blank line, they read back as the event.
   */
  onEventLines?: ((lines: string, id: string | undefined) => void) | undefined
}

export interface SseParser {
  feed: (chunk: Uint8Array) => void
  /** Forgets a half-received event, so that a new connection starts clean. */
  reset: () => void
}

/**
 * Splits a byte stream into SSE events. Bytes are decoded as UTF-8 across
 * chunk boundaries; invalid sequences become U+FFFD, as EventSource does.
 */
export function createSseParser (handlers: SseParserHandlers, maxEventBytes: number): SseParser {
  // StringDecoder rather than TextDecoder: the same U+FFFD for invalid bytes, and about twice as fast on Buffers.
  let decoder = new StringDecoder('utf8')
  let oversized = false
  function stopOversized (): void {
    oversized = true
    handlers.onOversizedEvent()
  }
  const parser = createParser({
    // Bounds what is buffered across chunks; an event that arrives whole is checked in onEvent.
    maxBufferSize: maxEventBytes,
    onEvent (event) {
      if (oversized) return
      if (event.data.length > maxEventBytes) {
        stopOversized()
      } else {
        handlers.onEvent(event)
      }
    },
    onComment: handlers.onComment,
    onRetry (milliseconds) {
      // Past 2^53 the number prints in exponent form, which clients refuse as a retry.
      if (Number.isSafeInteger(milliseconds)) handlers.onRetry(milliseconds)
      else handlers.onMalformedLine('invalid-retry')
    },
    onError (error: ParseError) {
      if (error.type === 'max-buffer-size-exceeded') {
        stopOversized()
      } else {
        handlers.onMalformedLine(error.type)
      }
    }
  })
  // A chunk that ends in CR: eventsource-parser waits to see whether LF follows before it ends the
  // line, which would hold a CR-terminated event until the upstream sends more. The CR is completed
  // at once as CRLF, and an LF that then opens the next chunk was that CRLF's own.
  let swallowLeadingLf = false
  const { onEventLines } = handlers
  const toParser = (text: string): void => parser.feed(text)
  // As onEvent: once an event was too large, the rest of the chunk's events are dropped.
  const onLines = (lines: string, id: string | undefined): void => { if (!oversized) onEventLines?.(lines, id) }
  const newSplitter = (): SseLineSplitter | undefined => onEventLines === undefined ? undefined : new SseLineSplitter(onLines, toParser, maxEventBytes)
  let splitter = newSplitter()
  // eventsource-parser drops a Latin-1-read BOM from the first text it is fed: with the splitter
  // first, the first text the parser sees may come from mid-stream, where nothing is dropped.
  let atStart = true
  return {
    feed (chunk) {
      if (oversized) return
      let text = decoder.write(chunk)
      if (text === '') return
      if (splitter !== undefined) {
        if (atStart && text.charCodeAt(0) !== 0xef) parser.feed('')
        atStart = false
        text = splitter.take(text)
        if (text === '') return
        splitter = undefined
      }
      if (swallowLeadingLf && text.startsWith('\n')) {
        // Only that one LF: a chunk of just "\n" must not leave the next one's LF swallowed as well.
        swallowLeadingLf = false
        text = text.slice(1)
        if (text === '') return
      }
      swallowLeadingLf = text.endsWith('\r')
      parser.feed(swallowLeadingLf ? `${text}\n` : text)
    },
    reset () {
      oversized = false
      swallowLeadingLf = false
      decoder = new StringDecoder('utf8')
      parser.reset({ consume: false })
      splitter = newSplitter()
      atStart = true
    }
  }
}
