import type { FastifyInstance } from 'fastify'
import cors from '@fastify/cors'
import type { RouteConfig } from '../config/schema.js'
import type { OriginPolicy } from './origin-check.js'

/** What the MCP transports send besides CORS-safelisted headers (MCP spec, Streamable HTTP; 2026-07-28 adds Mcp-Method and Mcp-Name). */
const ALLOWED_HEADERS = ['content-type', 'mcp-protocol-version', 'mcp-session-id', 'last-event-id', 'mcp-method', 'mcp-name', 'authorization']
/**
 * What a browser client must read: its session id, how a resume went, and the
 * upstream's `WWW-Authenticate`, from which the SDK's client finds the resource
 * metadata of its authorization server.
 */
const EXPOSED_HEADERS = ['mcp-session-id', 'x-resume-status', 'www-authenticate']
const METHODS = ['GET', 'POST', 'DELETE']
/** What @fastify/cors sets on an answer to an allowed origin, besides a preflight's own. */
const RESPONSE_HEADERS = ['access-control-allow-origin', 'access-control-expose-headers', 'vary']
/** Chromium caps a preflight's cache at 2 hours. A cached preflight lets no request skip the Host and Origin checks. */
const PREFLIGHT_MAX_AGE_SECONDS = 7200

/**
 * CORS for browser MCP clients (the Inspector's direct mode, a web app using an
 * SDK): preflights of the origins `allowed` lets through are answered, and the
 * responses name the headers a client reads. Other origins never get here: the
 * Origin check has refused them (403, without CORS headers).
 */
export async function answerPreflights (proxy: FastifyInstance, routes: readonly RouteConfig[], allowed: OriginPolicy): Promise<void> {
  // An application that registered @fastify/cors around the plugin answers every
  // preflight itself, the proxy's too: its hook runs first. A second @fastify/cors
  // could not even start (it decorates the request again).
  if (!proxy.hasPlugin('@fastify/cors')) await registerCors(proxy, routes, allowed)
  mirrorOnRawResponse(proxy)
}

async function registerCors (proxy: FastifyInstance, routes: readonly RouteConfig[], allowed: OriginPolicy): Promise<void> {
  const [first, ...others] = routes.flatMap((route) => route.kind === 'legacy-sse' ? [route.path, route.messagesPath] : [route.path])
  // @fastify/cors routes every preflight through an `OPTIONS *` route: in the host
  // application, that would answer for all of its paths, and clash with its own
  // @fastify/cors. The route is moved to one proxied path; the others get their own.
  proxy.addHook('onRoute', (route) => {
    if (route.method !== 'OPTIONS' || route.routePath !== '*') return
    route.url = route.path = `${route.prefix}${String(first)}`
    route.config = { ...route.config, disableMetrics: true }
  })
  await proxy.register(cors, {
    origin: (origin, callback) => { callback(null, origin !== undefined && allowed(origin)) },
    methods: METHODS,
    allowedHeaders: ALLOWED_HEADERS,
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: PREFLIGHT_MAX_AGE_SECONDS
  })
  // Reached only by an OPTIONS that is no preflight of an allowed origin, as @fastify/cors's own route.
  for (const path of others) proxy.options(path, { config: { disableMetrics: true } }, async (_request, reply) => { reply.callNotFound() })
}

/**
 * An event stream writes its own head (a resume, a client joining a stream):
 * on the raw response, the CORS answer is part of whatever head goes out.
 */
function mirrorOnRawResponse (proxy: FastifyInstance): void {
  proxy.addHook('onRequest', (_request, reply, done) => {
    for (const name of RESPONSE_HEADERS) {
      const value = reply.getHeader(name)
      if (value !== undefined) reply.raw.setHeader(name, value)
    }
    done()
  })
}
