import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  acceptedContent,
  CLIENT_CAPABILITIES_META_KEY,
  completable,
  createRequestStateCodec,
  fromJsonSchema,
  inputRequired,
  inputResponse,
  McpServer,
  ResourceTemplate,
  type CallToolResult,
  type InputRequests,
  type ServerContext,
  type ServerNotifier
} from '@modelcontextprotocol/server'
import { z } from 'zod'
import { onePixelPngBase64, silentWavBase64 } from './media.js'

/**
 * The MCP features the conformance suite's 2026-07-28 server scenarios call (names and results
 * as the scenarios' descriptions in @modelcontextprotocol/conformance set them), built with the
 * SDK v2 for `createMcpHandler`: one McpServer per HTTP request, from `createModernServer`.
 *
 * What lives longer than one request is in `ModernEverythingState`: the requestState key (a
 * flow's rounds land on different instances), the tools and prompts that
 * `test_trigger_*_change` add (so a later tools/list shows the change), and the notifier of
 * the handler's subscriptions/listen streams.
 */

export interface ModernEverythingState {
  /** Signs and verifies every requestState this server mints (SEP-2322: integrity-protected). */
  readonly codec: ReturnType<typeof createRequestStateCodec<RoundState>>
  /** Set once the handler exists: what `test_trigger_*_change` publishes on. */
  notify?: ServerNotifier
  /** How many times each list was changed; each change adds one entry, up to MAX_ADDED. */
  addedTools: number
  addedPrompts: number
}

interface RoundState {
  readonly tool: string
  readonly round: number
  readonly name?: string
}

const PNG = onePixelPngBase64(220, 40, 40)
const WAV = silentWavBase64(8000, 8)
const STEP_DELAY_MS = 50
const COMPLETIONS = ['paris', 'park', 'party', 'test', 'testing', 'tester']
/** The trigger tools add at most this many entries, so a list never grows without bound. */
const MAX_ADDED = 8
const STATE_TTL_SECONDS = 300

const text = (value: string): CallToolResult => ({ content: [{ type: 'text', text: value }] })

export function createModernEverythingState (): ModernEverythingState {
  return { codec: createRequestStateCodec<RoundState>({ key: randomBytes(32), ttlSeconds: STATE_TTL_SECONDS }), addedTools: 0, addedPrompts: 0 }
}

export function createModernServer (state: ModernEverythingState): McpServer {
  const server = new McpServer(
    { name: 'fastify-mcp-sse-resilience-conformance-upstream-2026', version: '1.0.0' },
    {
      capabilities: {
        logging: {},
        completions: {},
        tools: { listChanged: true },
        prompts: { listChanged: true },
        resources: { subscribe: true, listChanged: true }
      },
      requestState: { verify: async (wire, ctx) => await state.codec.verify(wire, ctx) },
      // SEP-2549: every cacheable result says how long it may be kept; the trigger tools change the tool and prompt lists.
      cacheHints: {
        'tools/list': { ttlMs: 0, cacheScope: 'public' },
        'prompts/list': { ttlMs: 0, cacheScope: 'public' },
        'resources/list': { ttlMs: 60_000, cacheScope: 'public' },
        'resources/templates/list': { ttlMs: 60_000, cacheScope: 'public' },
        'resources/read': { ttlMs: 60_000, cacheScope: 'public' }
      }
    }
  )
  registerContentTools(server)
  registerStatelessDiagnostics(server, state)
  registerInputRequiredTools(server, state)
  registerResources(server)
  registerPrompts(server, state)
  return server
}

function registerContentTools (server: McpServer): void {
  server.registerTool('test_simple_text', { description: 'Answers one text block.' },
    async () => text('This is a simple text response for testing.'))
  server.registerTool('test_image_content', { description: 'Answers one PNG image block.' },
    async () => ({ content: [{ type: 'image', data: PNG, mimeType: 'image/png' }] }))
  server.registerTool('test_audio_content', { description: 'Answers one WAV audio block.' },
    async () => ({ content: [{ type: 'audio', data: WAV, mimeType: 'audio/wav' }] }))
  server.registerTool('test_embedded_resource', { description: 'Answers one embedded text resource.' },
    async () => ({ content: [{ type: 'resource', resource: { uri: 'test://embedded-resource', mimeType: 'text/plain', text: 'This is an embedded resource content.' } }] }))
  server.registerTool('test_multiple_content_types', { description: 'Answers a text, an image and an embedded JSON resource.' },
    async () => ({
      content: [
        { type: 'text', text: 'Multiple content types test:' },
        { type: 'image', data: PNG, mimeType: 'image/png' },
        { type: 'resource', resource: { uri: 'test://mixed-content-resource', mimeType: 'application/json', text: JSON.stringify({ test: 'data', value: 123 }) } }
      ]
    }))
  server.registerTool('test_error_handling', { description: 'Always fails: the result has isError set.' }, async () => {
    throw new Error('This tool intentionally returns an error for testing')
  })
  server.registerTool('test_tool_with_progress', { description: 'Reports progress 0, 50 and 100 of 100, 50 ms apart, when the request has a progress token.' },
    async (ctx) => {
      const progressToken = ctx.mcpReq._meta?.progressToken
      for (const progress of [0, 50, 100]) {
        if (progress > 0) await sleep(STEP_DELAY_MS)
        if (progressToken !== undefined) {
          await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken, progress, total: 100, message: `${progress}%` } })
        }
      }
      return text(`Progress reported for token ${String(progressToken)}`)
    })
}

/** The diagnostic tools server-stateless (SEP-2575) looks for by name. */
function registerStatelessDiagnostics (server: McpServer, state: ModernEverythingState): void {
  // Asks for a sampling: the SDK refuses an input request the client has not declared with -32021.
  server.registerTool('test_missing_capability', { description: 'Needs the client\'s sampling capability: without it, -32021.' },
    async (ctx) => {
      const answer = inputResponse(ctx.mcpReq.inputResponses, 'capital_question')
      return answer.kind === 'sampling' ? text(`LLM response: ${samplingText(answer.result)}`) : inputRequired({ inputRequests: { capital_question: capitalQuestion() } })
    })
  // Sends notifications before its result, so the answer is an SSE stream, never a request on it.
  server.registerTool('test_streaming_elicitation', { description: 'Streams two progress notifications, then asks for a name (input_required).' },
    async (ctx) => {
      await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken: 'stream', progress: 1, total: 2 } })
      await sleep(STEP_DELAY_MS)
      await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken: 'stream', progress: 2, total: 2 } })
      return nameRequest()
    })
  // ctx.mcpReq.log is a no-op unless the request asked for a level (_meta logLevel): the check reads that.
  server.registerTool('test_logging_tool', { description: 'Logs three info messages, 50 ms apart, if the request asked for logs.' },
    async (ctx) => {
      for (const [index, step] of ['Tool execution started', 'Tool processing data', 'Tool execution completed'].entries()) {
        if (index > 0) await sleep(STEP_DELAY_MS)
        await ctx.mcpReq.log('info', step, 'conformance-upstream')
      }
      return text('Tool with logging executed successfully')
    })
  server.registerTool('test_trigger_tool_change', { description: 'Adds a tool and announces tools/list_changed on listen streams.' },
    async () => {
      if (state.addedTools < MAX_ADDED) state.addedTools++
      state.notify?.toolsChanged()
      return text(`${state.addedTools} tools added`)
    })
  server.registerTool('test_trigger_prompt_change', { description: 'Adds a prompt and announces prompts/list_changed on listen streams.' },
    async () => {
      if (state.addedPrompts < MAX_ADDED) state.addedPrompts++
      state.notify?.promptsChanged()
      return text(`${state.addedPrompts} prompts added`)
    })
  // SEP-2243: the client copies `region` into an Mcp-Param-Region header, which the SDK checks against the body.
  server.registerTool('test_custom_header', {
    description: 'Echoes its region, which also travels in the Mcp-Param-Region header.',
    inputSchema: fromJsonSchema<{ region: string }>({ type: 'object', properties: { region: REGION }, required: ['region'] })
  }, async ({ region }) => text(`region ${region}`))
  // SEP-1613, SEP-2106: the whole 2020-12 vocabulary survives tools/list.
  server.registerTool('json_schema_2020_12_tool', {
    description: 'Tool with JSON Schema 2020-12 features',
    inputSchema: fromJsonSchema(JSON_SCHEMA_2020_12)
  }, async () => text('2020-12 arguments accepted'))
  for (let index = 1; index <= state.addedTools; index++) {
    server.registerTool(`test_added_tool_${index}`, { description: 'Added by test_trigger_tool_change.' }, async () => text(`added tool ${index}`))
  }
}

/** SEP-2322: tools that answer input_required, then complete when the client retries with the answers. */
function registerInputRequiredTools (server: McpServer, state: ModernEverythingState): void {
  server.registerTool('test_input_required_result_elicitation', { description: 'Asks for a name, then greets it.' },
    async (ctx) => {
      const answer = acceptedContent(ctx.mcpReq.inputResponses, 'user_name', NAME)
      return answer === undefined ? nameRequest() : text(`Hello, ${answer.name}!`)
    })
  server.registerTool('test_input_required_result_sampling', { description: 'Asks the client to sample an LLM, then quotes the answer.' },
    async (ctx) => {
      const answer = inputResponse(ctx.mcpReq.inputResponses, 'capital_question')
      if (answer.kind !== 'sampling') return inputRequired({ inputRequests: { capital_question: capitalQuestion() } })
      return text(`LLM response: ${samplingText(answer.result)}`)
    })
  server.registerTool('test_input_required_result_list_roots', { description: 'Asks for the client\'s roots, then lists them.' },
    async (ctx) => {
      const answer = inputResponse(ctx.mcpReq.inputResponses, 'client_roots')
      if (answer.kind !== 'roots') return inputRequired({ inputRequests: { client_roots: inputRequired.listRoots() } })
      return text(`Roots: ${answer.roots.map((root) => root.uri).join(', ')}`)
    })
  server.registerTool('test_input_required_result_request_state', { description: 'Asks for a confirmation with a signed requestState, then checks the state.' },
    async (ctx) => {
      const round = ctx.mcpReq.requestState<RoundState>()
      const confirmed = acceptedContent(ctx.mcpReq.inputResponses, 'confirm', CONFIRM)
      if (round?.tool === 'request_state' && confirmed !== undefined) return text(`state-ok: confirmed=${String(confirmed.ok)}`)
      return inputRequired({
        inputRequests: { confirm: inputRequired.elicit({ message: 'Please confirm', requestedSchema: CONFIRM }) },
        requestState: await state.codec.mint({ tool: 'request_state', round: 1 })
      })
    })
  server.registerTool('test_input_required_result_multiple_inputs', { description: 'Asks for a name, a sampled greeting and the roots at once.' },
    async (ctx) => {
      const responses = ctx.mcpReq.inputResponses
      const name = acceptedContent(responses, 'user_name', NAME)
      const greeting = inputResponse(responses, 'greeting')
      const roots = inputResponse(responses, 'client_roots')
      if (ctx.mcpReq.requestState<RoundState>()?.tool === 'multiple_inputs' && name !== undefined && greeting.kind === 'sampling' && roots.kind === 'roots') {
        return text(`${samplingText(greeting.result)} ${name.name} (${roots.roots.length} roots)`)
      }
      return inputRequired({
        inputRequests: {
          user_name: nameElicitation('What is your name?'),
          greeting: inputRequired.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: 'Generate a greeting' } }], maxTokens: 50 }),
          client_roots: inputRequired.listRoots()
        },
        requestState: await state.codec.mint({ tool: 'multiple_inputs', round: 1 })
      })
    })
  server.registerTool('test_input_required_result_multi_round', { description: 'Asks for a name, then a colour, then answers with both.' },
    async (ctx) => {
      const round = ctx.mcpReq.requestState<RoundState>()
      const responses = ctx.mcpReq.inputResponses
      if (round?.tool === 'multi_round' && round.round === 2) {
        const colour = acceptedContent(responses, 'step2', COLOUR)
        if (colour !== undefined) return text(`${round.name ?? ''} likes ${colour.color}`)
      }
      const name = round?.tool === 'multi_round' && round.round === 1 ? acceptedContent(responses, 'step1', NAME) : undefined
      if (name !== undefined) {
        return inputRequired({
          inputRequests: { step2: inputRequired.elicit({ message: 'Step 2: What is your favorite color?', requestedSchema: COLOUR }) },
          requestState: await state.codec.mint({ tool: 'multi_round', round: 2, name: name.name })
        })
      }
      return inputRequired({
        inputRequests: { step1: nameElicitation('Step 1: What is your name?') },
        requestState: await state.codec.mint({ tool: 'multi_round', round: 1 })
      })
    })
  server.registerTool('test_input_required_result_tampered_state', { description: 'Asks for a confirmation with a signed requestState: a changed state is refused (-32602).' },
    async (ctx) => {
      const confirmed = acceptedContent(ctx.mcpReq.inputResponses, 'confirm', CONFIRM)
      if (ctx.mcpReq.requestState<RoundState>()?.tool === 'tampered_state' && confirmed !== undefined) return text('state verified')
      return inputRequired({
        inputRequests: { confirm: inputRequired.elicit({ message: 'Please confirm', requestedSchema: CONFIRM }) },
        requestState: await state.codec.mint({ tool: 'tampered_state', round: 1 })
      })
    })
  server.registerTool('test_input_required_result_capabilities', { description: 'Asks only for what the client declared it can give (sampling, elicitation).' },
    async (ctx) => {
      const declared = clientCapabilities(ctx)
      const inputRequests: InputRequests = {}
      if (declared.sampling !== undefined) inputRequests.capital_question = capitalQuestion()
      if (declared.elicitation !== undefined) inputRequests.user_name = nameElicitation('What is your name?')
      // Neither declared: the SDK answers this sampling request with -32021.
      if (Object.keys(inputRequests).length === 0) inputRequests.capital_question = capitalQuestion()
      const answered = Object.keys(inputRequests).every((key) => inputResponse(ctx.mcpReq.inputResponses, key).kind !== 'missing')
      return answered ? text('Got every answer the client could give') : inputRequired({ inputRequests })
    })
}

// Held apart: the SDK's JSON Schema type has no x-mcp-header key, which an inline literal would trip on.
const REGION = { type: 'string', 'x-mcp-header': 'Region' } as const

const JSON_SCHEMA_2020_12 = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  $defs: {
    address: { $anchor: 'addressDef', type: 'object', properties: { street: { type: 'string' }, city: { type: 'string' } } }
  },
  properties: {
    name: { type: 'string' },
    address: { $ref: '#/$defs/address' },
    contactMethod: { type: 'string', enum: ['phone', 'email'] },
    phone: { type: 'string' },
    email: { type: 'string' }
  },
  allOf: [{ anyOf: [{ required: ['phone'] }, { required: ['email'] }] }],
  if: { properties: { contactMethod: { const: 'phone' } }, required: ['contactMethod'] },
  then: { required: ['phone'] },
  else: { required: ['email'] },
  additionalProperties: false
}

const NAME = z.object({ name: z.string() })
const CONFIRM = z.object({ ok: z.boolean() })
const COLOUR = z.object({ color: z.string() })

function nameElicitation (message: string): ReturnType<typeof inputRequired.elicit> {
  return inputRequired.elicit({ message, requestedSchema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] } })
}

function nameRequest (): ReturnType<typeof inputRequired> {
  return inputRequired({ inputRequests: { user_name: nameElicitation('What is your name?') } })
}

function capitalQuestion (): ReturnType<typeof inputRequired.createMessage> {
  return inputRequired.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: 'What is the capital of France?' } }], maxTokens: 100 })
}

function samplingText (result: { content: unknown }): string {
  const blocks = Array.isArray(result.content) ? result.content as unknown[] : [result.content]
  return blocks.map((block) => {
    const { type, text: value } = block as { type?: unknown, text?: unknown }
    return type === 'text' && typeof value === 'string' ? value : `(${String(type)})`
  }).join(' ')
}

function clientCapabilities (ctx: ServerContext): Record<string, unknown> {
  // The SDK types the envelope as {} (2.4); its keys are the spec's reserved _meta names.
  const envelope = ctx.mcpReq.envelope as Record<string, unknown> | undefined
  const declared = envelope?.[CLIENT_CAPABILITIES_META_KEY]
  return typeof declared === 'object' && declared !== null ? declared as Record<string, unknown> : {}
}

function registerResources (server: McpServer): void {
  const fixed = (uri: string, mimeType: string, description: string, body: { text: string } | { blob: string }): void => {
    server.registerResource(uri.slice('test://'.length), uri, { description, mimeType },
      async () => ({ contents: [{ uri, mimeType, ...body }] }))
  }
  fixed('test://static-text', 'text/plain', 'A fixed text', { text: 'This is the content of the static text resource.' })
  fixed('test://static-binary', 'image/png', 'A fixed 1x1 PNG', { blob: PNG })
  fixed('test://watched-resource', 'text/plain', 'A text clients may subscribe to', { text: 'Watched resource content' })
  server.registerResource('template', new ResourceTemplate('test://template/{id}/data', { list: undefined }),
    { description: 'JSON data for any id', mimeType: 'application/json' },
    async (uri, { id }) => ({
      contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${String(id)}` }) }]
    }))
}

function registerPrompts (server: McpServer, state: ModernEverythingState): void {
  server.registerPrompt('test_simple_prompt', { description: 'A prompt without arguments' },
    async () => ({ messages: [{ role: 'user', content: { type: 'text', text: 'This is a simple prompt for testing.' } }] }))
  server.registerPrompt('test_prompt_with_arguments', {
    description: 'A prompt that quotes its two arguments',
    argsSchema: z.object({
      arg1: completable(z.string().describe('First argument'), (value) => COMPLETIONS.filter((word) => word.startsWith(value.toLowerCase()))),
      arg2: z.string().describe('Second argument')
    })
  }, async ({ arg1, arg2 }) => ({ messages: [{ role: 'user', content: { type: 'text', text: `Prompt with arguments: arg1='${arg1}', arg2='${arg2}'` } }] }))
  server.registerPrompt('test_prompt_with_embedded_resource', {
    description: 'A prompt that embeds the resource it is given',
    argsSchema: z.object({ resourceUri: z.string().describe('The URI to embed') })
  }, async ({ resourceUri }) => ({
    messages: [
      { role: 'user', content: { type: 'resource', resource: { uri: resourceUri, mimeType: 'text/plain', text: 'Embedded resource content for testing.' } } },
      { role: 'user', content: { type: 'text', text: 'Please process the embedded resource above.' } }
    ]
  }))
  server.registerPrompt('test_prompt_with_image', { description: 'A prompt with an image' }, async () => ({
    messages: [
      { role: 'user', content: { type: 'image', data: PNG, mimeType: 'image/png' } },
      { role: 'user', content: { type: 'text', text: 'Please analyze the image above.' } }
    ]
  }))
  // SEP-2322 on a request other than tools/call.
  server.registerPrompt('test_input_required_result_prompt', { description: 'Asks what context to use, then returns a prompt with it' },
    async (ctx) => {
      const answer = acceptedContent(ctx.mcpReq.inputResponses, 'user_context', CONTEXT)
      if (answer === undefined) {
        return inputRequired({
          inputRequests: {
            user_context: inputRequired.elicit({
              message: 'What context should the prompt use?',
              requestedSchema: { type: 'object', properties: { context: { type: 'string' } }, required: ['context'] }
            })
          }
        })
      }
      return { messages: [{ role: 'user', content: { type: 'text', text: `Use this context: ${answer.context}` } }] }
    })
  for (let index = 1; index <= state.addedPrompts; index++) {
    server.registerPrompt(`test_added_prompt_${index}`, { description: 'Added by test_trigger_prompt_change.' },
      async () => ({ messages: [{ role: 'user', content: { type: 'text', text: `added prompt ${index}` } }] }))
  }
}

const CONTEXT = z.object({ context: z.string() })
