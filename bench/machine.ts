import { cpus, loadavg, release, totalmem, type, arch } from 'node:os'

export interface MachineInfo {
  readonly cpuModel: string
  readonly cores: number
  readonly node: string
  readonly os: string
  readonly memoryGb: number
  /** How busy the machine was when the run started: figures from a loaded machine are noisier. */
  readonly loadAverage1m: number
  /** The nginx peer's version, when it ran. */
  nginx: string | null
  /** The Redis server's version, when the Redis store ran (the `plugin-redis` peer). */
  redis: string | null
}

export function describeMachine (): MachineInfo {
  const processors = cpus()
  return {
    cpuModel: processors[0]?.model.trim() ?? 'unknown',
    cores: processors.length,
    node: process.version,
    os: `${type()} ${release()} ${arch()}`,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    loadAverage1m: Number((loadavg()[0] ?? 0).toFixed(2)),
    nginx: null,
    redis: null
  }
}
