import fc from 'fast-check'
import { cutAt } from './sse-reads.js'

// Random upstream SSE byte streams, and ways to cut them into chunks: what the relay's fast path is
// fuzzed with (test/fuzz-line-splitter.test.ts), and the relay end to end (test/fuzz-relay.test.ts).

export const utf8 = (text: string) => Buffer.from(text, 'utf8')

// Field names as they start a line: the four fields with and without their colon's space, near misses, a comment.
const fieldName = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('data:', 'data: ', 'data: ', 'data:  ', 'data') },
  { weight: 2, arbitrary: fc.constantFrom('event:', 'event: ', 'event', 'id:', 'id: ', 'id') },
  { weight: 2, arbitrary: fc.constantFrom('retry:', 'retry: ', 'retry', ':', ': ', 'Data: ', 'datum: ', 'x: ', 'data : ', 'ev: ', 'idx: ', 'retryx: ', '') }
)
const cleanPiece = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('a', ' ', ':', 'é', '💡', '\0', '\t', 'data: ', 'id:', '7', '{"jsonrpc":"2.0","id":3,"result":{}}', '\uFEFF', 'ï»¿', '\u2028').map(utf8) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 300 }).map((length) => Buffer.alloc(length, 'y')) },
  { weight: 1, arbitrary: fc.stringMatching(/^\d{1,18}$/).map(utf8) }
)
const invalidPiece = fc.constantFrom(Buffer.from([0xff]), Buffer.from([0xc3]), Buffer.from([0xe2, 0x82]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xc0, 0xaf]))

export interface Flavor { crOnly: boolean, invalid: boolean, start: Buffer }
const flavor: fc.Arbitrary<Flavor> = fc.record({
  crOnly: fc.boolean(),
  invalid: fc.boolean(),
  start: fc.oneof(
    { weight: 6, arbitrary: fc.constant(Buffer.alloc(0)) },
    { weight: 1, arbitrary: fc.constant(Buffer.from([0xef, 0xbb, 0xbf])) },
    { weight: 1, arbitrary: fc.constant(utf8('ï»¿')) },
    { weight: 1, arbitrary: fc.constant(utf8('\n')) }
  )
})

export function streamOf (flavorOf: Flavor): fc.Arbitrary<Buffer> {
  const piece = flavorOf.invalid ? fc.oneof({ weight: 12, arbitrary: cleanPiece }, { weight: 1, arbitrary: invalidPiece }) : cleanPiece
  const ending = flavorOf.crOnly ? fc.constantFrom('\n', '\r\n', '\r') : fc.constantFrom('\n', '\n', '\r\n')
  const line = fc.tuple(fieldName, fc.array(piece, { maxLength: 5 }), ending).map(([name, pieces, end]) => Buffer.concat([utf8(name), ...pieces, utf8(end)]))
  // Blocks of lines, each ended by a blank line but now and then the last.
  const block = fc.tuple(fc.array(line, { maxLength: 5 }), fc.option(ending, { freq: 8, nil: '' })).map(([lines, end]) => Buffer.concat([...lines, utf8(end)]))
  return fc.array(block, { maxLength: 12 }).map((blocks) => Buffer.concat([flavorOf.start, ...blocks]))
}

export const stream = flavor.chain((flavorOf) => streamOf(flavorOf))
// Cut points anywhere, or chunks of one to three bytes throughout (a CR, an LF, half a character alone).
export const cuts = fc.oneof(
  { weight: 4, arbitrary: fc.array(fc.nat(), { maxLength: 30 }) },
  { weight: 1, arbitrary: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 8 }).map((sizes) => ({ sizes })) }
)
export const chunksOf = (bytes: Buffer, cut: number[] | { sizes: number[] }): Buffer[] => Array.isArray(cut) ? cutAt(bytes, cut) : cutEvery(bytes, cut.sizes)

function cutEvery (bytes: Buffer, sizes: number[]): Buffer[] {
  const chunks: Buffer[] = []
  for (let start = 0, i = 0; start < bytes.length; i++) {
    const end = start + (sizes[i % sizes.length] ?? 1)
    chunks.push(bytes.subarray(start, end))
    start = end
  }
  return chunks
}
