import { readFile } from 'node:fs/promises'
import { parseDocument } from 'yaml'
import { ConfigFileError } from '../errors.js'
import { resolveOptions } from './validate.js'
import type { ResolvedOptions } from './schema.js'

/** Reads a YAML config file and validates it against the same schema as register() options. */
export async function loadConfigFile (path: string): Promise<ResolvedOptions> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    throw new ConfigFileError(path, (error as Error).message)
  }
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true })
  if (document.errors.length > 0) {
    throw new ConfigFileError(path, `invalid YAML:\n${document.errors.map((error) => `  - ${asListItem(error.message)}`).join('\n')}`)
  }
  let data: unknown
  try {
    data = document.toJS()
  } catch (error) {
    // The yaml package refuses alias bombs ("billion laughs") here, not while parsing.
    throw new ConfigFileError(path, (error as Error).message)
  }
  return resolveOptions(data, `config file ${path}`)
}

/** A yaml error, its code frame under its bullet: blank lines dropped, the rest indented alike, so the caret still points. */
function asListItem (message: string): string {
  return message.split('\n').filter((line) => line.trim() !== '').join('\n    ')
}
