import { Value } from '@sinclair/typebox/value'
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors'
import type { TSchema } from '@sinclair/typebox'
import { FORMAT_NAMES, OptionsSchema, ROUTE_SCHEMAS, RouteSchema, type ResolvedOptions } from './schema.js'
import { InvalidConfigError } from '../errors.js'

const ROUTE_KINDS = ROUTE_SCHEMAS.map((schema) => schema.properties.kind.const)

/**
 * Applies the schema's defaults to a copy of `input` and checks it.
 * Every problem is reported at once, each prefixed with its path, so that one
 * failed start-up shows the whole list (the same for register() options and YAML).
 */
export function resolveOptions (input: unknown, source = 'options'): ResolvedOptions {
  const { options, problems } = checkOptions(input)
  throwOnProblems(source, problems)
  return options
}

/**
 * The options with the schema's defaults applied, and every problem found in them.
 * `omitKeys` are top-level keys checked elsewhere (register() options that YAML cannot hold).
 */
export function checkOptions (input: unknown, omitKeys: readonly string[] = []): { options: ResolvedOptions, problems: string[] } {
  const copy = copyConfigData(input ?? {}, omitKeys)
  const problems = [...takeOutListsForSections(copy), ...storeTargetConflicts(copy)]
  const options: unknown = Value.Default(OptionsSchema, copy)
  problems.push(...describeErrors(OptionsSchema, options, ''))
  if (problems.length === 0) {
    problems.push(...findConflicts(options as ResolvedOptions))
  }
  return { options: options as ResolvedOptions, problems }
}

export function throwOnProblems (source: string, problems: readonly string[]): void {
  if (problems.length > 0) {
    throw new InvalidConfigError(source, problems.map((problem) => `  - ${problem}`).join('\n'))
  }
}

/**
 * A deep copy of plain data in which every key is an own property. Value.Clone
 * and plain assignment turn a `__proto__` key (YAML and JSON.parse make it an own
 * key) into the copy's prototype, whose keys would then read as options; here it
 * stays a key, and the schema calls it unknown.
 */
function copyConfigData (value: unknown, omitKeys: readonly string[] = []): unknown {
  if (Array.isArray(value)) return value.map((item) => copyConfigData(item))
  if (typeof value !== 'object' || value === null) return value
  const copy: Record<string, unknown> = {}
  for (const key of Object.keys(value)) {
    if (omitKeys.includes(key)) continue
    Object.defineProperty(copy, key, { value: copyConfigData((value as Record<string, unknown>)[key]), enumerable: true, writable: true, configurable: true })
  }
  return copy
}

/**
 * Value.Default fills an array given for an object section as if it were one.
 * Such a section is reported, and taken out so that nothing else is said of it.
 */
function * takeOutListsForSections (options: unknown): Generator<string> {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) return
  const record = options as Record<string, unknown>
  for (const [key, schema] of Object.entries(OptionsSchema.properties)) {
    if (schema.type === 'object' && Array.isArray(record[key])) {
      delete record[key]
      yield `${key}: expected object`
    }
  }
}

export function * describeErrors (schema: TSchema, value: unknown, prefix: string): Generator<string> {
  const reported = new Set<string>()
  for (const error of Value.Errors(schema, value)) {
    const path = prefix + error.path
    // A missing key also fails its type check: report it once, as missing.
    if (reported.has(path)) continue
    reported.add(path)
    if (error.type === ValueErrorType.Union) {
      yield * (error.schema === RouteSchema ? describeRouteErrors(path, error.value) : describeChoiceErrors(path, error.schema, error.value))
    } else {
      yield `${formatPath(path)}: ${describe(error)}`
    }
  }
}

// A route is a union chosen by `kind`; report against the chosen variant, not "matches no variant".
function * describeRouteErrors (path: string, route: unknown): Generator<string> {
  const kind = typeof route === 'object' && route !== null ? (route as { kind?: unknown }).kind : undefined
  const variant = ROUTE_SCHEMAS.find((schema) => schema.properties.kind.const === kind)
  if (variant === undefined) {
    yield `${formatPath(`${path}/kind`)}: must be one of ${ROUTE_KINDS.join(', ')}`
    return
  }
  yield * describeErrors(variant, route, path)
}

/**
 * Any other union is a few choices, such as `"auto"` or a list. A value of one
 * choice's kind is told what is wrong inside it (the bad entry of a list); any
 * other value, which choices there are.
 */
function * describeChoiceErrors (path: string, union: TSchema, value: unknown): Generator<string> {
  const choices = union.anyOf as TSchema[]
  const sameKind = choices.find((choice) => choice.const === undefined && choice.type === jsonKind(value))
  if (sameKind !== undefined) {
    yield * describeErrors(sameKind, value, path)
    return
  }
  const names = choices.flatMap(nameChoice)
  yield `${formatPath(path)}: must be ${names.slice(0, -1).join(', ')} or ${String(names.at(-1))}`
}

function jsonKind (value: unknown): string {
  return Array.isArray(value) ? 'array' : typeof value
}

/** The schema's choices are literals, booleans and lists. */
function nameChoice (choice: TSchema): string[] {
  if (choice.const !== undefined) return [JSON.stringify(choice.const)]
  return choice.type === 'boolean' ? ['true', 'false'] : ['a list']
}

function describe (error: ValueError): string {
  switch (error.type) {
    case ValueErrorType.ObjectAdditionalProperties:
      return 'unknown key'
    case ValueErrorType.ObjectRequiredProperty:
      return 'is required'
    case ValueErrorType.StringFormat:
      return `must be ${String(FORMAT_NAMES[String(error.schema.format)])}`
    case ValueErrorType.StringPattern:
      // A path pattern, required (^/...) or optional (^(/...)?): said in words.
      return /^\^\(?\//.test(String(error.schema.pattern)) ? 'must be a path starting with "/" (no query, fragment or spaces)' : `must match ${String(error.schema.pattern)}`
    case ValueErrorType.Integer:
      return 'must be an integer'
    case ValueErrorType.NumberMinimum:
    case ValueErrorType.IntegerMinimum:
      return `must be >= ${String(error.schema.minimum)}`
    case ValueErrorType.NumberMaximum:
      return `must be <= ${String(error.schema.maximum)}`
    case ValueErrorType.Kind:
      // A kind of the schema's own, which names what it accepts.
      return `must be ${String(error.schema.mustBe)}`
    case ValueErrorType.ArrayMinItems:
      return `must have at least ${String(error.schema.minItems)} item(s)`
    default:
      return error.message.charAt(0).toLowerCase() + error.message.slice(1)
  }
}

/** `/routes/0/upstream` becomes `routes[0].upstream`. */
function formatPath (pointer: string): string {
  if (pointer === '') return '(root)'
  return pointer
    .split('/')
    .slice(1)
    .map((segment) => segment.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce((path, segment) => /^\d+$/.test(segment) ? `${path}[${segment}]` : path === '' ? segment : `${path}.${segment}`, '')
}

/**
 * store.url has a default, so whether it was given is only known before defaults are
 * applied. One store is either one Redis or a Redis Cluster: never both.
 */
function * storeTargetConflicts (input: unknown): Generator<string> {
  const store = typeof input === 'object' && input !== null ? (input as { store?: unknown }).store : undefined
  if (typeof store !== 'object' || store === null) return
  const { url, cluster, durable } = store as { url?: unknown, cluster?: unknown, durable?: unknown }
  const isCluster = Array.isArray(cluster) && cluster.length > 0
  if (!isCluster) return
  if (url !== undefined) yield 'store.cluster: cannot be used with store.url; give the cluster\'s node URLs in store.cluster only'
  // WAIT has no key: a cluster client sends it to any node, not to the one that took the write.
  if (durable === true) yield 'store.durable: not available with store.cluster'
}

function findConflicts (options: ResolvedOptions): string[] {
  const problems: string[] = []
  const owners = new Map<string, string>()
  const claim = (path: string, owner: string) => {
    const previous = owners.get(path)
    if (previous === undefined) {
      owners.set(path, owner)
    } else {
      problems.push(`${owner}: path ${path} is already used by ${previous}`)
    }
  }
  options.routes.forEach((route, index) => {
    claim(route.path, `routes[${index}].path`)
    if (route.kind === 'legacy-sse') claim(route.messagesPath, `routes[${index}].messagesPath`)
  })
  if (options.metrics.enabled) claim(options.metrics.path, 'metrics.path')
  if (options.probes.enabled) {
    claim(options.probes.livenessPath, 'probes.livenessPath')
    claim(options.probes.readinessPath, 'probes.readinessPath')
  }
  return problems
}
