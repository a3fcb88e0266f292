/**
 * The gateway's configuration file, as ONE schema (src/core/schema.ts): the same rules validate
 * `bulwark.yaml`, fill its defaults and emit the JSON Schema published for editors
 * (`gatewayJsonSchema()`) and the generated reference (docs/gateway-config.md).
 * @module
 */

import { ConfigError } from '../core/errors.js';
import { type Infer, type JsonSchema, s } from '../core/schema.js';

const HOST_PORT = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]*):\d{1,5}$/;
const listenAddress = s.union(
  [
    s.string({ pattern: HOST_PORT, patternRule: 'a host:port such as 127.0.0.1:8080' }),
    s.int({ min: 0, max: 65535 }),
  ],
  'a host:port such as 127.0.0.1:8080, or a port number',
);

const redisSetting = s.union(
  [
    s.string({ pattern: /^rediss?:\/\//, patternRule: 'a redis:// or rediss:// URL' }),
    s.object({
      url: s
        .string({ pattern: /^rediss?:\/\//, patternRule: 'a redis:// or rediss:// URL' })
        .describe('The Redis server, e.g. redis://127.0.0.1:6379/0.'),
      prefix: s
        .optional(
          s.string({ pattern: /^[^{}\s]+$/, patternRule: 'a key prefix without spaces, { or }' }),
          'bulwark:gw:',
        )
        .describe('Prefix of every key and channel: gateways with the same prefix share state.'),
      timeoutMs: s
        .optional(s.duration({ positive: true }), 50)
        .describe('Longest wait for Redis per decision before deciding locally.'),
      insuranceShare: s
        .optional(s.ratio(), 1)
        .describe(
          'While Redis fails, each instance allows this share of every client limit (1 / the number of instances).',
        ),
    }),
  ],
  'a redis:// URL, or { url, prefix, timeoutMs, insuranceShare }',
);

const endpoint = s.object({
  url: s
    .string({
      pattern: /^https?:\/\/[^/\s]+\/?$/,
      patternRule: 'an http(s) origin such as http://10.0.0.5:8080',
    })
    .describe('The endpoint origin: scheme, host and port (no path).'),
  weight: s.optional(s.int({ min: 1, max: 10_000 }), 1).describe('Share of traffic for weighted strategies.'),
  priority: s
    .optional(s.int({ min: 0, max: 10 }), 0)
    .describe('Tier: 0 is served first, 1 takes over when tier 0 is unhealthy.'),
  region: s.optional(s.string()).describe('A label shown in the admin API and the access log.'),
});

// Deliberate repetition: schema entries (optional, bounds, default, description) share one shape
// across the file; each says a different setting.
const outlierDetection = s.object({
  consecutive5xx: s
    .optional(s.int({ min: 0 }), 5)
    .describe('Eject after this many 5xx in a row (0: off). Envoy default 5.'),
  consecutiveGatewayErrors: s
    .optional(s.int({ min: 0 }), 5)
    .describe('Eject after this many connect errors, resets, 502/503/504 in a row (0: off).'),
  intervalMs: s.optional(s.duration({ positive: true }), 10_000).describe('Success-rate analysis period.'),
  baseEjectionTimeMs: s
    .optional(s.duration({ positive: true }), 30_000)
    .describe('An ejection lasts this × the number of times the endpoint was ejected.'),
  maxEjectionTimeMs: s.optional(s.duration({ positive: true }), 300_000).describe('Cap of one ejection.'),
  maxEjectionPercent: s
    .optional(s.number({ min: 0, max: 100 }), 10)
    .describe('At most this share of endpoints ejected at once (at least one can always be).'),
  successRateMinHosts: s.optional(s.int({ min: 1 }), 5),
  successRateRequestVolume: s.optional(s.int({ min: 1 }), 100),
  successRateStdevFactor: s.optional(s.number({ above: 0 }), 1.9),
});

const healthCheck = s.object({
  path: s
    .string({ pattern: /^\//, patternRule: 'a path starting with /' })
    .describe('Path requested on each endpoint (GET, through bulwark/health).'),
  intervalMs: s.optional(s.duration({ positive: true }), 5_000).describe('Time between two checks.'),
  timeoutMs: s.optional(s.duration({ positive: true }), 1_000).describe('A check slower than this fails.'),
  expectStatus: s
    .optional(s.array(s.int({ min: 100, max: 599 }), { min: 1 }), [200])
    .describe('Statuses that pass (Envoy: only 200 by default).'),
  healthyThreshold: s
    .optional(s.int({ min: 1 }), 2)
    .describe('Passing checks in a row that bring an unhealthy endpoint back.'),
  unhealthyThreshold: s
    .optional(s.int({ min: 1 }), 3)
    .describe('Failing checks in a row that take an endpoint out of the rotation.'),
});

const upstream = s.object({
  strategy: s
    .optional(
      s.oneOf(['priority', 'round-robin', 'weighted', 'least-request', 'least-latency'] as const),
      'round-robin',
    )
    .describe('How an endpoint is chosen.'),
  endpoints: s.array(endpoint, { min: 1 }),
  panicThresholdRatio: s
    .optional(s.ratio({ zero: true }), 0.5)
    .describe('Below this share of healthy endpoints, traffic goes to all of them (Envoy panic mode).'),
  overprovisioningFactor: s
    .optional(s.number({ min: 1 }), 1.4)
    .describe('Priority tiers: a tier takes min(1, healthy share × this) of the traffic (Envoy).'),
  connections: s.optional(s.int({ min: 1 }), 64).describe('Connections per endpoint (keep-alive pool).'),
  keepAliveTimeoutMs: s
    .optional(s.duration(), 60_000)
    .describe('Idle keep-alive time of upstream connections; 0 turns keep-alive off (lint warns).'),
  connectTimeoutMs: s.optional(s.duration({ positive: true }), 2_000),
  breaker: s.optional(
    s.object({
      enabled: s.optional(s.boolean(), true),
      threshold: s
        .optional(s.int({ min: 1 }), 5)
        .describe('Consecutive failures that open the endpoint breaker.'),
      halfOpenAfterMs: s.optional(s.duration({ positive: true }), 10_000),
    }),
  ),
  outlierDetection: s.optional(outlierDetection),
  healthCheck: s.optional(healthCheck),
});

const pathMatch = s.string({ pattern: /^\//, patternRule: 'a path starting with /' });
const match = s.object({
  host: s.optional(s.string()).describe('Host header (without port); `*.example.com` matches subdomains.'),
  path: s
    .optional(pathMatch)
    .describe('A path prefix (segment-wise: /pay matches /pay and /pay/x, not /payments).'),
  exact: s.optional(pathMatch).describe('An exact path.'),
  pattern: s.optional(pathMatch).describe('A path with parameters, e.g. /users/:id/orders/:order.'),
  methods: s.optional(
    s.array(s.string({ pattern: /^[A-Z]+$/, patternRule: 'an upper-case method' }), { min: 1 }),
  ),
  headers: s
    .optional(s.record(s.string({ minLength: 0 })))
    .describe('Headers that must be present with these values ("*": any value).'),
});

const retry = s.object({
  maxAttempts: s.optional(s.int({ min: 1, max: 10 }), 2).describe('Attempts in all, the first included.'),
  on: s
    .optional(s.array(s.int({ min: 100, max: 599 })), [502, 503, 504, 429])
    .describe('Statuses retried (connect errors and resets always are).'),
  methods: s
    .optional(s.array(s.string({ pattern: /^[A-Z]+$/, patternRule: 'an upper-case method' })), [
      'GET',
      'HEAD',
      'OPTIONS',
      'PUT',
      'DELETE',
    ])
    .describe(
      'Methods retried without an Idempotency-Key (others only with one). Adding POST is unsafe; the lint warns.',
    ),
  retryAfterMaxMs: s
    .optional(s.duration(), 2_000)
    .describe('A Retry-After longer than this is not waited for: the answer is returned.'),
  initialMs: s.optional(s.duration(), 25).describe('Backoff base (full jitter, doubling).'),
  maxMs: s.optional(s.duration(), 250).describe('Backoff cap.'),
  bufferBytes: s
    .optional(s.int({ min: 0 }), 1_048_576)
    .describe('Request bodies up to this size are buffered so they can be retried.'),
  budgetRatio: s
    .optional(s.ratio({ zero: true }), 0.2)
    .describe('Retries may add at most this share of requests (0: no budget; the lint warns).'),
});

const clientLimit = s.object({
  name: s.optional(s.string()),
  key: s
    .string({
      pattern: /^(ip|header:[A-Za-z0-9-]+|apiKey|jwt:[A-Za-z0-9_.-]+)$/,
      patternRule: 'ip, header:NAME, apiKey or jwt:CLAIM',
    })
    .describe('Whose limit: the client address, a header, the API key, or a verified JWT claim.'),
  limit: s.int({ min: 1 }),
  windowMs: s.duration({ positive: true }),
});

const methodList = s.array(s.string({ pattern: /^[A-Z]+$/, patternRule: 'an upper-case method' }), {
  min: 1,
});

const bulkhead = s.object({
  limit: s.int({ min: 1 }).describe('Requests forwarded at once on the route.'),
  queue: s.optional(s.int({ min: 0 }), 0).describe('Requests that may wait for a slot (FIFO).'),
  queueTimeoutMs: s
    .optional(s.duration({ positive: true }), 1_000)
    .describe('Longest wait for a slot; then 503.'),
  retryAfterMs: s
    .optional(s.duration({ positive: true }), 1_000)
    .describe('Retry-After of the 503 when full (rounded up to seconds).'),
});

const hedge = s.object({
  delayMs: s
    .optional(s.duration())
    .describe('Start a second attempt on another endpoint after this long without response headers.'),
  quantile: s
    .optional(s.ratio())
    .describe("Or adaptive: after this quantile of the route's recent times to headers (e.g. 0.95)."),
  initialDelayMs: s
    .optional(s.duration(), 100)
    .describe('With `quantile`: the delay until `minSamples` times are known.'),
  minDelayMs: s.optional(s.duration(), 1).describe('With `quantile`: lower bound of the delay.'),
  maxDelayMs: s.optional(s.duration()).describe('With `quantile`: upper bound of the delay.'),
  minSamples: s.optional(s.int({ min: 1 }), 20),
  maxHedges: s.optional(s.int({ min: 1, max: 3 }), 1).describe('Extra attempts at most.'),
  methods: s
    .optional(methodList, ['GET', 'HEAD'])
    .describe('Methods hedged (idempotent reads only; requests with a body never are).'),
});

const cache = s.object({
  maxEntries: s
    .optional(s.int({ min: 1 }), 1_000)
    .describe('Responses kept (least recently used first out).'),
  maxEntryBytes: s
    .optional(s.int({ min: 0 }), 1_048_576)
    .describe('Larger responses are passed through, not stored.'),
  staleWhileRevalidate: s
    .optional(s.boolean(), true)
    .describe('Honour `stale-while-revalidate`: serve the stale copy and refresh it in the background.'),
  keyHeaders: s
    .optional(s.array(s.string()), [])
    .describe('Request headers added to the key besides the Vary of the response.'),
});

const coalesce = s.object({
  keyHeaders: s
    .optional(s.array(s.string()), ['accept', 'accept-encoding', 'accept-language'])
    .describe(
      'Request headers that must be equal for two GETs to share one upstream request (Authorization and Cookie always are).',
    ),
});

const route = s.object({
  name: s.optional(s.string()).describe('Default `route-<index>`.'),
  match: match,
  upstream: s.string().describe('The name of an upstream group.'),
  stripPrefix: s.optional(s.boolean(), false).describe('Remove the matched path prefix before forwarding.'),
  rewrite: s
    .optional(pathMatch)
    .describe('Replace the matched prefix (or pattern) with this; `:param` is substituted.'),
  requestHeaders: s.optional(
    s.object({
      add: s.optional(s.record(s.string({ minLength: 0 }))),
      remove: s.optional(s.array(s.string())),
    }),
  ),
  responseHeaders: s.optional(
    s.object({
      add: s.optional(s.record(s.string({ minLength: 0 }))),
      remove: s.optional(s.array(s.string())),
    }),
  ),
  timeoutMs: s
    .optional(s.duration({ positive: true }), 15_000)
    .describe('Overall time to response headers, retries included.'),
  perTryTimeoutMs: s
    .optional(s.duration({ positive: true }))
    .describe('Time to response headers of one attempt.'),
  idleTimeoutMs: s
    .optional(s.duration({ positive: true }), 60_000)
    .describe('Longest silence inside a response body (streams).'),
  retry: s.optional(s.union([retry, s.boolean()], 'a retry object, or false')),
  storeAndForward: s
    .optional(s.boolean(), false)
    .describe('Writes with an Idempotency-Key that cannot be delivered now are queued and answered 202.'),
  limits: s.optional(s.array(clientLimit)).describe('Per-client limits, all enforced together.'),
  priority: s
    .optional(
      s.object({
        header: s.optional(s.string(), 'x-priority'),
        default: s.optional(s.oneOf(['critical', 'high', 'normal', 'low'] as const), 'normal'),
        shedAt: s.optional(s.int({ min: 1 })),
      }),
    )
    .describe('Priority classes: when more than `shedAt` requests are in flight, `low` is shed first.'),
  chaos: s
    .optional(
      s.object({
        enabled: s.optional(s.boolean(), true).describe('Inject now (switchable live on the control plane).'),
        rate: s.optional(s.ratio({ zero: true }), 1).describe('Share of requests injected into.'),
        latencyMs: s.optional(s.duration()).describe('Delay added before forwarding.'),
        status: s
          .optional(s.int({ min: 100, max: 599 }))
          .describe('Answer this status instead of forwarding.'),
        reset: s.optional(s.boolean()).describe('Cut the connection (HTTP/2: reset the stream).'),
      }),
    )
    .describe('Fault injection on the route; a `gatewayChaos` component with enable/disable/setRate.'),
  bulkhead: s
    .optional(bulkhead)
    .describe('At most `limit` requests forwarded at once, `queue` more waiting; the rest get 503.'),
  hedge: s
    .optional(hedge)
    .describe('Hedging of idempotent reads: a second attempt on another endpoint when the first is slow.'),
  cache: s
    .optional(s.union([cache, s.boolean()], 'a cache object, or true/false'))
    .describe(
      'A shared response cache for GET honouring Cache-Control (max-age, s-maxage, no-store, private, Vary, stale-while-revalidate).',
    ),
  coalesce: s
    .optional(s.union([coalesce, s.boolean()], 'a coalesce object, or true/false'))
    .describe('Identical GETs in flight share one upstream request.'),
});

const auth = s.object({
  jwksUrl: s
    .optional(s.string())
    .describe('Verify bearer JWTs against this JWKS (cached, refreshed on unknown kid).'),
  secret: s.optional(s.string({ minLength: 16 })).describe('A shared HS256 secret (at least 16 characters).'),
  issuer: s.optional(s.string()),
  audience: s.optional(s.string()),
  apiKeyHeader: s.optional(s.string(), 'x-api-key').describe('The header whose value keys `apiKey` limits.'),
});

/** The schema of `bulwark.yaml`. */
export const gatewaySchema = s.object({
  $schema: s.optional(s.string()),
  listen: listenAddress.describe('Where clients connect.'),
  admin: s
    .optional(listenAddress)
    .describe('Admin port: /metrics, /livez, /readyz, /admin/… (bind it to localhost).'),
  dataDir: s
    .optional(s.string(), '.bulwark')
    .describe('Where the store-and-forward queue and idempotency records (SQLite) live.'),
  postgres: s
    .optional(s.string({ pattern: /^postgres(ql)?:\/\//, patternRule: 'a postgres:// URL' }))
    .describe(
      'Share the store-and-forward queue and its idempotency records (status URLs, 409/422, replays) with every gateway using this PostgreSQL (postgres://…; `?schema=NAME` picks the schema, default bulwark) instead of SQLite in dataDir. Any instance delivers, and answers any status URL.',
    ),
  redis: s
    .optional(redisSetting)
    .describe(
      'Share client limits and endpoint breakers with every gateway using this Redis (redis://…, or { url, prefix, … }); without it they are per process. While Redis fails, limits fall back to memory and breakers run locally.',
    ),
  tls: s
    .optional(
      s.object({
        certFile: s.string().describe('PEM certificate chain of the listener.'),
        keyFile: s.string().describe('PEM private key of the listener.'),
        minVersion: s
          .optional(s.oneOf(['TLSv1.2', 'TLSv1.3'] as const), 'TLSv1.2')
          .describe('Oldest TLS version accepted (TLSv1.3: older clients fail the handshake).'),
      }),
    )
    .describe(
      'Serve HTTPS on `listen`. The files are read at start; a reload keeps the listener (restart to change listen, tls or http2).',
    ),
  http2: s
    .optional(s.boolean(), false)
    .describe(
      'Serve HTTP/2: with `tls`, h2 by ALPN with HTTP/1.1 fallback; without, h2c (prior knowledge) and HTTP/1.1 on the same port.',
    ),
  trustedProxies: s
    .optional(s.array(s.string()), [])
    .describe('Peers whose X-Forwarded-For / Forwarded are kept.'),
  limits: s.optional(
    s.object({
      maxHeaderBytes: s.optional(s.int({ min: 1024 }), 16_384).describe('Larger request headers get 431.'),
      headersTimeoutMs: s
        .optional(s.duration({ positive: true }), 10_000)
        .describe('Slowloris guard: all request headers within this.'),
      maxBodyBytes: s.optional(s.int({ min: 0 }), 10_485_760).describe('Larger request bodies get 413.'),
    }),
    { maxHeaderBytes: 16_384, headersTimeoutMs: 10_000, maxBodyBytes: 10_485_760 },
  ),
  accessLog: s
    .optional(s.boolean(), true)
    .describe(
      'A JSON line per request (pino): request id, route, endpoint, status, duration, attempts, what each policy did.',
    ),
  auth: s.optional(auth),
  upstreams: s.record(upstream, { pattern: /^[A-Za-z0-9_.-]+$/, rule: 'letters, digits, _ . -' }),
  routes: s.array(route, { min: 1 }),
});

/** A parsed, defaulted gateway configuration. */
export type GatewayConfig = Infer<typeof gatewaySchema>;
/** One route as configured. */
export type RouteConfig = GatewayConfig['routes'][number];
/** One upstream group as configured. */
export type UpstreamConfig = GatewayConfig['upstreams'][string];
/** One endpoint as configured. */
export type EndpointConfig = UpstreamConfig['endpoints'][number];
/** A route's retry settings, defaults filled. */
export type RetryConfig = Infer<typeof retry>;

/** The defaults of `retry` when a route says `retry: true` or gives only some keys. */
export const retryDefaults: RetryConfig = retry.parse({}, 'retry');
/** The defaults of a route's `cache: true`. */
export const cacheDefaults = cache.parse({}, 'cache');
/** The defaults of a route's `coalesce: true`. */
export const coalesceDefaults = coalesce.parse({}, 'coalesce');
/** The defaults of `outlierDetection`. */
export const outlierDefaults = outlierDetection.parse({}, 'outlierDetection');
/** Outlier detection settings, defaults filled. */
export type OutlierConfig = typeof outlierDefaults;

/**
 * Validates a configuration value (parsed YAML or JSON): the schema, then the cross-references
 * (a route's upstream exists, auth is set when a JWT limit needs it). Throws `ConfigError` whose
 * `option` is the dotted path (`routes[1].upstream`).
 *
 * @example
 * ```ts
 * import { parseGatewayConfig } from 'bulwark/gateway';
 * const config = parseGatewayConfig({
 *   listen: '127.0.0.1:8080',
 *   upstreams: { api: { endpoints: [{ url: 'http://127.0.0.1:7001' }] } },
 *   routes: [{ match: { path: '/' }, upstream: 'api' }],
 * });
 * console.log(config.routes[0]?.timeoutMs); // 15000
 * ```
 */
export function parseGatewayConfig(value: unknown): GatewayConfig {
  const config = gatewaySchema.parse(value, '$');
  const known = Object.keys(config.upstreams);
  config.routes.forEach((r, i) => {
    const path = `$.routes[${i}]`;
    if (config.upstreams[r.upstream] === undefined) {
      throw new ConfigError(
        `${path}.upstream`,
        `the name of an upstream (${known.join(', ')})`,
        r.upstream,
        `${path}.upstream unknown upstream "${r.upstream}" (known: ${known.join(', ')})`,
      );
    }
    const m = r.match;
    if ([m.path, m.exact, m.pattern].filter((x) => x !== undefined).length > 1) {
      throw new ConfigError(`${path}.match`, 'at most one of path, exact, pattern', m);
    }
    if (r.hedge !== undefined && (r.hedge.delayMs === undefined) === (r.hedge.quantile === undefined)) {
      throw new ConfigError(`${path}.hedge`, 'exactly one of delayMs, quantile', r.hedge);
    }
    if (
      r.limits?.some((l) => l.key.startsWith('jwt:')) === true &&
      config.auth?.jwksUrl === undefined &&
      config.auth?.secret === undefined
    ) {
      throw new ConfigError(
        `${path}.limits`,
        'a jwt: key only with auth.jwksUrl or auth.secret set',
        r.limits,
      );
    }
  });
  const names = new Set<string>();
  config.routes.forEach((r, i) => {
    const name = r.name ?? `route-${i}`;
    if (names.has(name)) throw new ConfigError(`$.routes[${i}].name`, 'a name no other route has', name);
    names.add(name);
  });
  return config;
}

/**
 * The JSON Schema of `bulwark.yaml` (draft 2020-12), from the same rules the gateway validates
 * with. Point editors at it: `# yaml-language-server: $schema=./node_modules/bulwark/docs/bulwark.schema.json`.
 *
 * @example
 * ```ts
 * import { gatewayJsonSchema } from 'bulwark/gateway';
 * console.log(Object.keys(gatewayJsonSchema().properties as object)); // ['$schema', 'listen', …]
 * ```
 */
export function gatewayJsonSchema(): JsonSchema {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://bulwark.dev/schema/bulwark.schema.json',
    title: 'bulwark gateway configuration (bulwark.yaml)',
    ...gatewaySchema.json(),
  };
}
