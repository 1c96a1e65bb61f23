import { execFileSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'

let microsPerTick: number | undefined

/**
 * CPU time (user + system) a process has used so far, in microseconds, from
 * /proc: for peers that cannot report their own (nginx). Linux only; null elsewhere.
 */
export async function processCpuMicros (pid: number): Promise<number | null> {
  let stat: string
  try {
    stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return null
  }
  // Fields after the command name, which is in parentheses and may hold spaces: state is the first.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = Number(fields[11]) + Number(fields[12])
  return ticks * tickMicros()
}

function tickMicros (): number {
  if (microsPerTick === undefined) {
    let ticksPerSecond = 100
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {}
    microsPerTick = 1_000_000 / ticksPerSecond
  }
  return microsPerTick
}

/** CPU time all cores spent busy so far (neither idle nor waiting on I/O), in microseconds, from /proc/stat; null off Linux. */
export async function machineBusyMicros (): Promise<number | null> {
  let stat: string
  try {
    stat = await readFile('/proc/stat', 'utf8')
  } catch {
    return null
  }
  // cpu  user nice system idle iowait irq softirq steal ...
  const ticks = (stat.split('\n')[0] ?? '').trim().split(/\s+/).slice(1, 9).map(Number)
  const total = ticks.reduce((sum, value) => sum + value, 0)
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0)
  return Number.isFinite(total) ? (total - idle) * tickMicros() : null
}
