/**
 * `bulwark/gateway`: a resilient reverse proxy configured in one YAML file — routes, upstream
 * groups with load-balancing strategies and outlier ejection, retries with a budget, breakers,
 * per-client limits, store-and-forward of keyed writes, streaming with visible breaks, per-route
 * bulkheads, hedging, response cache, coalescing and live-switchable chaos, active health checks,
 * TLS and HTTP/2 on the listener, hot reload and an admin port; several instances share limits,
 * breakers and the write queue through Redis and PostgreSQL. Optional peers: undici, yaml, jose,
 * better-sqlite3, pino, prom-client, ioredis, pg.
 *
 * @example
 * ```ts nocheck
 * import { startGatewayFromFile } from 'bulwark/gateway';
 * const gw = await startGatewayFromFile('bulwark.yaml');
 * console.log(`listening on ${gw.url}`);
 * ```
 * @module
 */

export { type AdminServer, type AdminTarget, startAdmin } from './admin.js';
export { makeStrategy, PeakEwma, type Pickable, type Strategy, type StrategyName } from './balancer.js';
export { clientAddress, UnauthorizedError } from './clients.js';
export {
  cacheDefaults,
  coalesceDefaults,
  type EndpointConfig,
  type GatewayConfig,
  gatewayJsonSchema,
  gatewaySchema,
  outlierDefaults,
  parseGatewayConfig,
  type RetryConfig,
  type RouteConfig,
  retryDefaults,
  type UpstreamConfig,
} from './config.js';
export { type ClientLimiter, Fleet, redisSettings } from './fleet.js';
export {
  Gateway,
  type GatewayOptions,
  type ReloadResult,
  startGateway,
  startGatewayFromFile,
} from './gateway.js';
export { type ParserEvents, type ResponseHeaders, ResponseParser, UpstreamError } from './h1-parse.js';
export { Call, type CallHandler, H1Pool, type H1PoolOptions } from './h1-pool.js';
export type { AccessEntry } from './handler.js';
export { UpstreamHealth } from './health-checks.js';
export { type HedgeSettings, hedgeDelay } from './hedge-race.js';
export {
  type IdempotencyRecord,
  postgresRecords,
  type RecordStore,
  type Settlement,
  sqliteRecords,
} from './idempotency-records.js';
export { type LintFinding, lintGatewayConfig } from './lint.js';
export { createListener, type GatewayListener } from './listener.js';
export { GatewayConfigError, loadGatewayConfig, parseGatewayYaml } from './load.js';
export { type EjectionReason, OutlierDetector, OutlierState } from './outlier.js';
export {
  type CachedResponse,
  type CacheMode,
  type CacheSettings,
  cacheModeOf,
  parseCacheControl,
  ResponseCache,
} from './response-cache.js';
export { Route } from './route.js';
export { type ChaosAction, RouteChaos } from './route-chaos.js';
export { type ForwardJob, RoutePolicies } from './route-policies.js';
export { compileRoute, type RouteMatcher } from './router.js';
export { Endpoint, Upstream } from './upstream.js';
