import { constants, monitorEventLoopDelay, PerformanceObserver, type IntervalHistogram, type PerformanceEntry } from 'node:perf_hooks'

/** One kind of garbage collection over a window: how often, how long in all, the longest. */
export interface GcKindFigures {
  count: number
  totalMs: number
  maxMs: number
}

export interface GcFigures {
  /** Young generation (V8's scavenger). */
  minor: GcKindFigures
  /** Full mark-compact (or mark-sweep). */
  major: GcKindFigures
  /** Steps of incremental marking, done in between the program's own turns. */
  incremental: GcKindFigures
  /** Processing of weak callbacks. */
  weakCallbacks: GcKindFigures
}

/** What stalled a process's event loop over a window. */
export interface PauseFigures {
  readonly windowMs: number
  /** How late the loop came back to a 1 ms timer: p50, p99, max (the timer's own 1 ms taken off). */
  readonly loopDelayP50Ms: number | null
  readonly loopDelayP99Ms: number | null
  readonly loopDelayMaxMs: number | null
  readonly gc: GcFigures
}

// A 1 ms timer: finer than any pause worth reporting, and cheap (a thousand wake-ups a second).
const RESOLUTION_MS = 1
const NS_PER_MS = 1e6

/**
 * The event loop's delay (perf_hooks.monitorEventLoopDelay) and the GC pauses V8
 * reports (PerformanceObserver 'gc'), in the process it runs in, since the last reset.
 */
export class PauseMonitor {
  readonly #delay: IntervalHistogram
  #gc: GcFigures = emptyGc()
  #since = performance.now()

  constructor () {
    this.#delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
    this.#delay.enable()
    // For the life of the process: the bench's processes measure until they exit.
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) this.#recordGc(entry)
    }).observe({ entryTypes: ['gc'] })
  }

  reset (): void {
    this.#delay.reset()
    this.#gc = emptyGc()
    this.#since = performance.now()
  }

  read (): PauseFigures {
    const delay = this.#delay
    const empty = delay.count === 0
    return {
      windowMs: performance.now() - this.#since,
      loopDelayP50Ms: empty ? null : lateBy(delay.percentile(50)),
      loopDelayP99Ms: empty ? null : lateBy(delay.percentile(99)),
      loopDelayMaxMs: empty ? null : lateBy(delay.max),
      gc: structuredClone(this.#gc)
    }
  }

  #recordGc (entry: PerformanceEntry): void {
    // Node puts a gc entry's kind in `detail`, which its types leave out of PerformanceEntry.
    const kind = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind
    const figures = kind === constants.NODE_PERFORMANCE_GC_MINOR
      ? this.#gc.minor
      : kind === constants.NODE_PERFORMANCE_GC_MAJOR
        ? this.#gc.major
        : kind === constants.NODE_PERFORMANCE_GC_INCREMENTAL ? this.#gc.incremental : this.#gc.weakCallbacks
    figures.count++
    figures.totalMs += entry.duration
    if (entry.duration > figures.maxMs) figures.maxMs = entry.duration
  }
}

function lateBy (nanoseconds: number): number {
  return Math.max(0, nanoseconds / NS_PER_MS - RESOLUTION_MS)
}

function emptyGc (): GcFigures {
  const kind = (): GcKindFigures => ({ count: 0, totalMs: 0, maxMs: 0 })
  return { minor: kind(), major: kind(), incremental: kind(), weakCallbacks: kind() }
}

/** "minor 120 × 3.1 ms (max 11.0), major 4 × 25.0 ms (max 33.0)": for progress lines and the report. */
export function describeGc (gc: GcFigures, windowMs: number): string {
  const seconds = windowMs / 1000
  const part = (name: string, figures: GcKindFigures): string => figures.count === 0
    ? `${name} none`
    : `${name} ${figures.count} (${(figures.count / seconds).toFixed(1)}/s), mean ${(figures.totalMs / figures.count).toFixed(1)} ms, max ${figures.maxMs.toFixed(1)} ms`
  return [part('scavenge', gc.minor), part('mark-compact', gc.major), part('incremental marking', gc.incremental)].join('; ')
}
