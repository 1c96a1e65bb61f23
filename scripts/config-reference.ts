import { OptionalKind, type TSchema } from '@sinclair/typebox'
import { OptionsSchema, ROUTE_SCHEMAS } from '../lib/config/schema.js'
import { RegisterOptionsSchema } from '../lib/config/register-options.js'

/**
 * docs/configuration.md, generated from the TypeBox schema so that the two
 * cannot drift apart (test/config-docs.test.ts compares them).
 */
export function renderConfigurationReference (): string {
  const lines = [
    '# Configuration reference',
    '',
    '<!-- Generated from lib/config/schema.ts by `npm run docs:config`. Do not edit by hand. -->',
    '',
    'The same schema validates the options passed to `fastify.register(mcpSseResilience, options)` and the',
    'YAML file of the standalone server (`MCP_SSE_RESILIENCE_CONFIG`, or `config/default.yaml`).',
    'Unknown keys are errors. An invalid configuration stops start-up with one message that lists every',
    'problem with its path, for example `routes[0].upstream: must be an http(s) URL`.',
    '',
    '## Routes',
    '',
    String(OptionsSchema.properties.routes.description),
    ''
  ]
  for (const route of ROUTE_SCHEMAS) {
    lines.push(`### kind: ${String(route.properties.kind.const)}`, '', String(route.properties.kind.description), '')
    lines.push(...table(route.properties, 'routes[]', ['kind']))
    lines.push('')
  }
  for (const [section, schema] of Object.entries(OptionsSchema.properties)) {
    if (section === 'routes') continue
    lines.push(`## ${section}`, '')
    lines.push(...table((schema as TSchema).properties as Record<string, TSchema>, section, []))
    lines.push('')
  }
  lines.push(
    '## register() only',
    '',
    'Keys that `fastify.register(mcpSseResilience, options)` takes beside the ones above. A YAML file cannot',
    'hold them: there they are unknown keys.',
    '',
    ...table(RegisterOptionsSchema.properties, '', []),
    ''
  )
  return lines.join('\n')
}

function table (properties: Record<string, TSchema>, prefix: string, skip: string[]): string[] {
  const rows = ['| key | type | default | meaning |', '|---|---|---|---|']
  for (const [key, schema] of Object.entries(properties)) {
    if (skip.includes(key)) continue
    rows.push(`| \`${prefix === '' ? key : `${prefix}.${key}`}\` | ${typeOf(schema)} | ${defaultOf(schema)} | ${String(schema.description ?? '')} |`)
  }
  return rows
}

function typeOf (schema: TSchema): string {
  if (Array.isArray(schema.anyOf)) return (schema.anyOf as TSchema[]).map((choice) => choice.const === undefined ? typeOf(choice) : `\`${JSON.stringify(choice.const)}\``).join(' or ')
  const bounds = [
    schema.minimum === undefined ? '' : `>= ${String(schema.minimum)}`,
    schema.format === undefined ? '' : 'http(s) URL',
    patternOf(schema)
  ].filter((part) => part !== '')
  return bounds.length === 0 ? String(schema.type) : `${String(schema.type)} (${bounds.join(', ')})`
}

function patternOf (schema: TSchema): string {
  if (schema.pattern === undefined) return ''
  return /^\^\(?\//.test(String(schema.pattern)) ? 'path' : `matching \`${String(schema.pattern)}\``
}

function defaultOf (schema: TSchema): string {
  if (schema.default !== undefined) return `\`${JSON.stringify(schema.default)}\``
  return schema[OptionalKind] === 'Optional' ? 'optional' : 'required'
}
