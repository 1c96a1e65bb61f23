const COLON = 58
const SPACE = 32
const LOWER_D = 100
const LOWER_E = 101
const LOWER_I = 105
const BOM = 0xfeff
// A UTF-8 BOM read as Latin-1, which is what eventsource-parser looks for (it never sees U+FEFF from us).
const LATIN1_BOM_FIRST = 0xef

/**
 * The relay's fast path over decoded text: an event made only of `data:`, `event:`
 * and `id:` lines, ended by LF, is handed on as its own lines with the `id:` lines
 * taken out. Written after the proxy's own `id:` line, those lines read back, by
 * any SSE parser, as the upstream's event: nothing is parsed into fields or
 * serialized again. It works on text, not bytes, because V8's string search and
 * slices are native (docs/benchmarks.md, "The relay on bytes").
 *
 * Any other line (a comment, `retry:`, an unknown field, a field with no colon, a
 * NUL in an id), an event with no data, or one past the size limit goes to `slow`,
 * the string parser, with the event's lines before it: the parser is between events
 * whenever the splitter is, and reads what follows until the event's blank line.
 * A CR, or a possible BOM at the start, sends the rest of the stream to it for
 * good: the splitter only knows LF line ends.
 */
export class SseLineSplitter {
  readonly #onEventLines: (lines: string, id: string | undefined) => void
  readonly #slow: (text: string) => void
  readonly #maxEventBytes: number
  #started = false
  // The fast path's event so far, when it began in an earlier chunk: its complete lines as they
  // came (for the parser, should the event turn out not to be plain), the same without `id:` lines,
  // what those lines said, and its unfinished last line.
  #raw = ''
  #kept = ''
  #id: string | undefined
  #hasData = false
  #partial = ''
  /** The current event went to the slow parser: its lines follow it there up to its blank line. */
  #eventSlow = false
  /** The parser has the start of a line whose end is still to come. */
  #slowPartial = false

  constructor (onEventLines: (lines: string, id: string | undefined) => void, slow: (text: string) => void, maxEventBytes: number) {
    this.#onEventLines = onEventLines
    this.#slow = slow
    this.#maxEventBytes = maxEventBytes
  }

  /**
   * Reads `text`. Returns '' when it took it all; otherwise the text from where it
   * stopped, which the caller's string parser reads from then on, while this
   * splitter is no longer used.
   */
  take (text: string): string {
    if (!this.#started) {
      this.#started = true
      const first = text.charCodeAt(0)
      if (first === BOM || first === LATIN1_BOM_FIRST) return text
    }
    if (text.includes('\r')) return this.#giveUp(text)
    if (!text.includes('\n')) {
      // No line ends here: nothing to look at until one comes (no rescans of a long line).
      if (this.#eventSlow) {
        this.#slow(text)
        this.#slowPartial = true
      } else {
        this.#partial += text
        if (this.#raw.length + this.#partial.length > this.#maxEventBytes) return this.#giveUp('')
      }
      return ''
    }
    const input = this.#partial === '' ? text : this.#partial + text
    this.#partial = ''
    const maxEventBytes = this.#maxEventBytes
    // The current event: where it began in `input`, its lines from an earlier chunk, its lines
    // without `id:` lines (`kept`, then `input` from `keptFrom`), and what its lines said.
    let eventStart = 0
    let raw = this.#raw
    let kept = this.#kept
    let keptFrom = 0
    let id = this.#id
    let hasData = this.#hasData
    this.#raw = ''
    this.#kept = ''
    this.#id = undefined
    this.#hasData = false
    let slowFrom = 0
    let value = ''
    let line = 0
    let lineEnd = input.indexOf('\n')
    while (lineEnd !== -1) {
      if (this.#eventSlow) {
        if (this.#slowPartial) {
          // The end of a line the parser already has the start of: not a blank line, even when empty here.
          this.#slowPartial = false
        } else if (line === lineEnd) {
          this.#slow(input.slice(slowFrom, lineEnd + 1))
          this.#eventSlow = false
          eventStart = keptFrom = lineEnd + 1
        }
      } else if (line === lineEnd) {
        if (hasData) {
          const tail = input.slice(keptFrom, line)
          this.#onEventLines(kept === '' ? tail : kept + tail, id)
        } else if (line > eventStart || raw !== '') {
          // Only `id:` and `event:` lines: no event, and what the id does to the stream is the parser's to say.
          this.#slow(raw + input.slice(eventStart, lineEnd + 1))
        }
        eventStart = keptFrom = lineEnd + 1
        raw = kept = ''
        id = undefined
        hasData = false
      } else {
        const first = input.charCodeAt(line)
        if (first === LOWER_D && input.charCodeAt(line + 4) === COLON && input.startsWith('data', line)) {
          hasData = true
        } else if (first === LOWER_I && input.charCodeAt(line + 2) === COLON && input.charCodeAt(line + 1) === LOWER_D &&
          !(value = input.slice(input.charCodeAt(line + 3) === SPACE ? line + 4 : line + 3, lineEnd)).includes('\0')) {
          id = value
          kept += input.slice(keptFrom, line)
          keptFrom = lineEnd + 1
        } else if (!(first === LOWER_E && input.charCodeAt(line + 5) === COLON && input.startsWith('event', line))) {
          // A comment, a retry, an unknown field: the parser reads it, after the event's lines before it.
          this.#toSlow(raw)
          slowFrom = eventStart
        }
        if (!this.#eventSlow && raw.length + lineEnd - eventStart > maxEventBytes) {
          this.#toSlow(raw)
          slowFrom = eventStart
        }
        if (this.#eventSlow) {
          raw = kept = ''
          id = undefined
          hasData = false
        }
      }
      line = lineEnd + 1
      lineEnd = input.indexOf('\n', line)
    }
    if (this.#eventSlow) {
      // The parser gets the rest now, an unfinished line included, as it would have without the splitter:
      // its size limit counts that line too.
      if (input.length > slowFrom) this.#slow(input.slice(slowFrom))
      this.#slowPartial = line < input.length
      return ''
    }
    if (line > eventStart || line < input.length || raw !== '') {
      this.#raw = raw + input.slice(eventStart, line)
      this.#kept = kept + input.slice(keptFrom, line)
      this.#id = id
      this.#hasData = hasData
      this.#partial = input.slice(line)
      if (this.#raw.length + this.#partial.length > maxEventBytes) return this.#giveUp('')
    }
    return ''
  }

  /** The event so far goes to the slow parser, which reads it on to its blank line. */
  #toSlow (raw: string): void {
    if (raw !== '') this.#slow(raw)
    this.#eventSlow = true
  }

  /** The rest of the stream is the parser's: it gets what the splitter holds, then `text`. */
  #giveUp (text: string): string {
    if (this.#eventSlow) return text
    const held = this.#raw + this.#partial + text
    this.#raw = this.#kept = this.#partial = ''
    return held
  }
}
