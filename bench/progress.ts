const started = performance.now()

/** A progress line on stderr, so that stdout holds only the report. */
export function progress (message: string): void {
  const seconds = ((performance.now() - started) / 1000).toFixed(1).padStart(6)
  process.stderr.write(`[${seconds} s] ${message}\n`)
}
