import t from 'tap'
import fc from 'fast-check'
import { deepStrictEqual } from 'node:assert/strict'
import { parseWithLines, parseWithStrings, readWithEventsourceParser } from './helpers/sse-reads.js'
import { chunksOf, cuts, stream, streamOf } from './helpers/sse-byte-streams.js'

// Property: for random upstream byte streams cut into random chunks, the relay's fast path (an
// event's own lines after the proxy's id line) gives what the string parser alone gives, and what
// eventsource-parser reads from the whole stream: ids, types, data, comments, retries, malformed
// lines and the oversized stop, in the same order.

// Streams with LF line ends alone. The random ones above are mostly near misses, which the fast
// path hands to the parser; these are what upstreams send: events of data, event and id lines (a
// NUL in an id now and then), with comments, retries and blank lines between and inside them.
const clean = streamOf({ crOnly: false, invalid: false, start: Buffer.alloc(0) }).filter((bytes) => bytes[0] !== 0xef && bytes[0] !== 0xc3 && !bytes.includes(0x0d))
const value = fc.array(fc.constantFrom('a', ' ', ':', 'é', '💡', '{"jsonrpc":"2.0","id":3,"result":{}}', 'y'.repeat(120), '7', '\0'), { maxLength: 4 }).map((pieces) => pieces.join(''))
const eventLine = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.constantFrom('data:', 'data: '), value).map(([name, text]) => `${name}${text}\n`) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom('event:', 'event: ', 'id:', 'id: '), value).map(([name, text]) => `${name}${text}\n`) },
  { weight: 1, arbitrary: fc.constantFrom(': keep-alive\n', 'retry: 1500\n', 'retry: x\n', 'data\n', 'other: 1\n') }
)
const wellFormed = fc.array(fc.tuple(fc.array(eventLine, { minLength: 1, maxLength: 5 }), fc.constantFrom('\n', '\n', '\n\n')), { maxLength: 12 })
  .map((events) => Buffer.from(events.map(([lines, end]) => lines.join('') + end).join(''), 'utf8'))
const limit = fc.oneof({ weight: 4, arbitrary: fc.constant(1 << 20) }, { weight: 1, arbitrary: fc.integer({ min: 16, max: 600 }) })

t.test('property: events by their lines read back as the string parser\'s events', async (t) => {
  let fastEvents = 0
  let events = 0
  fc.assert(fc.property(fc.oneof(stream, clean, wellFormed), cuts, limit, (bytes, points, maxEventBytes) => {
    const chunks = chunksOf(bytes, points)
    const expected = parseWithStrings(chunks, maxEventBytes)
    const split = parseWithLines(chunks, maxEventBytes)
    fastEvents += split.fast
    events += expected.filter((seen) => seen[0] === 'event').length
    deepStrictEqual(split.seen, expected)
  }), { numRuns: 3000 })
  t.ok(events > 3000, `${events} events compared`)
  t.ok(fastEvents > events / 4, `${fastEvents} of them came by the fast path`)
})

t.test('property: on clean streams (LF line ends, valid UTF-8) events read as eventsource-parser reads them, most by the fast path', async (t) => {
  const ending = Buffer.from('\n\ndata: end\n\n')
  let fastEvents = 0
  let events = 0
  fc.assert(fc.property(fc.oneof(clean, wellFormed), cuts, (random, points) => {
    const bytes = Buffer.concat([random, ending])
    const split = parseWithLines(chunksOf(bytes, points), 1 << 20)
    const reference = readWithEventsourceParser(bytes)
    fastEvents += split.fast
    events += reference.filter((seen) => seen[0] === 'event').length
    deepStrictEqual(split.seen.filter((seen) => seen[0] !== 'malformed'), reference)
  }), { numRuns: 1000 })
  t.ok(fastEvents > events / 2, `${fastEvents} of ${events} events by the fast path`)
})
