/** A number from the environment (CHAOS_SECONDS and the like), or the fallback when unset. */
export function envNumber (name: string, fallback: number): number {
  const value = process.env[name]
  if (value === undefined || value === '') return fallback
  const parsed = Number(value)
  if (!Number.isFinite(parsed)) throw new Error(`${name} must be a number, not ${value}`)
  return parsed
}
