import type { CheckResult, CheckStatus } from './run-suite.js'

/**
 * What the proxy changes in a conformance run: the same suite, once against the upstream
 * and once through the proxy in front of it.
 */

export interface Regression {
  readonly scenario: string
  readonly id: string
  readonly name: string
  /** Statuses of the check directly, and through the proxy (none: the check did not run). */
  readonly direct: CheckStatus[]
  readonly proxied: CheckStatus[]
  /** Why the proxied run did not pass, as the suite put it. */
  readonly errorMessage?: string
}

export interface Tally {
  readonly passed: number
  readonly total: number
  readonly failed: number
  readonly warnings: number
}

export function tally (checks: readonly CheckResult[]): Tally {
  const count = (status: CheckStatus): number => checks.filter((check) => check.status === status).length
  return { passed: count('SUCCESS'), total: checks.length, failed: count('FAILURE'), warnings: count('WARNING') }
}

export function formatTally (label: string, { passed, total, failed, warnings }: Tally, durationMs: number): string {
  return `${label}: ${passed}/${total} checks passed, ${failed} failed, ${warnings} warnings (${(durationMs / 1000).toFixed(1)} s)`
}

/**
 * The checks that pass directly and not through the proxy (counted per scenario and check
 * id, since a scenario may repeat an id), and those that fail through the proxy and not
 * directly. A scenario that the proxied run lost entirely loses all its checks.
 */
export function findRegressions (direct: readonly CheckResult[], proxied: readonly CheckResult[]): Regression[] {
  const directByKey = groupByCheck(direct)
  const proxiedByKey = groupByCheck(proxied)
  const regressions: Regression[] = []
  for (const [key, directChecks] of directByKey) {
    const proxiedChecks = proxiedByKey.get(key) ?? []
    const lostPasses = countStatus(directChecks, 'SUCCESS') - countStatus(proxiedChecks, 'SUCCESS')
    const newFailures = countStatus(proxiedChecks, 'FAILURE') - countStatus(directChecks, 'FAILURE')
    if (lostPasses > 0 || newFailures > 0) regressions.push(regression(directChecks, proxiedChecks))
  }
  for (const [key, proxiedChecks] of proxiedByKey) {
    if (!directByKey.has(key) && countStatus(proxiedChecks, 'FAILURE') > 0) regressions.push(regression([], proxiedChecks))
  }
  return regressions
}

/** One line per regression: `scenario → check-id (CheckName): SUCCESS directly, FAILURE through the proxy: why`. */
export function formatRegression ({ scenario, id, name, direct, proxied, errorMessage }: Regression): string {
  const statuses = (list: CheckStatus[]): string => list.length === 0 ? 'not run' : list.join('+')
  const why = errorMessage === undefined ? '' : `: ${errorMessage}`
  return `${scenario} → ${id} (${name}): ${statuses(direct)} directly, ${statuses(proxied)} through the proxy${why}`
}

function regression (directChecks: CheckResult[], proxiedChecks: CheckResult[]): Regression {
  const [first] = [...directChecks, ...proxiedChecks] as [CheckResult]
  const errorMessage = proxiedChecks.find((check) => check.status !== 'SUCCESS' && check.errorMessage !== undefined)?.errorMessage
  return {
    scenario: first.scenario,
    id: first.id,
    name: first.name,
    direct: directChecks.map((check) => check.status),
    proxied: proxiedChecks.map((check) => check.status),
    ...(errorMessage === undefined ? {} : { errorMessage })
  }
}

function groupByCheck (checks: readonly CheckResult[]): Map<string, CheckResult[]> {
  const groups = new Map<string, CheckResult[]>()
  for (const check of checks) {
    const key = `${check.scenario}\u0000${check.id}`
    const group = groups.get(key)
    if (group === undefined) groups.set(key, [check])
    else group.push(check)
  }
  return groups
}

function countStatus (checks: readonly CheckResult[], status: CheckStatus): number {
  return checks.filter((check) => check.status === status).length
}
