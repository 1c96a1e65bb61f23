/**
 * Micro-benchmark of the relay's per-event wire work: the slow path (StringDecoder,
 * eventsource-parser, serializeWithProxyId) against the fast path the relay takes for
 * events of data, event and id lines (lib/wire/sse-line-splitter.ts), each ending in the
 * Buffer.from a socket write makes of it, on MCP-like events of 200 B and 2 KB in 64 KB chunks.
 *
 *   node --expose-gc --max-semi-space-size=64 --import ./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/wire/relay-path-micro.ts
 *
 * Prints CPU ns per event (the best of several rounds, each over 8 MB, variants interleaved)
 * and what each variant leaves allocated per event when no collection runs.
 */
import { PerformanceObserver } from 'node:perf_hooks'
import { createSseParser } from '../../lib/wire/sse-parser.js'
import { serializeWithProxyId } from '../../lib/wire/sse-serializer.js'
import { eventWriter, wallClockMs } from './event-payload.js'

const CHUNK_BYTES = 64 * 1024
const STREAM_BYTES = 8 * 1024 * 1024
const ROUNDS = 9
const ID_PREFIX = 'c0ffee-'

interface Variant { name: string, run: (chunks: readonly Buffer[]) => number }

/** The upstream stream: `event: message`, `id:` and one `data:` line per event, cut into 64 KB chunks (each its own Buffer, as socket reads are). */
function upstreamChunks (eventBytes: number): Buffer[] {
  const write = eventWriter(eventBytes)
  const t = wallClockMs().toFixed(3)
  const parts: string[] = []
  let length = 0
  for (let seq = 1; length < STREAM_BYTES; seq++) {
    const text = `event: message\n${write(seq, t)}`
    parts.push(text)
    length += text.length
  }
  const all = Buffer.from(parts.join(''))
  const chunks: Buffer[] = []
  for (let start = 0; start < all.length; start += CHUNK_BYTES) chunks.push(Buffer.from(all.subarray(start, start + CHUNK_BYTES)))
  return chunks
}

let sink = 0

/** What these upstream streams never hold. */
const IGNORED = { onComment () {}, onRetry () {}, onMalformedLine () {}, onOversizedEvent () {} }

const variants: Variant[] = [
  {
    name: 'slow path: decode, parse, serializeWithProxyId, Buffer.from',
    run (chunks) {
      let seq = 0
      const parser = createSseParser({
        onEvent (event) {
          sink += Buffer.from(serializeWithProxyId(ID_PREFIX + String(++seq), event)).length
        },
        ...IGNORED
      }, 1 << 20)
      for (const chunk of chunks) parser.feed(chunk)
      return seq
    }
  },
  {
    name: 'fast path: decode, the event\'s own lines after the proxy\'s id line, Buffer.from',
    run (chunks) {
      let seq = 0
      const parser = createSseParser({
        onEvent () {},
        onEventLines (lines) {
          sink += Buffer.from(`id: ${ID_PREFIX}${++seq}\n${lines}\n`).length
        },
        ...IGNORED
      }, 1 << 20)
      for (const chunk of chunks) parser.feed(chunk)
      return seq
    }
  }
]

let collections = 0
new PerformanceObserver((list) => { collections += list.getEntries().length }).observe({ entryTypes: ['gc'] })

const gc = (globalThis as { gc?: () => void }).gc

/** Heap and ArrayBuffer bytes one run leaves behind per event, measured while no collection runs (else undefined). */
async function allocationPerEvent (variant: Variant, chunks: readonly Buffer[]): Promise<{ heap: number, external: number } | undefined> {
  if (gc === undefined) return undefined
  // A tenth of the stream keeps a run inside a 64 MB young generation.
  for (let attempt = 0; attempt < 5; attempt++) {
    const part = chunks.slice(0, Math.max(1, Math.floor(chunks.length / 10))).map((chunk) => Buffer.from(chunk))
    gc()
    // The observer hears of that collection later: let it, before counting.
    await new Promise((resolve) => setTimeout(resolve, 20))
    const before = process.memoryUsage()
    const seenCollections = collections
    const events = variant.run(part)
    const after = process.memoryUsage()
    await new Promise((resolve) => setTimeout(resolve, 20))
    if (collections === seenCollections) {
      return { heap: (after.heapUsed - before.heapUsed) / events, external: (after.arrayBuffers - before.arrayBuffers) / events }
    }
  }
  return undefined
}

for (const eventBytes of [200, 2048]) {
  const chunks = upstreamChunks(eventBytes)
  const best = new Map<string, number>()
  for (let round = 0; round < ROUNDS; round++) {
    for (const variant of variants) {
      // Fresh chunks, as from a socket.
      const fresh = chunks.map((chunk) => Buffer.from(chunk))
      // CPU time rather than wall time: the bench machine is shared.
      const start = process.cpuUsage()
      const events = variant.run(fresh)
      const used = process.cpuUsage(start)
      const nsPerEvent = (used.user + used.system) * 1000 / events
      // The first rounds warm the JIT up.
      if (round >= 2) best.set(variant.name, Math.min(best.get(variant.name) ?? Infinity, nsPerEvent))
    }
  }
  console.log(`\n${eventBytes} B events, ${CHUNK_BYTES / 1024} KB chunks`)
  for (const variant of variants) {
    const allocation = await allocationPerEvent(variant, chunks)
    const allocated = allocation === undefined ? 'allocation not measured (run with --expose-gc)' : `${allocation.heap.toFixed(0)} B heap + ${allocation.external.toFixed(0)} B buffers per event`
    console.log(`  ${(best.get(variant.name) ?? 0).toFixed(0).padStart(6)} ns/event  ${allocated}  ${variant.name}`)
  }
}
if (sink === 0) console.log('nothing written')
