import type { PeerName } from '../peers.js'
import type { CaseRatio, ThroughputRow } from './results.js'

/** Throughput of one peer over another's, for each full-speed case both ran. */
export function fullSpeedRatios (rows: readonly ThroughputRow[], numerator: PeerName, denominator: PeerName): CaseRatio[] {
  return ratiosOf(rows, numerator, denominator, (row) => row.eventsPerSec)
}

function ratiosOf (rows: readonly ThroughputRow[], numerator: PeerName, denominator: PeerName, figure: (row: ThroughputRow) => number | null): CaseRatio[] {
  const ratios: CaseRatio[] = []
  for (const row of rows) {
    if (row.scenario !== numerator || row.offeredPerConn !== 0) continue
    const other = findRow(rows, denominator, row.clients, row.eventBytes, 0)
    if (other === undefined) continue
    const top = figure(row)
    const bottom = figure(other)
    ratios.push({ clients: row.clients, eventBytes: row.eventBytes, ratio: top === null || bottom === null || bottom === 0 ? null : top / bottom })
  }
  return ratios
}

/** Proxy CPU per event of one peer over another's, for each full-speed case both ran. */
export function fullSpeedCpuRatios (rows: readonly ThroughputRow[], numerator: PeerName, denominator: PeerName): CaseRatio[] {
  return ratiosOf(rows, numerator, denominator, (row) => row.cpuUsPerEvent)
}

export function geometricMean (ratios: readonly CaseRatio[]): number | null {
  const known = ratios.map((entry) => entry.ratio).filter((ratio): ratio is number => ratio !== null && ratio > 0)
  if (known.length === 0) return null
  return Math.exp(known.reduce((sum, ratio) => sum + Math.log(ratio), 0) / known.length)
}

export function findRow (rows: readonly ThroughputRow[], peer: PeerName, clients: number, eventBytes: number, offeredPerConn: number): ThroughputRow | undefined {
  return rows.find((row) => row.scenario === peer && row.clients === clients && row.eventBytes === eventBytes && row.offeredPerConn === offeredPerConn)
}
