import type { ReconnectPolicy } from '../config/schema.js'

/**
 * The delay before reconnection attempt `attempt` (from 1) of one outage.
 * An upstream's own hint (Retry-After, SSE `retry:`) wins, capped by maxHintDelayMs.
 * Otherwise: immediate for the first attempt after a clean close, then
 * baseDelayMs * factor^(n-2), capped by maxDelayMs, spread by +-jitter.
 */
export function reconnectDelayMs (
  policy: ReconnectPolicy,
  attempt: number,
  cleanClose: boolean,
  hintMs: number | undefined,
  random: () => number = Math.random
): number {
  if (hintMs !== undefined) return Math.min(hintMs, policy.maxHintDelayMs)
  if (cleanClose && attempt === 1) return 0
  const step = cleanClose ? attempt - 2 : attempt - 1
  const delay = Math.min(policy.baseDelayMs * policy.factor ** step, policy.maxDelayMs)
  return Math.max(0, Math.round(delay * (1 + policy.jitter * (2 * random() - 1))))
}

/** Retry-After in seconds or as an HTTP date (RFC 9110 section 10.2.3), as milliseconds from `now`. */
export function parseRetryAfter (value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}
