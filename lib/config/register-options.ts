import { Kind, Type, TypeRegistry, type Static } from '@sinclair/typebox'
import type { FastifyBaseLogger, RegisterOptions as FastifyRegisterOptions } from 'fastify'
import type { Registry } from 'prom-client'
import type { McpSseResilienceOptions, ResolvedOptions } from './schema.js'
import { checkOptions, describeErrors, throwOnProblems } from './validate.js'

/** What the plugin needs of a prom-client registry; the copy of prom-client a host uses may differ from ours. */
export type MetricsRegistry = Pick<Registry, 'registerMetric' | 'getSingleMetric'>

const AnyFunction = Type.Function([], Type.Unknown())

// A class instance: its methods are on its prototype, where a TypeBox object schema does not look.
const METRICS_REGISTRY_KIND = 'McpSseMetricsRegistry'
TypeRegistry.Set(METRICS_REGISTRY_KIND, (_schema, value) => isMetricsRegistry(value))

export function isMetricsRegistry (value: unknown): value is MetricsRegistry {
  const candidate = value as Partial<Record<keyof MetricsRegistry, unknown>> | null | undefined
  return typeof candidate?.registerMetric === 'function' && typeof candidate.getSingleMetric === 'function'
}

/**
 * The keys register() takes besides the plugin's options. Fastify applies `prefix`,
 * `logLevel` and `logSerializers` itself only to encapsulated plugins, and this one is
 * not (fastify-plugin), so the plugin applies them. `metricsRegistry` is an object no
 * YAML file can hold: like the others it exists for register() only, and the config
 * file schema (OptionsSchema) keeps calling these keys unknown.
 */
export const RegisterOptionsSchema = Type.Object({
  prefix: Type.Optional(Type.String({
    pattern: '^(/[^?#\\s]*)?$',
    description: 'Put in front of every path the plugin serves: routes[].path, routes[].messagesPath (and the `endpoint` event that announces it), metrics.path and the probes\' paths. A route whose path is "/" is served at the prefix itself.'
  })),
  // The types are Fastify's; the schema checks what can be checked before Fastify sees them.
  logLevel: Type.Optional(Type.Unsafe<NonNullable<FastifyRegisterOptions['logLevel']>>(Type.String({
    minLength: 1,
    description: 'Log level of the requests on the plugin\'s routes; Fastify refuses a level its logger does not know.'
  }))),
  logSerializers: Type.Optional(Type.Unsafe<NonNullable<FastifyRegisterOptions['logSerializers']>>(Type.Record(Type.String(), AnyFunction, {
    description: 'Pino serializers for the request logs of the plugin\'s routes.'
  }))),
  metricsRegistry: Type.Optional(Type.Unsafe<MetricsRegistry>({
    [Kind]: METRICS_REGISTRY_KIND,
    type: 'object',
    mustBe: 'a prom-client Registry (an object with registerMetric and getSingleMetric methods)',
    description: 'A prom-client Registry that the host serves: the proxy\'s metrics are added to it, and the plugin serves no endpoint of its own. Without it, the registry of a fastify-metrics registered before the plugin is used.'
  }))
})

export type RegisterOptions = Static<typeof RegisterOptionsSchema>

/** The options register() takes: the plugin's own, and `metricsRegistry` (Fastify types the others). */
export type McpSseResiliencePluginOptions = McpSseResilienceOptions & Pick<RegisterOptions, 'metricsRegistry'>

const REGISTER_KEYS = Object.keys(RegisterOptionsSchema.properties)

export interface PluginSetup {
  /** The plugin's options, their paths under `prefix`. */
  readonly options: ResolvedOptions
  readonly register: Omit<RegisterOptions, 'prefix'>
}

/** Checks register() options: the plugin's own and Fastify's, every problem at once. */
export function resolvePluginOptions (input: unknown): PluginSetup {
  // Whatever the input, Object() gives something to look keys up in; checkOptions() judges the rest.
  const record = Object(input) as Record<string, unknown>
  const register = Object.fromEntries(REGISTER_KEYS.filter((key) => Object.hasOwn(record, key) && record[key] !== undefined).map((key) => [key, record[key]]))
  const problems = [...describeErrors(RegisterOptionsSchema, register, '')]
  const { options, problems: optionProblems } = checkOptions(input, REGISTER_KEYS)
  problems.push(...optionProblems)
  throwOnProblems('options', problems)
  const { prefix, ...rest } = register as RegisterOptions
  return { options: underPrefix(options, prefix ?? ''), register: rest }
}

/**
 * A `logLevel` the host's logger does not have. Fastify would refuse it only while one of
 * the plugin's routes is being added, deep inside its registration; here it is one
 * problem like the others.
 */
export function checkLogLevel (logger: FastifyBaseLogger, logLevel: string | undefined): void {
  const levels = (logger as { levels?: { values?: Record<string, number> } }).levels?.values
  if (logLevel === undefined || logLevel === '' || levels === undefined || logLevel in levels) return
  throwOnProblems('options', [`logLevel: must be a level of the logger (${Object.keys(levels).join(', ')})`])
}

function underPrefix (options: ResolvedOptions, prefix: string): ResolvedOptions {
  const base = prefix.replace(/\/+$/, '')
  if (base === '') return options
  const join = (path: string): string => path === '/' ? base : `${base}${path}`
  return {
    ...options,
    routes: options.routes.map((route) => route.kind === 'legacy-sse'
      ? { ...route, path: join(route.path), messagesPath: join(route.messagesPath) }
      : { ...route, path: join(route.path) }),
    metrics: { ...options.metrics, path: join(options.metrics.path) },
    probes: { ...options.probes, livenessPath: join(options.probes.livenessPath), readinessPath: join(options.probes.readinessPath) }
  }
}
