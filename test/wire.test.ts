import t from 'tap'
import fc from 'fast-check'
import { createSseParser } from '../lib/wire/sse-parser.js'
import { serializeComment, serializeEvent, serializeRetry } from '../lib/wire/sse-serializer.js'
import type { SseEvent } from '../lib/wire/sse-event.js'

function parseAll (chunks: Uint8Array[], maxEventBytes = 1 << 20) {
  const events: SseEvent[] = []
  const comments: string[] = []
  const retries: number[] = []
  const malformed: string[] = []
  let oversized = 0
  const parser = createSseParser({
    onEvent: (event) => events.push(event),
    onComment: (comment) => comments.push(comment),
    onRetry: (retry) => retries.push(retry),
    onMalformedLine: (reason) => malformed.push(reason),
    onOversizedEvent: () => { oversized++ }
  }, maxEventBytes)
  for (const chunk of chunks) parser.feed(chunk)
  return { events, comments, retries, malformed, oversized, parser }
}

const encode = (text: string) => new TextEncoder().encode(text)

t.test('serializeEvent writes id and event on one line each, and data over as many lines as it has', async (t) => {
  t.equal(serializeEvent({ id: '1', event: 'tick', data: 'a\nb\r\nc\rd' }), 'event: tick\nid: 1\ndata: a\ndata: b\ndata: c\ndata: d\n\n')
  t.equal(serializeEvent({ data: '' }), 'data: \n\n')
  t.equal(serializeEvent({ event: '', data: 'x' }), 'data: x\n\n', 'the default event type is left implicit')
})

t.test('serializeEvent never lets an id or event name break its line', async (t) => {
  t.equal(serializeEvent({ id: 'a\r\nid: forged\0', event: 'x\ndata: injected', data: 'ok' }), 'event: xdata: injected\nid: aid: forged\ndata: ok\n\n')
  t.equal(serializeComment('ping\nevent: forged'), ': pingevent: forged\n\n')
  t.equal(serializeRetry(1500.7), 'retry: 1500\n\n')
  t.equal(serializeRetry(-5), 'retry: 0\n\n')
})

t.test('a multi-byte character split across chunks is decoded whole', async (t) => {
  const bytes = encode('data: héllo ✓\n\n')
  const { events } = parseAll([bytes.slice(0, 8), bytes.slice(8, 15), bytes.slice(15)])
  t.same(events.map((event) => event.data), ['héllo ✓'])
})

t.test('CR, LF and CRLF line endings are all understood', async (t) => {
  const { events } = parseAll([encode('data: a\r\rdata: b\n\ndata: c\r\n\r\n')])
  t.same(events.map((event) => event.data), ['a', 'b', 'c'])
})

t.test('a chunk of one LF after a CR-ended chunk completes that CRLF, and the next LF is a line break again', async (t) => {
  const { events } = parseAll([encode('data: x\r'), encode('\n'), encode('\n'), encode('data: y\n\n')])
  t.same(events.map((event) => event.data), ['x', 'y'])
})

t.test('an event that grows past the limit across chunks stops the parser', async (t) => {
  const { events, oversized, parser } = parseAll([encode('data: ok\n\ndata: '), encode('y'.repeat(2000))], 1024)
  t.same(events.map((event) => event.data), ['ok'])
  t.equal(oversized, 1)
  parser.feed(encode('\n\ndata: after\n\n'))
  t.same(events.map((event) => event.data), ['ok'], 'nothing more is emitted once stopped')
  parser.reset()
  parser.feed(encode('data: fresh\n\n'))
  t.same(events.map((event) => event.data), ['ok', 'fresh'], 'reset() starts clean')
})

t.test('an oversized event that arrives whole stops the parser before the events behind it', async (t) => {
  const { events, oversized } = parseAll([encode(`data: first\n\ndata: ${'w'.repeat(2000)}\n\ndata: behind\n\n`)], 1024)
  t.same(events.map((event) => event.data), ['first'])
  t.equal(oversized, 1)
})

t.test('property: random events, serialized and split into random chunks, parse back unchanged', async () => {
  const fieldText = fc.string({ unit: fc.constantFrom('a', 'b', ' ', 'é', '✓', ':', '{', '"', '1') })
  const eventArbitrary = fc.record({
    id: fc.option(fieldText.filter((value) => value !== ''), { nil: undefined }),
    event: fc.option(fieldText.filter((value) => value.trim() !== '' && !value.startsWith(' ')), { nil: undefined }),
    data: fc.string({ unit: fc.constantFrom('x', 'y', ' ', '\n', 'ü', '💡', ':', 'd') })
  })
  fc.assert(fc.property(fc.array(eventArbitrary, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 30 }), (events, cuts) => {
    const bytes = encode(events.map(serializeEvent).join(''))
    const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b)
    const chunks: Uint8Array[] = []
    let start = 0
    for (const point of [...points, bytes.length]) {
      chunks.push(bytes.slice(start, point))
      start = point
    }
    const normalize = (list: SseEvent[]) => JSON.stringify(list.map(({ id, event, data }) => ({ id, event, data })))
    return normalize(parseAll(chunks).events) === normalize(events)
  }), { numRuns: 300 })
})
