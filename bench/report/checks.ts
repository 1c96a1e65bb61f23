import type { TargetCheck } from './results.js'

/** A target met when its one figure passes; not measured when there is no figure. */
export function threshold (target: string, goal: string, value: number | null, passes: (value: number) => boolean, format: (value: number) => string): TargetCheck {
  if (value === null) return notMeasured(target, goal)
  return { target, goal, measured: format(value), status: passes(value) ? 'met' : 'missed' }
}

export function combine (target: string, goal: string, parts: ReadonlyArray<{ text: string | null, met: boolean }>): TargetCheck {
  if (parts.some((part) => part.text === null)) return notMeasured(target, goal)
  return { target, goal, measured: parts.map((part) => part.text).join('; '), status: parts.every((part) => part.met) ? 'met' : 'missed' }
}

export function notMeasured (target: string, goal: string): TargetCheck {
  return { target, goal, measured: '-', status: 'not measured' }
}
