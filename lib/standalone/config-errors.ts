import { ConfigFileError, InvalidConfigError } from '../errors.js'

/** A config file that cannot be read, parsed or accepted: its message says all a person needs to fix it. */
export function isConfigError (error: unknown): error is Error {
  return error instanceof InvalidConfigError || error instanceof ConfigFileError
}

/**
 * As a command-line program does: the problems on stderr, and exit code 1. No stack,
 * no status code and no Node banner: none of them says anything about the file.
 * Any other error goes on as it is, stack and all.
 */
export function exitOnConfigError (error: unknown): never {
  /* c8 ignore next -- loadConfigFile wraps every failure in a config error; anything else is a bug, and keeps its stack */
  if (!isConfigError(error)) throw error
  process.stderr.write(`${error.message}\n`)
  process.exit(1)
}
