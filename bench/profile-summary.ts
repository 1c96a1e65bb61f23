/**
 * Summarises what `--proxy-node-args "--cpu-prof --trace-gc"` leaves behind:
 * for each .cpuprofile, the functions with the most self time; for each proxy
 * stdout log, the GC pauses --trace-gc printed, by kind.
 *
 *   node dist/bench/bench/profile-summary.js [--top N] FILE...
 */
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'
import { percentile } from './statistics.js'

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
}

interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[]
  readonly startTime: number
  readonly endTime: number
  readonly samples: readonly number[]
  readonly timeDeltas: readonly number[]
}

export interface SelfTime {
  readonly name: string
  readonly ms: number
  /** Share of the samples that were not idle. */
  readonly share: number
}

/** Self time per function (name and place), from each sample's node and the time up to the next sample. */
export function selfTimes (profile: CpuProfile): { busyMs: number, idleMs: number, top: SelfTime[] } {
  const frameOf = new Map<number, CallFrame>(profile.nodes.map((node) => [node.id, node.callFrame]))
  const byName = new Map<string, number>()
  let idle = 0
  let busy = 0
  for (let index = 0; index < profile.samples.length; index++) {
    const micros = profile.timeDeltas[index + 1] ?? 0
    const frame = frameOf.get(profile.samples[index] as number)
    if (frame === undefined) continue
    if (frame.functionName === '(idle)') {
      idle += micros
      continue
    }
    busy += micros
    const name = describeFrame(frame)
    byName.set(name, (byName.get(name) ?? 0) + micros)
  }
  const top = [...byName].sort((left, right) => right[1] - left[1]).map(([name, micros]) => ({ name, ms: micros / 1000, share: busy === 0 ? 0 : micros / busy }))
  return { busyMs: busy / 1000, idleMs: idle / 1000, top }
}

function describeFrame (frame: CallFrame): string {
  const name = frame.functionName === '' ? '(anonymous)' : frame.functionName
  if (frame.url === '') return name
  const place = frame.url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, '').replace(/^.*\/dist\/bench\//, '')
  return `${name} ${place}:${frame.lineNumber + 1}`
}

export interface GcKindTrace {
  readonly kind: string
  readonly count: number
  readonly perSecond: number
  readonly meanIntervalMs: number | null
  readonly pauseP50Ms: number | null
  readonly pauseP99Ms: number | null
  readonly pauseMaxMs: number
  readonly pauseTotalMs: number
}

// "[pid:0x…]    1234 ms: Scavenge 50.1 (60.2) -> 45.3 (62.0) MB, 11.2 / 0.0 ms  (…) allocation failure;"
const TRACE_LINE = /\s(\d+) ms: ([A-Za-z-]+(?: \([a-z]+\))?) [\d.]+ \([\d.]+\) -> [\d.]+ \([\d.]+\) MB, ([\d.]+) \/ [\d.]+ ms/

/** The pauses --trace-gc printed, by kind (Scavenge, Mark-Compact, Mark-Compact (reduce), …). */
export function gcTrace (text: string): { spanMs: number, kinds: GcKindTrace[] } {
  const events = new Map<string, Array<{ at: number, pause: number }>>()
  let first = Number.POSITIVE_INFINITY
  let last = 0
  for (const line of text.split('\n')) {
    const match = TRACE_LINE.exec(line)
    if (match === null) continue
    const at = Number(match[1])
    const kind = match[2] as string
    first = Math.min(first, at)
    last = Math.max(last, at)
    const list = events.get(kind) ?? []
    list.push({ at, pause: Number(match[3]) })
    events.set(kind, list)
  }
  const spanMs = last > first ? last - first : 0
  const kinds = [...events].map(([kind, list]) => {
    const pauses = Float64Array.from(list.map((event) => event.pause)).sort()
    const intervals = list.slice(1).map((event, index) => event.at - (list[index] as { at: number }).at)
    return {
      kind,
      count: list.length,
      perSecond: spanMs === 0 ? 0 : list.length / (spanMs / 1000),
      meanIntervalMs: intervals.length === 0 ? null : intervals.reduce((sum, value) => sum + value, 0) / intervals.length,
      pauseP50Ms: percentile(pauses, 0.5),
      pauseP99Ms: percentile(pauses, 0.99),
      pauseMaxMs: pauses[pauses.length - 1] ?? 0,
      pauseTotalMs: pauses.reduce((sum, value) => sum + value, 0)
    }
  })
  return { spanMs, kinds }
}

function main (argv: readonly string[]): void {
  let top = 15
  const files: string[] = []
  for (let index = 0; index < argv.length; index++) {
    if (argv[index] === '--top') top = Number(argv[++index])
    else files.push(argv[index] as string)
  }
  if (files.length === 0) {
    console.error('usage: node dist/bench/bench/profile-summary.js [--top N] FILE.cpuprofile|FILE.log ...')
    process.exitCode = 1
    return
  }
  for (const file of files) {
    const text = readFileSync(file, 'utf8')
    if (file.endsWith('.cpuprofile')) {
      const { busyMs, idleMs, top: functions } = selfTimes(JSON.parse(text) as CpuProfile)
      console.log(`\n${basename(file)}: ${(busyMs / 1000).toFixed(1)} s busy, ${(idleMs / 1000).toFixed(1)} s idle; self time, share of busy:\n`)
      console.log('| function | self ms | share |\n|---|---:|---:|')
      for (const entry of functions.slice(0, top)) console.log(`| \`${entry.name}\` | ${entry.ms.toFixed(0)} | ${(entry.share * 100).toFixed(1)}% |`)
    } else {
      const { spanMs, kinds } = gcTrace(text)
      console.log(`\n${basename(file)}: GC pauses from --trace-gc over ${(spanMs / 1000).toFixed(1)} s\n`)
      console.log('| kind | count | per s | mean interval ms | pause p50 ms | p99 ms | max ms | total ms |\n|---|---:|---:|---:|---:|---:|---:|---:|')
      for (const kind of kinds) {
        console.log(`| ${kind.kind} | ${kind.count} | ${kind.perSecond.toFixed(1)} | ${kind.meanIntervalMs?.toFixed(0) ?? '-'} | ` +
          `${kind.pauseP50Ms?.toFixed(1) ?? '-'} | ${kind.pauseP99Ms?.toFixed(1) ?? '-'} | ${kind.pauseMaxMs.toFixed(1)} | ${kind.pauseTotalMs.toFixed(0)} |`)
      }
    }
  }
}

main(process.argv.slice(2))
