import { isUtf8 } from 'node:buffer'
import { createSseParser, type SseParser, type SseParserHandlers } from './sse-parser.js'
import { serializeEvent } from './sse-serializer.js'
import { LF, CR, SPACE, COLON, LOWER_D, LOWER_E, LOWER_I, LOWER_R } from './sse-bytes.js'

const DATA = Buffer.from('data')
const EVENT = Buffer.from('event')
const ID = Buffer.from('id')
const RETRY = Buffer.from('retry')
const LINE_END = Buffer.from('\n')
const DIGITS = /^\d+$/

/** Why a stream left the byte path for the string parser (sse-parser.ts). */
export type SlowPathReason = 'bom' | 'cr-line-end' | 'invalid-utf8' | 'large-event'

export interface RelayScannerHandlers extends Omit<SseParserHandlers, 'onEvent'> {
  /**
   * One event. `bytes` are its `event:` and `data:` lines, each ending in a line break:
   * written as `id: <proxy id>\n`, `bytes`, `\n`, it reads back as the upstream's event.
   * They may be a view of the chunk fed: copy them to keep them apart from it.
   */
  onEvent: (bytes: Buffer, id: string | undefined, type: string | undefined) => void
}

export interface RelayScanner {
  /**
   * Reads a chunk the caller gives up: the scanner may move bytes inside it (an event's lines
   * over its `id:` line) and hand out views of it. Bytes of earlier events' views stay as they were.
   */
  feed: (chunk: Buffer) => void
  /** Forgets a half-received event and goes back to the byte path, so that a new connection starts clean. */
  reset: () => void
  /** Set once the stream has left the byte path; undefined while on it. */
  readonly slowPathReason: SlowPathReason | undefined
}

/**
 * Splits an upstream SSE byte stream into events without decoding their data. It gives
 * what the string parser (sse-parser.ts) gives, event for event (test/fuzz-byte-scanner.test.ts);
 * input it does not handle on bytes (a lone CR line end, a possible BOM, invalid UTF-8, an
 * event near the size limit) moves the stream to that parser for good, from the line it stopped at.
 */
export function createRelayScanner (handlers: RelayScannerHandlers, maxEventBytes: number): RelayScanner {
  return new ByteScanner(handlers, maxEventBytes)
}

class ByteScanner implements RelayScanner {
  readonly #handlers: RelayScannerHandlers
  readonly #maxEventBytes: number
  readonly #slowHandlers: SseParserHandlers
  #slow: SseParser | undefined
  #slowPathReason: SlowPathReason | undefined
  #started = false
  // The last chunk ended in CR: an LF opening the next one belongs to it (as in sse-parser.ts).
  #swallowLf = false
  // The unfinished last line, in the chunks' own pieces.
  #tail: Buffer[] = []
  #tailLength = 0
  // The event being read: its id and type, and its kept lines as pieces plus a run in the current buffer.
  #id: string | undefined
  #type: string | undefined
  #dataLines = 0
  readonly #kept: Buffer[] = []
  #keptLength = 0
  #run: Buffer | undefined
  #lastType = Buffer.alloc(0)
  #lastTypeText = ''
  #runStart = 0
  #runEnd = 0

  constructor (handlers: RelayScannerHandlers, maxEventBytes: number) {
    this.#handlers = handlers
    this.#maxEventBytes = maxEventBytes
    this.#slowHandlers = {
      onEvent (event) {
        const text = Buffer.from(serializeEvent({ event: event.event, data: event.data }))
        // Without the blank line: the relay writes it after the bytes, as for a byte-path event.
        handlers.onEvent(text.subarray(0, text.length - 1), event.id, event.event)
      },
      onComment: handlers.onComment,
      onRetry: handlers.onRetry,
      onMalformedLine: handlers.onMalformedLine,
      onOversizedEvent: handlers.onOversizedEvent
    }
  }

  get slowPathReason (): SlowPathReason | undefined {
    return this.#slowPathReason
  }

  feed (chunk: Buffer): void {
    if (this.#slow !== undefined) {
      // Left for the string parser at the end of a chunk that ended in CR: that CR's LF is still owed.
      if (this.#swallowLf && chunk.length > 0) {
        this.#swallowLf = false
        if (chunk[0] === LF) chunk = chunk.subarray(1)
      }
      this.#slow.feed(chunk)
      return
    }
    const end = chunk.length
    if (end === 0) return
    let start = 0
    if (this.#swallowLf) {
      this.#swallowLf = false
      if (chunk[0] === LF && end === 1) return
      if (chunk[0] === LF) start = 1
    } else if (!this.#started) {
      this.#started = true
      // eventsource-parser drops a stream's first three characters when they read "ï»¿" (a BOM
      // decoded as Latin-1) and keeps a real U+FEFF: both are left to it.
      if (chunk[0] === 0xef || (chunk[0] === 0xc3 && (end < 2 || chunk[1] === 0xaf))) {
        this.#toSlow('bom', chunk)
        return
      }
    }
    for (let cr = chunk.indexOf(CR, start); cr !== -1; cr = chunk.indexOf(CR, cr + 2)) {
      if (cr + 1 < end && chunk[cr + 1] !== LF) {
        this.#toSlow('cr-line-end', chunk.subarray(start))
        return
      }
    }
    // A CR that ends the chunk ends its line at once, as in sse-parser.ts.
    const endsInCr = chunk[end - 1] === CR
    const firstLf = chunk.indexOf(LF, start)
    const lastBreak = endsInCr ? end - 1 : chunk.lastIndexOf(LF)
    let pos = start
    if (this.#tailLength > 0) {
      if (lastBreak === -1) {
        this.#addTail(chunk.subarray(start))
        this.#checkSize()
        return
      }
      const headBreak = firstLf === -1 ? lastBreak : firstLf
      this.#tail.push(chunk.subarray(start, headBreak + 1))
      const head = Buffer.concat(this.#tail)
      if (!isUtf8(head) || (lastBreak > headBreak && !isUtf8(chunk.subarray(headBreak + 1, lastBreak + 1)))) {
        this.#tail.pop()
        this.#toSlow('invalid-utf8', chunk.subarray(start))
        return
      }
      this.#tail.length = 0
      this.#tailLength = 0
      // A non-empty tail makes the head line non-blank: it cannot end the event, nor leave the byte path.
      const bareCr = head[head.length - 1] === CR
      const contentEnd = bareCr || head[head.length - 2] !== CR ? head.length - 1 : head.length - 2
      this.#line(head, 0, contentEnd, head.length, bareCr)
      pos = headBreak + 1
    } else if (lastBreak >= start && !isUtf8(chunk.subarray(start, lastBreak + 1))) {
      this.#toSlow('invalid-utf8', chunk.subarray(start))
      return
    }
    for (let lf = chunk.indexOf(LF, pos); lf !== -1; lf = chunk.indexOf(LF, pos)) {
      if (!this.#line(chunk, pos, lf > pos && chunk[lf - 1] === CR ? lf - 1 : lf, lf + 1, false)) return
      pos = lf + 1
    }
    if (endsInCr && pos < end) {
      if (!this.#line(chunk, pos, end - 1, end, true)) return
      pos = end
    }
    this.#swallowLf = endsInCr
    this.#flushRun()
    if (pos < end) this.#addTail(chunk.subarray(pos))
    this.#checkSize()
  }

  reset (): void {
    this.#slow = undefined
    this.#slowPathReason = undefined
    this.#started = false
    this.#swallowLf = false
    this.#tail.length = 0
    this.#tailLength = 0
    this.#clearEvent()
  }

  #addTail (piece: Buffer): void {
    this.#tail.push(piece)
    this.#tailLength += piece.length
  }

  /**
   * What an unfinished event holds, in bytes, which are never fewer than the string parser's
   * characters: past the limit, that parser decides, on the same count as it always did.
   */
  #checkSize (): void {
    if (this.#keptLength + this.#tailLength > this.#maxEventBytes) this.#toSlow('large-event', undefined)
  }

  /** One line: `contentEnd` before its line break, `lineEnd` after it. False when the stream left the byte path. */
  #line (buf: Buffer, start: number, contentEnd: number, lineEnd: number, bareCr: boolean): boolean {
    if (start === contentEnd) return this.#dispatch(buf, start)
    const first = buf[start]
    let value: number
    if (first === LOWER_D && (value = valueStart(buf, start, contentEnd, DATA)) !== -1) {
      this.#dataLines++
      this.#keep(buf, start, contentEnd, lineEnd, bareCr)
    } else if (first === LOWER_E && (value = valueStart(buf, start, contentEnd, EVENT)) !== -1) {
      this.#type = value === contentEnd ? undefined : this.#typeOf(buf, value, contentEnd)
      this.#keep(buf, start, contentEnd, lineEnd, bareCr)
    } else if (first === LOWER_I && (value = valueStart(buf, start, contentEnd, ID)) !== -1) {
      // An id with a NUL is ignored (WHATWG HTML, "Server-sent events").
      if (!hasNul(buf, value, contentEnd)) this.#id = buf.toString('utf8', value, contentEnd)
    } else if (first === COLON) {
      this.#handlers.onComment(buf.toString('utf8', buf[start + 1] === SPACE ? start + 2 : start + 1, contentEnd))
    } else if (first === LOWER_R && (value = valueStart(buf, start, contentEnd, RETRY)) !== -1) {
      const digits = buf.toString('latin1', value, contentEnd)
      const milliseconds = DIGITS.test(digits) ? parseInt(digits, 10) : Number.NaN
      // Past 2^53 the number prints in exponent form, which clients refuse as a retry.
      if (Number.isSafeInteger(milliseconds)) this.#handlers.onRetry(milliseconds)
      else this.#handlers.onMalformedLine('invalid-retry')
    } else {
      this.#handlers.onMalformedLine('unknown-field')
    }
    return true
  }

  /** Streams repeat a few types (`message`): the last one's string serves again without a decode. */
  #typeOf (buf: Buffer, start: number, end: number): string {
    const last = this.#lastType
    if (end - start === last.length && sameBytes(buf, start, last)) return this.#lastTypeText
    this.#lastType = Buffer.from(buf.subarray(start, end))
    this.#lastTypeText = this.#lastType.toString('utf8')
    return this.#lastTypeText
  }

  #keep (buf: Buffer, start: number, contentEnd: number, lineEnd: number, bareCr: boolean): void {
    if (bareCr) {
      // Its only line break is a CR that ended the chunk: the relay needs one it can follow with "\n".
      this.#flushRun()
      this.#kept.push(buf.subarray(start, contentEnd), LINE_END)
      this.#keptLength += contentEnd - start + 1
      return
    }
    if (this.#run === buf) {
      if (this.#runEnd !== start) {
        // Lines left out (`id:`, comments) lie between: the run moves up over them, so that the event
        // stays one view. MCP servers write `event:`, then `id:`, then `data:`; the run is the short part.
        const length = this.#runEnd - this.#runStart
        buf.copyWithin(start - length, this.#runStart, this.#runEnd)
        this.#runStart = start - length
      }
      this.#runEnd = lineEnd
    } else {
      this.#flushRun()
      this.#run = buf
      this.#runStart = start
      this.#runEnd = lineEnd
    }
    this.#keptLength += lineEnd - start
  }

  #flushRun (): void {
    if (this.#run === undefined) return
    this.#kept.push(this.#run.subarray(this.#runStart, this.#runEnd))
    this.#run = undefined
  }

  /** A blank line at `start` of `buf`, the chunk being fed. */
  #dispatch (buf: Buffer, start: number): boolean {
    if (this.#dataLines > 0) {
      if (this.#keptLength > this.#maxEventBytes) {
        this.#toSlow('large-event', buf.subarray(start))
        return false
      }
      let bytes: Buffer
      if (this.#kept.length === 0 && this.#run !== undefined) {
        bytes = this.#run.subarray(this.#runStart, this.#runEnd)
      } else {
        this.#flushRun()
        bytes = Buffer.concat(this.#kept, this.#keptLength)
      }
      this.#handlers.onEvent(bytes, this.#id, this.#type)
    }
    this.#clearEvent()
    return true
  }

  #clearEvent (): void {
    this.#id = undefined
    this.#type = undefined
    this.#dataLines = 0
    // Setting an array's length costs, even to what it is.
    if (this.#kept.length !== 0) this.#kept.length = 0
    this.#keptLength = 0
    this.#run = undefined
  }

  /**
   * Hands the stream to the string parser: first what the event so far needs (its id and
   * kept lines, which set the same state), then the unread bytes. Lines already read are not
   * read again, so nothing comes out twice.
   */
  #toSlow (reason: SlowPathReason, rest: Buffer | undefined): void {
    this.#slowPathReason = reason
    const slow = createSseParser(this.#slowHandlers, this.#maxEventBytes)
    // Past the stream's start, so that the parser's start-of-stream BOM check cannot apply.
    if (reason !== 'bom') slow.feed(LINE_END)
    this.#flushRun()
    const replay = this.#id === undefined ? [...this.#kept, ...this.#tail] : [Buffer.from(`id: ${this.#id}\n`), ...this.#kept, ...this.#tail]
    if (rest !== undefined) replay.push(rest)
    this.#clearEvent()
    this.#tail.length = 0
    this.#tailLength = 0
    this.#slow = slow
    slow.feed(Buffer.concat(replay))
  }
}

/** Where a line of field `name` has its value (after the colon and one optional space); -1 for another field. */
function valueStart (buf: Buffer, start: number, contentEnd: number, name: Buffer): number {
  const nameEnd = start + name.length
  if (nameEnd > contentEnd) return -1
  for (let i = 1; i < name.length; i++) {
    if (buf[start + i] !== name[i]) return -1
  }
  if (nameEnd === contentEnd) return contentEnd
  if (buf[nameEnd] !== COLON) return -1
  // The line break after the content is never a space.
  return buf[nameEnd + 1] === SPACE ? nameEnd + 2 : nameEnd + 1
}

// A loop beats Buffer#compare's argument checks on a few bytes.
function sameBytes (buf: Buffer, start: number, other: Buffer): boolean {
  for (let i = 0; i < other.length; i++) {
    if (buf[start + i] !== other[i]) return false
  }
  return true
}

function hasNul (buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    if (buf[i] === 0) return true
  }
  return false
}
