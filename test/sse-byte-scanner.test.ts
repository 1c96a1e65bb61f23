import t from 'tap'
import { createRelayScanner } from '../lib/wire/sse-byte-scanner.js'
import { answeredIdsInEvent, eventData } from '../lib/wire/sse-event-bytes.js'
import { parseWithStrings, scanWithBytes } from './helpers/sse-byte-scan.js'

const bytes = (text: string) => Buffer.from(text, 'utf8')
const chunksOf = (...texts: string[]) => texts.map(bytes)
const MB = 1 << 20

t.test('each event comes out as the upstream\'s own event: and data: lines, which a proxy id line makes a whole event', async (t) => {
  const scanned = scanWithBytes(chunksOf('id: 41\nevent: message\ndata: {"a":1}\n\n'), MB)
  t.same(scanned.written, ['id: p0\nevent: message\ndata: {"a":1}\n\n'])
  t.same(scanned.seen, [['event', '41', 'message', '{"a":1}']], 'with the upstream id and the type beside them')
})

t.test('MCP servers\' order (event:, id:, data:) gives one view of the event lines without the id line', async (t) => {
  const chunks = chunksOf('event: message\nid: 1\ndata: {"a":1}\n\nevent: message\nid: 2\n: keep-alive\ndata: {"b":2}\n\nevent: message\nid: 3\ndata: {"c":3}\n\n')
  const scanned = scanWithBytes(chunks, MB)
  t.same(scanned.written, [
    'id: p0\nevent: message\ndata: {"a":1}\n\n',
    'id: p1\nevent: message\ndata: {"b":2}\n\n',
    'id: p2\nevent: message\ndata: {"c":3}\n\n'
  ])
  t.same(scanned.seen, [['event', '1', 'message', '{"a":1}'], ['comment', 'keep-alive'], ['event', '2', 'message', '{"b":2}'], ['event', '3', 'message', '{"c":3}']])
})

t.test('data lines keep their form: no space, one space, two spaces, no colon at all, several lines', async (t) => {
  const scanned = scanWithBytes(chunksOf('data:x\ndata: y\ndata:  z\ndata\n\n'), MB)
  t.same(scanned.outputs.map(String), ['data:x\ndata: y\ndata:  z\ndata\n'])
  t.same(scanned.seen, [['event', undefined, undefined, 'x\ny\n z\n']])
})

t.test('an event: line with an empty value, or none, leaves the default type; the last event: line wins', async (t) => {
  const scanned = scanWithBytes(chunksOf('event:\ndata: a\n\nevent\ndata: b\n\nevent: one\nevent: two\ndata: c\n\nevent: one\nevent:\ndata: d\n\n'), MB)
  t.same(scanned.seen.map((seen) => seen.slice(2)), [[undefined, 'a'], [undefined, 'b'], ['two', 'c'], [undefined, 'd']])
})

t.test('unknown fields are reported and left out of the output; comments and retries are reported in their place', async (t) => {
  const scanned = scanWithBytes(chunksOf('data: a\nData: no\n: note\nfoo\nretry: 1500\nretry: soon\ndata: b\n\n'), MB)
  t.same(scanned.outputs.map(String), ['data: a\ndata: b\n'])
  t.same(scanned.seen, [
    ['malformed', 'unknown-field'], ['comment', 'note'], ['malformed', 'unknown-field'], ['retry', 1500], ['malformed', 'invalid-retry'],
    ['event', undefined, undefined, 'a\nb']
  ])
})

t.test('a retry past 2^53, or with no value, is malformed, as in the string parser', async (t) => {
  const chunks = chunksOf(`retry: ${'9'.repeat(20)}\nretry\n:\n:x\n\n`)
  const scanned = scanWithBytes(chunks, MB)
  t.same(scanned.seen, [['malformed', 'invalid-retry'], ['malformed', 'invalid-retry'], ['comment', ''], ['comment', 'x']])
  t.same(scanned.seen, parseWithStrings(chunks, MB))
})

t.test('an event without data lines is not dispatched; its id and type do not carry over', async (t) => {
  const scanned = scanWithBytes(chunksOf('id: 1\nevent: x\n\ndata: next\n\n'), MB)
  t.same(scanned.seen, [['event', undefined, undefined, 'next']])
})

t.test('an id with a NUL is ignored, an earlier one stays; an empty id is an id', async (t) => {
  const scanned = scanWithBytes(chunksOf('id: 7\nid: a\0b\ndata: x\n\nid\ndata: y\n\n'), MB)
  t.same(scanned.seen, [['event', '7', undefined, 'x'], ['event', '', undefined, 'y']])
  t.equal(scanned.slowPathReason, undefined, 'read on bytes')
})

t.test('an event inside one chunk is a view of that chunk; one across chunks is copied once, split UTF-8 and all', async (t) => {
  const chunk = bytes('id: 1\ndata: a\n\n')
  const views: Buffer[] = []
  const scanner = createRelayScanner({
    onEvent: (out) => views.push(out),
    onComment: () => {},
    onRetry: () => {},
    onMalformedLine: () => {},
    onOversizedEvent: () => {}
  }, MB)
  scanner.feed(chunk)
  t.equal(String(views[0]), 'data: a\n')
  chunk.fill('x')
  t.equal(String(views[0]), 'xxxxxxxx', 'no copy: the output is the chunk\'s own bytes')
  const split = bytes('event: tick\ndata: héllo 💡\n\n')
  for (let i = 0; i < split.length; i++) scanner.feed(split.subarray(i, i + 1))
  split.fill('x')
  t.equal(String(views[1]), 'event: tick\ndata: héllo 💡\n', 'a copy, whole')
})

t.test('CRLF line ends stay on the byte path, also with a CR and its LF in different chunks', async (t) => {
  const chunks = chunksOf('id: 1\r\ndata: a\r', '\n', '\r', '\n', 'data: b\r\n\r\n')
  const scanned = scanWithBytes(chunks, MB)
  t.equal(scanned.slowPathReason, undefined)
  t.same(scanned.seen, [['event', '1', undefined, 'a'], ['event', undefined, undefined, 'b']])
  t.same(scanned.written, ['id: p0\ndata: a\n\n', 'id: p1\ndata: b\r\n\n'], 'a line keeps its CRLF, and one ended by a chunk\'s last CR gets an LF')
})

t.test('a CR that ends a chunk ends its line at once, and the event goes out without waiting for the LF', async (t) => {
  const seen: string[] = []
  const scanner = createRelayScanner({
    onEvent: (out) => seen.push(String(out)),
    onComment: () => {},
    onRetry: () => {},
    onMalformedLine: () => {},
    onOversizedEvent: () => {}
  }, MB)
  scanner.feed(bytes('da'))
  scanner.feed(bytes('ta: x\r'))
  scanner.feed(bytes('\n\r'))
  t.same(seen, ['data: x\n'], 'a line ended by a chunk\'s last CR gets an LF of its own')
  scanner.feed(bytes('\n'))
  scanner.feed(bytes('\n'))
  scanner.feed(bytes('data: y\n\n'))
  t.same(seen, ['data: x\n', 'data: y\n'], 'the LF after that CR was its own; the next LF is a blank line with no event to end')
  t.equal(scanner.slowPathReason, undefined)
})

t.test('a lone CR line end moves the stream to the string parser from that chunk: nothing lost, nothing twice', async (t) => {
  const chunks = chunksOf(': before\ndata: a\n', 'data: b\rdata: c\r\r: after\n', 'data: d\n\n')
  const scanned = scanWithBytes(chunks, MB)
  t.equal(scanned.slowPathReason, 'cr-line-end')
  t.same(scanned.seen, [['comment', 'before'], ['event', undefined, undefined, 'a\nb\nc'], ['comment', 'after'], ['event', undefined, undefined, 'd']])
  t.same(scanned.seen, parseWithStrings(chunks, MB))
  t.same(scanned.written[0], 'id: p0\ndata: a\ndata: b\ndata: c\n\n', 'the string parser\'s event is written as today, without its id line')
})

t.test('a BOM, or what the string parser takes for one, at the start leaves the stream to that parser', async (t) => {
  for (const start of [Buffer.from([0xef, 0xbb, 0xbf]), bytes('ï»¿'), Buffer.from([0xc3])]) {
    // An empty chunk first is no start.
    const chunks = [Buffer.alloc(0), start, ...chunksOf('data: a\n\ndata: b\n\n')]
    const scanned = scanWithBytes(chunks, MB)
    t.equal(scanned.slowPathReason, 'bom')
    t.same(scanned.seen, parseWithStrings(chunks, MB))
  }
  t.equal(scanWithBytes(chunksOf('é: 1\n\ndata: a\n\n'), MB).slowPathReason, undefined, 'another character is read on bytes')
})

t.test('invalid UTF-8 moves the stream to the string parser, which reads it as U+FFFD as today', async (t) => {
  const chunks = [bytes('data: ok\n\nid: 5\ndata: a'), Buffer.from([0xff, 0x0a]), bytes('data: b\n\n')]
  const scanned = scanWithBytes(chunks, MB)
  t.equal(scanned.slowPathReason, 'invalid-utf8')
  t.same(scanned.seen, [['event', undefined, undefined, 'ok'], ['event', '5', undefined, 'a\uFFFD\nb']])
  const inOneChunk = [bytes('data: x\n'), Buffer.concat([bytes('data: y\n'), Buffer.from([0xc3, 0x28]), bytes('\n\n')])]
  t.same(scanWithBytes(inOneChunk, MB).seen, parseWithStrings(inOneChunk, MB))
})

t.test('an event past the limit stops the stream as today; reset() starts a new connection on the byte path', async (t) => {
  const seen: string[] = []
  let oversized = 0
  const scanner = createRelayScanner({
    onEvent: (out) => seen.push(eventData(out)),
    onComment: () => {},
    onRetry: () => {},
    onMalformedLine: () => {},
    onOversizedEvent: () => { oversized++ }
  }, 100)
  scanner.feed(bytes('data: first\n\ndata: '))
  scanner.feed(bytes('y'.repeat(200)))
  t.equal(oversized, 1)
  t.equal(scanner.slowPathReason, 'large-event')
  scanner.feed(bytes('\n\ndata: after\n\n'))
  t.same(seen, ['first'], 'nothing after the stop')
  scanner.reset()
  t.equal(scanner.slowPathReason, undefined)
  scanner.feed(bytes('data: fresh\n\n'))
  t.same(seen, ['first', 'fresh'])
  t.equal(oversized, 1)
})

t.test('an event whose bytes pass the limit but whose characters do not is still delivered, as today', async (t) => {
  // 40 four-byte characters: 160 bytes, 80 UTF-16 units, under a limit of 100.
  const chunks = chunksOf(`data: ${'💡'.repeat(40)}\n\n`, 'data: next\n\n')
  const scanned = scanWithBytes(chunks, 100)
  t.equal(scanned.slowPathReason, 'large-event')
  t.same(scanned.seen, [['event', undefined, undefined, '💡'.repeat(40)], ['event', undefined, undefined, 'next']])
  t.same(scanned.seen, parseWithStrings(chunks, 100))
  const endingInCr = chunksOf('data: 0123456789\r\n\r', 'data: next\r\n\r\n')
  const atCr = scanWithBytes(endingInCr, 10)
  t.equal(atCr.slowPathReason, 'large-event', 'also when a chunk\'s last CR ends it')
  t.same(atCr.seen, [['event', undefined, undefined, '0123456789'], ['event', undefined, undefined, 'next']])
  t.same(atCr.seen, parseWithStrings(endingInCr, 10))
})

t.test('a line past the limit ended by a chunk\'s last CR: the string parser that takes over owes that CR its LF', async (t) => {
  const chunks = chunksOf(`data: ${'x'.repeat(20)}\r`, '\ndata: more\n\n')
  const scanned = scanWithBytes(chunks, 100)
  t.equal(scanned.slowPathReason, undefined, 'under the limit, on bytes')
  t.same(scanned.seen, [['event', undefined, undefined, `${'x'.repeat(20)}\nmore`]])
  const past = scanWithBytes(chunks, 16)
  t.equal(past.slowPathReason, 'large-event')
  t.same(past.seen, parseWithStrings(chunks, 16))
  t.same(past.seen, [['oversized']], 'one event, too large, as today')
  const justUnder = chunksOf(`data: ${'x'.repeat(12)}\r`, '\n', 'data: y\n\n')
  const under = scanWithBytes(justUnder, 18)
  t.equal(under.slowPathReason, 'large-event', 'more bytes than the limit, fewer characters')
  t.same(under.seen, [['event', undefined, undefined, `${'x'.repeat(12)}\ny`]])
  t.same(under.seen, parseWithStrings(justUnder, 18))
})

t.test('data lines that never end in a blank line cannot grow past the limit', async (t) => {
  const chunks = Array.from({ length: 50 }, () => bytes('data: 0123456789\n'))
  const scanned = scanWithBytes(chunks, 200)
  t.same(scanned.seen, [['oversized']])
  t.same(scanned.seen, parseWithStrings(chunks, 200))
})

t.test('reset() forgets a half-received event', async (t) => {
  const seen: string[] = []
  const scanner = createRelayScanner({
    onEvent: (out) => seen.push(eventData(out)),
    onComment: () => {},
    onRetry: () => {},
    onMalformedLine: () => {},
    onOversizedEvent: () => {}
  }, MB)
  scanner.feed(bytes('data: half\ndata: li'))
  scanner.reset()
  scanner.feed(bytes('ne\n\ndata: whole\n\n'))
  t.same(seen, ['whole'])
})

t.test('eventData decodes only on demand, for byte-path and string-path events alike', async (t) => {
  t.equal(eventData(bytes('event: endpoint\ndata: /messages?session=1\n')), '/messages?session=1')
  t.equal(eventData(bytes('data:a\r\ndata\ndata:  b\n')), 'a\n\n b')
  t.equal(eventData(bytes('event: x\n')), '')
  const slow = scanWithBytes([bytes('data: a\rdata: é\r\r')], MB).outputs[0] ?? Buffer.alloc(0)
  t.equal(eventData(slow), 'a\né')
})

t.test('answeredIdsInEvent finds JSON-RPC responses, and parses nothing for a notification', async (t) => {
  t.same(answeredIdsInEvent(bytes('event: message\ndata: {"jsonrpc":"2.0","id":7,"result":{}}\n')), ['7'])
  t.same(answeredIdsInEvent(bytes('data: [{"jsonrpc":"2.0","id":"a","error":{"code":1}},\ndata: {"jsonrpc":"2.0","id":2,"result":1}]\n')), ['"a"', '2'])
  t.same(answeredIdsInEvent(bytes('data: {"jsonrpc":"2.0","method":"notifications/progress","params":{}}\n')), [])
  t.same(answeredIdsInEvent(bytes('data: {"result": broken\n')), [])
})
