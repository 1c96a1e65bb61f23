import { FormatRegistry, Type, type Static } from '@sinclair/typebox'

// Every Type.Optional key below carries a `default`: resolveOptions() fills it in,
// which is what ResolvedOptions describes.

export const HTTP_URL_FORMAT = 'mcp-sse-http-url'
export const HOST_NAME_FORMAT = 'mcp-sse-host-name'

FormatRegistry.Set(HTTP_URL_FORMAT, isHttpUrl)
FormatRegistry.Set(HOST_NAME_FORMAT, isHostName)

/** What each format asks for, in the words of an error message and of the reference. */
export const FORMAT_NAMES: Readonly<Record<string, string>> = {
  [HTTP_URL_FORMAT]: 'an http(s) URL',
  [HOST_NAME_FORMAT]: 'a host name without scheme or port ("localhost", "[::1]", "mcp.example.com"), or "*"'
}

function isHttpUrl (value: string): boolean {
  if (!URL.canParse(value)) return false
  const { protocol } = new URL(value)
  return protocol === 'http:' || protocol === 'https:'
}

const PATH_PATTERN = '^/[^?#\\s]*$'

/** A name as `URL` spells the hostname of `http://<name>/`, nothing more, in any case; or `*`. */
function isHostName (value: string): boolean {
  if (value === '*') return true
  return URL.canParse(`http://${value}`) && new URL(`http://${value}`).hostname === value.toLowerCase()
}

const RoutePath = Type.String({
  pattern: PATH_PATTERN,
  description: 'URL path on the proxy, starting with "/".'
})

const UpstreamUrl = Type.String({
  format: HTTP_URL_FORMAT,
  description: 'Absolute http(s) URL of the upstream endpoint.'
})

const strict = { additionalProperties: false } as const

const ReconnectSchema = Type.Object({
  baseDelayMs: Type.Optional(Type.Integer({ default: 1000, minimum: 0, description: 'Delay before the first reconnection attempt after an upstream stream fails (its connection cut or reset, or stalled); each further attempt of the same outage waits `factor` times longer. After a clean close (the upstream ended its response) the first attempt is immediate, and this is the delay of the second.' })),
  maxDelayMs: Type.Optional(Type.Integer({ default: 30000, minimum: 0, description: 'Longest delay between two attempts, before jitter.' })),
  factor: Type.Optional(Type.Number({ default: 2, minimum: 1, description: 'Growth of the delay from one attempt to the next.' })),
  jitter: Type.Optional(Type.Number({ default: 0.1, minimum: 0, maximum: 1, description: 'Random spread of each delay: 0.1 is +-10%.' })),
  maxRetries: Type.Optional(Type.Integer({ default: 10, minimum: 0, description: 'Attempts per outage before the proxy gives up and closes the client stream cleanly; 0 never gives up.' })),
  maxHintDelayMs: Type.Optional(Type.Integer({ default: 300000, minimum: 0, description: 'Cap on the delays the upstream asks for, with Retry-After or the SSE `retry:` field.' })),
  dedupeWindow: Type.Optional(Type.Integer({ default: 1000, minimum: 0, description: 'Upstream events per stream remembered to drop what an upstream replays after a reconnect. 0 turns dedupe off: every event an upstream replays reaches the client again.' }))
}, { ...strict, default: {} })

/** routes[].reconnect: the same keys, none defaulted, so that a route overrides only what it names. */
const RouteReconnectSchema = Type.Object(
  Object.fromEntries(Object.entries(ReconnectSchema.properties).map(([key, schema]) => {
    const { default: _default, ...withoutDefault } = schema
    return [key, { ...withoutDefault, description: `Overrides reconnect.${key} for this route.` }]
  })) as typeof ReconnectSchema.properties,
  { ...strict, description: 'Overrides of the reconnect section for this route; keys left out keep the global value.' }
)

const UpstreamReplays = Type.Optional(Type.Boolean({
  default: false,
  description: 'Whether the upstream replays, from the `Last-Event-ID` the proxy sends when it reconnects, every event it sent after that id. false (the default): the proxy cannot tell what an upstream sent while it was disconnected, and most servers keep no event store (the MCP SDKs keep none unless given one), so after each upstream reconnect the client gets an in-band `resume-status` notice at the point of the gap, and on MCP session streams the `list_changed` and `resources/updated` notifications the server advertised. true: only reconnects that cannot be replayed (a new upstream session) get them.'
}))

export const StreamableHttpRouteSchema = Type.Object({
  kind: Type.Literal('streamable-http', { description: 'An MCP Streamable HTTP endpoint (POST, GET and DELETE on one path).' }),
  path: RoutePath,
  upstream: UpstreamUrl,
  upstreamReplays: UpstreamReplays,
  reconnect: Type.Optional(RouteReconnectSchema)
}, strict)

export const LegacySseRouteSchema = Type.Object({
  kind: Type.Literal('legacy-sse', { description: 'The MCP HTTP+SSE transport of 2024-11-05: an SSE endpoint plus a POST endpoint.' }),
  path: RoutePath,
  messagesPath: Type.String({
    pattern: '^/[^?#\\s]*$',
    description: 'Path on the proxy that clients POST their messages to; the proxy announces it in the rewritten `endpoint` event.'
  }),
  upstream: UpstreamUrl,
  upstreamReplays: UpstreamReplays,
  reconnect: Type.Optional(RouteReconnectSchema)
}, strict)

export const SseRouteSchema = Type.Object({
  kind: Type.Literal('sse', { description: 'Any text/event-stream endpoint, proxied on GET.' }),
  path: RoutePath,
  upstream: UpstreamUrl,
  upstreamReplays: UpstreamReplays,
  reconnect: Type.Optional(RouteReconnectSchema)
}, strict)

export const ROUTE_SCHEMAS = [StreamableHttpRouteSchema, LegacySseRouteSchema, SseRouteSchema] as const

export const RouteSchema = Type.Union([...ROUTE_SCHEMAS])

const MetricsSchema = Type.Object({
  enabled: Type.Optional(Type.Boolean({ default: true, description: 'Export Prometheus metrics: into the registry of the host application when it has one (a fastify-metrics registered before the plugin, or `metricsRegistry`), else on the plugin\'s own endpoint at `path`, through fastify-metrics. false: nowhere.' })),
  path: Type.Optional(Type.String({ default: '/metrics', pattern: '^/[^?#\\s]*$', description: 'Path of the Prometheus endpoint, when the plugin serves one.' }))
}, { ...strict, default: {} })

const ProbesSchema = Type.Object({
  enabled: Type.Optional(Type.Boolean({ default: true, description: 'Serve a liveness and a readiness probe, for orchestrators and load balancers (docs/operations.md). Both are left out of the request metrics.' })),
  livenessPath: Type.Optional(Type.String({ default: '/healthz', pattern: PATH_PATTERN, description: 'GET: `200` while the process serves requests. It looks at nothing else, so that a Redis outage never gets the proxy restarted.' })),
  readinessPath: Type.Optional(Type.String({ default: '/readyz', pattern: PATH_PATTERN, description: 'GET: `200` when the proxy takes new clients; `503` with the reason while it shuts down, and, with the Redis store, until it has reached Redis and while Redis is unreachable.' }))
}, { ...strict, default: {} })

const UpstreamSchema = Type.Object({
  maxConnections: Type.Optional(Type.Integer({
    default: 0,
    minimum: 0,
    description: 'Connections the proxy may open to one upstream origin. 0 means no limit, so no SSE stream ever waits behind another: an SSE stream holds its connection for its whole life.'
  }))
}, { ...strict, default: {} })

const HealthSchema = Type.Object({
  connectTimeoutMs: Type.Optional(Type.Integer({
    default: 10000,
    minimum: 1,
    description: 'How long to wait for the upstream\'s response headers; past it the client gets 504. A stream that has started is never cut by the HTTP client for being quiet.'
  })),
  idleTimeoutSeconds: Type.Optional(Type.Integer({
    default: 45,
    minimum: 0,
    description: 'An upstream stream that sends nothing, no event and no comment, for this long is stalled: it is replaced through the reconnect path. The default leaves room for three missed 15 s keep-alives (the MCP SDK\'s interval). 0 turns it off.'
  })),
  heartbeatSeconds: Type.Optional(Type.Integer({
    default: 15,
    minimum: 0,
    description: 'Every open client stream gets a `: keepalive` comment this often, so that intermediaries do not cut quiet streams (nginx after 60 s, Node\'s request timeout after 300 s). 0 turns it off.'
  }))
}, { ...strict, default: {} })

const HistorySchema = Type.Object({
  enabled: Type.Optional(Type.Boolean({
    default: true,
    description: 'false: keep no history at all. Events still get proxy ids, but no Last-Event-ID can be served (the client is told so), and a client that falls behind is disconnected instead of catching up.'
  })),
  maxEvents: Type.Optional(Type.Integer({
    default: 1000,
    minimum: 1,
    description: 'Events kept per stream for resumption; the oldest go first.'
  })),
  maxBytes: Type.Optional(Type.Integer({
    default: 1048576,
    minimum: 1024,
    description: 'Bytes of events kept per session, over all its streams; the session\'s oldest events go first.'
  })),
  ttlSeconds: Type.Optional(Type.Integer({
    default: 300,
    minimum: 1,
    description: 'Events older than this are evicted. A finished stream with no client is forgotten this long after it ended.'
  })),
  replay: Type.Optional(Type.Boolean({
    default: true,
    description: 'true: keep each event, so that the proxy replays a resume itself. false: keep only ids (the memory-light mode).'
  }))
}, { ...strict, default: {} })

const SessionsSchema = Type.Object({
  maxSessions: Type.Optional(Type.Integer({
    default: 10000,
    minimum: 1,
    description: 'Sessions held at once, over all routes. A request that would open one more gets 503 with Retry-After.'
  })),
  idleTimeoutSeconds: Type.Optional(Type.Integer({
    default: 3600,
    minimum: 1,
    description: 'A session with no request and no open stream for this long is forgotten; its client then gets 404 and initializes again, as the MCP spec says.'
  })),
  detachGraceSeconds: Type.Optional(Type.Integer({
    default: 60,
    minimum: 0,
    description: 'How long a resumable stream whose client has gone keeps its upstream running and recording, waiting for the client to resume.'
  })),
  reestablish: Type.Optional(Type.Boolean({
    default: true,
    description: 'streamable-http, MCP 2025-03-26 to 2025-11-25: when the upstream answers 404 for a session it has lost (a restart), open a new upstream session by replaying the client\'s initialize, notifications/initialized and resource subscriptions, then send the request again. false: the 404 passes through, and the client initializes again.'
  })),
  maxSubscriptionsPerSession: Type.Optional(Type.Integer({
    default: 1000,
    minimum: 0,
    description: 'Resource subscriptions recorded per session, to be sent again when the session is re-established. Past it, the newest are not recorded.'
  })),
  maxStreamsPerSession: Type.Optional(Type.Integer({
    default: 100,
    minimum: 1,
    description: 'Streams one session may hold at once, live or kept for resumption. One more gets 429.'
  }))
}, { ...strict, default: {} })

const LimitsSchema = Type.Object({
  maxEventBytes: Type.Optional(Type.Integer({
    default: 1048576,
    minimum: 1024,
    description: 'Largest upstream SSE event, in characters. A larger one is logged and counted, and its stream is closed.'
  })),
  maxBodyBytes: Type.Optional(Type.Integer({
    default: 4194304,
    minimum: 1024,
    description: 'Largest request body a client may POST. A larger one gets 413.'
  })),
  clientBufferBytes: Type.Optional(Type.Integer({
    default: 1048576,
    minimum: 1024,
    description: 'Bytes written to a client that it has not taken in yet. Past it, a live client catches up at its own pace instead; a single event larger than this disconnects the client, so keep it above your largest event.'
  })),
  clientStallSeconds: Type.Optional(Type.Integer({
    default: 30,
    minimum: 1,
    description: 'A client whose socket takes in nothing for this long while events wait for it cannot keep up: it is disconnected and counted, and may resume from the history.'
  }))
}, { ...strict, default: {} })

const SecuritySchema = Type.Object({
  allowedOrigins: Type.Optional(Type.Array(Type.String({ minLength: 1 }), {
    default: [],
    description: 'Browser origins (`scheme://host[:port]`) allowed to call the proxy routes, besides the localhost origins that `localhostOrigins` allows. A request whose `Origin` header is present and allowed by neither gets 403, against DNS rebinding (MCP spec, "Security Warning"); so does its CORS preflight. Allowed origins get CORS answers. Requests without `Origin` (SDK clients, curl) are not affected. `"*"` allows any origin. The default, [], lists none.'
  })),
  localhostOrigins: Type.Optional(Type.Union([Type.Literal('auto'), Type.Boolean()], {
    default: 'auto',
    description: 'Whether pages served from this machine (origins `http(s)://` `localhost`, `127.0.0.1` or `[::1]`, any port) may call the proxy. `"auto"`: yes when the proxy listens on loopback addresses only, where only this machine reaches it and the Host check stops rebound names. `true`: always. `false`: only `allowedOrigins`.'
  })),
  allowedHosts: Type.Optional(Type.Union([
    Type.Literal('auto'),
    Type.Array(Type.String({ format: HOST_NAME_FORMAT }), { minItems: 1 })
  ], {
    default: 'auto',
    description: 'Host names (no scheme or port; IPv6 in brackets) that a request\'s `Host` header must name, or it gets 403: a DNS-rebinding page sends its own name. `"auto"`, as the MCP SDK: `localhost`, `127.0.0.1` and `[::1]` when the proxy listens on loopback addresses only; not checked otherwise, so that a proxy on 0.0.0.0 behind a load balancer serves whatever name it is reached by. A list is checked whatever the bind; `["*"]` checks nothing.'
  }))
}, { ...strict, default: {} })

const ShutdownSchema = Type.Object({
  retryHintMs: Type.Optional(Type.Integer({
    default: 1000,
    minimum: 0,
    description: 'When the proxy closes (SIGTERM, fastify.close()), each client stream gets `retry:` with this many milliseconds before it ends cleanly, so that clients reconnect, to another replica when there is one.'
  })),
  drainTimeoutMs: Type.Optional(Type.Integer({
    default: 5000,
    minimum: 0,
    description: 'How long closing waits for client streams to take in what they were sent; past it, they are cut.'
  }))
}, { ...strict, default: {} })

const StoreSchema = Type.Object({
  kind: Type.Optional(Type.Union([Type.Literal('memory'), Type.Literal('redis')], {
    default: 'memory',
    description: '`memory`: sessions, history and upstream ownership live in this process; nothing to install. `redis`: they live in Redis, so that several replicas behind a load balancer without sticky sessions serve the same clients (docs/scaling.md).'
  })),
  url: Type.Optional(Type.String({
    default: 'redis://127.0.0.1:6379',
    pattern: '^rediss?://',
    description: 'Redis URL, `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS. Used when kind is `redis`, unless `cluster` is given.'
  })),
  cluster: Type.Optional(Type.Array(Type.String({ pattern: '^rediss?://' }), {
    default: [],
    description: 'Redis Cluster: the URLs of some of its nodes, `redis://[user:password@]host:port` (or `rediss://`), from which the client learns the others. Used instead of `url`, which must then be left out; `durable` is not available with it (docs/scaling.md).'
  })),
  keyPrefix: Type.Optional(Type.String({
    default: 'mcp-sse:',
    pattern: '^[^{}\\s]*$',
    description: 'Prefix of every Redis key and channel, so that several deployments can share one Redis. No braces: the proxy adds its own hash tags.'
  })),
  leaseTtlMs: Type.Optional(Type.Integer({
    default: 5000,
    minimum: 100,
    description: 'How long the replica that reads an upstream stream may go without renewing its lease before another replica takes the stream over. The owner renews every third of it, and stops reading once it could not renew for half of it (two renewals in a row), before the lease can run out under it.'
  })),
  requestTimeoutMs: Type.Optional(Type.Integer({
    default: 2000,
    minimum: 1,
    description: 'How long a client request waits for Redis (to find a session or a stream another replica holds) before it gets 503 with Retry-After. Redis may hang with its connection open; this bounds the wait.'
  })),
  maxAppendBytes: Type.Optional(Type.Integer({
    default: 65536,
    minimum: 1024,
    description: 'Bytes of events one stream may gather into a single append while its previous one waits for Redis; past it, the stream stops reading its upstream until Redis has taken them. Bounds the memory of each stream, and how long one append script runs in Redis.'
  })),
  durable: Type.Optional(Type.Boolean({
    default: false,
    description: 'true: each append waits for one Redis replica to acknowledge it (WAIT) before the events go to clients, so that a Redis failover loses none of what clients saw. It costs a round trip to the replica per upstream chunk.'
  }))
}, { ...strict, default: {} })

export const OptionsSchema = Type.Object({
  routes: Type.Array(RouteSchema, {
    minItems: 1,
    description: 'The proxied endpoints. Each entry is one of the route kinds, chosen by `kind`.'
  }),
  metrics: Type.Optional(MetricsSchema),
  probes: Type.Optional(ProbesSchema),
  upstream: Type.Optional(UpstreamSchema),
  health: Type.Optional(HealthSchema),
  reconnect: Type.Optional(ReconnectSchema),
  history: Type.Optional(HistorySchema),
  sessions: Type.Optional(SessionsSchema),
  limits: Type.Optional(LimitsSchema),
  security: Type.Optional(SecuritySchema),
  shutdown: Type.Optional(ShutdownSchema),
  store: Type.Optional(StoreSchema)
}, { ...strict, $id: 'McpSseResilienceOptions' })

/** The options as a caller writes them: every key with a default may be left out. */
export type McpSseResilienceOptions = Static<typeof OptionsSchema>

type WithDefaultsApplied<T> =
  T extends ReadonlyArray<infer Item>
    ? Array<WithDefaultsApplied<Item>>
    : T extends object
      ? { [K in keyof T]-?: WithDefaultsApplied<T[K]> }
      : T

/** The options after validation, with every default filled in. */
export type ResolvedOptions = WithDefaultsApplied<McpSseResilienceOptions>
export type RouteConfig = ResolvedOptions['routes'][number]
export type RouteKind = RouteConfig['kind']
export type StreamableHttpRouteConfig = Extract<RouteConfig, { kind: 'streamable-http' }>
export type LegacySseRouteConfig = Extract<RouteConfig, { kind: 'legacy-sse' }>
export type SseRouteConfig = Extract<RouteConfig, { kind: 'sse' }>
export type ReconnectPolicy = ResolvedOptions['reconnect']
export type StoreOptions = ResolvedOptions['store']

/** The reconnect policy of one route: the global section, with the route's own overrides on top. */
export function reconnectPolicyFor (options: ResolvedOptions, route: RouteConfig): ReconnectPolicy {
  // routes[].reconnect has no defaults, so its keys may be missing at run time, whatever the resolved type says.
  const overrides: Partial<ReconnectPolicy> | undefined = route.reconnect
  return { ...options.reconnect, ...overrides }
}
