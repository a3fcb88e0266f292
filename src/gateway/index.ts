/**
 * `bulwark/gateway`: a resilient reverse proxy configured in one YAML file — routes, upstream
 * groups with load-balancing strategies and outlier ejection, retries with a budget, breakers,
 * per-client limits, store-and-forward of keyed writes, streaming with visible breaks, hot reload
 * and an admin port. Optional peers: undici, yaml, jose, better-sqlite3, pino, prom-client.
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
export { type LintFinding, lintGatewayConfig } from './lint.js';
export { GatewayConfigError, loadGatewayConfig, parseGatewayYaml } from './load.js';
export { type EjectionReason, OutlierDetector, OutlierState } from './outlier.js';
export { Route } from './route.js';
export { compileRoute, type RouteMatcher } from './router.js';
export { Endpoint, Upstream } from './upstream.js';
