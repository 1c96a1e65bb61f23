import { setTimeout as sleep } from 'node:timers/promises'
import { completable } from '@modelcontextprotocol/sdk/server/completable.js'
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js'
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js'
import {
  CreateMessageResultSchema,
  ElicitResultSchema,
  ErrorCode,
  LoggingLevelSchema,
  McpError,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  type CallToolResult,
  type ElicitRequest,
  type LoggingLevel,
  type ServerNotification,
  type ServerRequest
} from '@modelcontextprotocol/sdk/types.js'
import { z } from 'zod'
import { onePixelPngBase64, silentWavBase64 } from './media.js'

/**
 * The MCP features the conformance suite's server scenarios call (their names and
 * results are set by the scenarios' descriptions in @modelcontextprotocol/conformance),
 * on one McpServer per session.
 */

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>
type RequestedSchema = ElicitRequest['params'] extends infer P ? P extends { requestedSchema: infer S } ? S : never : never

export interface EverythingServerOptions {
  /** How long test_reconnection waits after closing its stream before it answers. */
  reconnectionAnswerDelayMs: number
  /** Resource subscriptions one session may hold. */
  maxSubscriptions: number
}

const PNG = onePixelPngBase64(220, 40, 40)
const WAV = silentWavBase64(8000, 8)
const STEP_DELAY_MS = 50
const COMPLETIONS = ['paris', 'park', 'party', 'test', 'testing', 'tester']
const LOG_SEVERITY = LoggingLevelSchema.options

const text = (value: string): CallToolResult => ({ content: [{ type: 'text', text: value }] })
const failure = (value: string): CallToolResult => ({ isError: true, content: [{ type: 'text', text: value }] })

export function createEverythingServer (options: EverythingServerOptions): McpServer {
  const server = new McpServer(
    { name: 'fastify-mcp-sse-resilience-conformance-upstream', version: '1.0.0' },
    { capabilities: { logging: {}, resources: { subscribe: true } } }
  )
  registerTools(server, options)
  registerResources(server, options)
  registerPrompts(server)
  return server
}

function registerTools (server: McpServer, options: EverythingServerOptions): void {
  // logging/setLevel: messages below the level the client chose are not sent (spec: server/utilities/logging).
  let minimumLevel: LoggingLevel = 'debug'
  server.server.setRequestHandler(SetLevelRequestSchema, async (request) => {
    minimumLevel = request.params.level
    return {}
  })
  const log = async (extra: Extra, level: LoggingLevel, data: string): Promise<void> => {
    if (LOG_SEVERITY.indexOf(level) < LOG_SEVERITY.indexOf(minimumLevel)) return
    await extra.sendNotification({ method: 'notifications/message', params: { level, logger: 'conformance-upstream', data } })
  }

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

  server.registerTool('test_tool_with_logging', { description: 'Sends three info log messages, 50 ms apart, on its own stream.', inputSchema: {} },
    async (_args, extra) => {
      const steps = ['Tool execution started', 'Tool processing data', 'Tool execution completed']
      for (const [index, step] of steps.entries()) {
        if (index > 0) await sleep(STEP_DELAY_MS)
        await log(extra, 'info', step)
      }
      return text('Tool with logging executed successfully')
    })

  server.registerTool('test_tool_with_progress', { description: 'Reports progress 0, 50 and 100 of 100, 50 ms apart, when the request has a progress token.', inputSchema: {} },
    async (_args, extra) => {
      const progressToken = extra._meta?.progressToken
      for (const progress of [0, 50, 100]) {
        if (progress > 0) await sleep(STEP_DELAY_MS)
        if (progressToken !== undefined) {
          await extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress, total: 100, message: `${progress}%` } })
        }
      }
      return text(`Progress reported for token ${String(progressToken)}`)
    })

  server.registerTool('test_sampling', { description: 'Asks the client to sample an LLM with the prompt.', inputSchema: { prompt: z.string().describe('What to ask the LLM') } },
    async ({ prompt }, extra) => {
      if (server.server.getClientCapabilities()?.sampling === undefined) return failure('The client does not support sampling')
      const answer = await extra.sendRequest({
        method: 'sampling/createMessage',
        params: { messages: [{ role: 'user', content: { type: 'text', text: prompt } }], maxTokens: 100 }
      }, CreateMessageResultSchema)
      return text(`LLM response: ${answer.content.type === 'text' ? answer.content.text : `(${answer.content.type})`}`)
    })

  const elicit = async (extra: Extra, message: string, requestedSchema: RequestedSchema): Promise<CallToolResult> => {
    if (server.server.getClientCapabilities()?.elicitation === undefined) return failure('The client does not support elicitation')
    const answer = await extra.sendRequest({ method: 'elicitation/create', params: { message, requestedSchema } }, ElicitResultSchema)
    return text(`Elicitation completed: action=${answer.action}, content=${JSON.stringify(answer.content ?? {})}`)
  }
  server.registerTool('test_elicitation', { description: 'Asks the user for a name and an email address.', inputSchema: { message: z.string().describe('What to tell the user') } },
    async ({ message }, extra) => await elicit(extra, message, {
      type: 'object',
      properties: {
        username: { type: 'string', description: 'Your user name' },
        email: { type: 'string', description: 'Your email address' }
      },
      required: ['username', 'email']
    }))
  server.registerTool('test_elicitation_sep1034_defaults', { description: 'Asks the user for one field of each primitive type, each with a default (SEP-1034).', inputSchema: {} },
    async (_args, extra) => await elicit(extra, 'Check these values', {
      type: 'object',
      properties: {
        name: { type: 'string', description: 'Name', default: 'John Doe' },
        age: { type: 'integer', description: 'Age', default: 30 },
        score: { type: 'number', description: 'Score', default: 95.5 },
        status: { type: 'string', description: 'Status', enum: ['active', 'inactive', 'pending'], default: 'active' },
        verified: { type: 'boolean', description: 'Verified', default: true }
      }
    }))
  server.registerTool('test_elicitation_sep1330_enums', { description: 'Asks the user to choose, in each of the five enum forms (SEP-1330).', inputSchema: {} },
    async (_args, extra) => await elicit(extra, 'Pick your options', {
      type: 'object',
      properties: {
        untitledSingle: { type: 'string', description: 'One of three', enum: ['option1', 'option2', 'option3'] },
        titledSingle: {
          type: 'string',
          description: 'One of three, with titles',
          oneOf: [{ const: 'value1', title: 'Value one' }, { const: 'value2', title: 'Value two' }, { const: 'value3', title: 'Value three' }]
        },
        legacyEnum: { type: 'string', description: 'One of three, titled the old way', enum: ['opt1', 'opt2', 'opt3'], enumNames: ['Opt one', 'Opt two', 'Opt three'] },
        untitledMulti: { type: 'array', description: 'Any of three', items: { type: 'string', enum: ['option1', 'option2', 'option3'] } },
        titledMulti: {
          type: 'array',
          description: 'Any of three, with titles',
          items: { anyOf: [{ const: 'value1', title: 'Choice one' }, { const: 'value2', title: 'Choice two' }, { const: 'value3', title: 'Choice three' }] }
        }
      }
    }))

  // SEP-1699: the server may end a POST stream mid-call; the client resumes with a GET and Last-Event-ID.
  server.registerTool('test_reconnection', { description: 'Ends its own SSE stream, then answers: the client gets the answer by resuming.', inputSchema: {} },
    async (_args, extra) => {
      extra.closeSSEStream?.()
      await sleep(options.reconnectionAnswerDelayMs)
      return text('Answered after the stream was closed')
    })
}

function registerResources (server: McpServer, options: EverythingServerOptions): void {
  const fixed = (uri: string, mimeType: string, description: string, body: { text: string } | { blob: string }) => {
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

  const subscriptions = new Set<string>()
  server.server.setRequestHandler(SubscribeRequestSchema, async (request) => {
    if (!subscriptions.has(request.params.uri) && subscriptions.size >= options.maxSubscriptions) {
      throw new McpError(ErrorCode.InvalidParams, `At most ${options.maxSubscriptions} subscriptions per session`)
    }
    subscriptions.add(request.params.uri)
    return {}
  })
  server.server.setRequestHandler(UnsubscribeRequestSchema, async (request) => {
    subscriptions.delete(request.params.uri)
    return {}
  })
}

function registerPrompts (server: McpServer): void {
  server.registerPrompt('test_simple_prompt', { description: 'A prompt without arguments' },
    async () => ({ messages: [{ role: 'user', content: { type: 'text', text: 'This is a simple prompt for testing.' } }] }))
  server.registerPrompt('test_prompt_with_arguments', {
    description: 'A prompt that quotes its two arguments',
    argsSchema: {
      arg1: completable(z.string().describe('First argument'), (value) => COMPLETIONS.filter((word) => word.startsWith(value.toLowerCase()))),
      arg2: z.string().describe('Second argument')
    }
  }, async ({ arg1, arg2 }) => ({ messages: [{ role: 'user', content: { type: 'text', text: `Prompt with arguments: arg1='${arg1}', arg2='${arg2}'` } }] }))
  server.registerPrompt('test_prompt_with_embedded_resource', {
    description: 'A prompt that embeds the resource it is given',
    argsSchema: { resourceUri: z.string().describe('The URI to embed') }
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
}
