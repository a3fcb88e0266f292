/**
 * `bulwark gateway check`: warnings about settings that are valid but unsafe.
 * @module
 */

import type { GatewayConfig } from './config.js';

/** One finding of the lint. */
export interface LintFinding {
  readonly severity: 'warning' | 'error';
  /** The dotted option path, e.g. `routes[0].retry.methods`. */
  readonly option: string;
  readonly message: string;
}

/**
 * Lints a parsed configuration: POST/PATCH retries without an idempotency key, a per-try timeout
 * >= the route timeout, retries without a budget, bodies larger than the retry buffer, keep-alive
 * off, store-and-forward without retries, the admin port on a public address, and unsafe route
 * policies (hedged writes, hedging with one endpoint, a shared cache or coalescing on a route
 * keyed by API key, a bulkhead queue wait as long as the route timeout, chaos on at start).
 *
 * @example
 * ```ts
 * import { lintGatewayConfig, parseGatewayConfig } from 'bulwark/gateway';
 * const findings = lintGatewayConfig(parseGatewayConfig({
 *   listen: '127.0.0.1:8080',
 *   upstreams: { api: { endpoints: [{ url: 'http://127.0.0.1:7001' }], keepAliveTimeoutMs: 0 } },
 *   routes: [{ match: { path: '/' }, upstream: 'api', timeoutMs: 1000, perTryTimeoutMs: 1000 }],
 * }));
 * console.log(findings.map((f) => f.option)); // ['routes[0].perTryTimeoutMs', 'upstreams.api.keepAliveTimeoutMs']
 * ```
 */
export function lintGatewayConfig(config: GatewayConfig): LintFinding[] {
  const out: LintFinding[] = [];
  const warn = (option: string, message: string) => out.push({ severity: 'warning', option, message });
  config.routes.forEach((r, i) => {
    const at = `routes[${i}]`;
    const retry = typeof r.retry === 'object' ? r.retry : null;
    const retries = r.retry !== false && (retry?.maxAttempts ?? 2) > 1;
    const unsafe = (retry?.methods ?? []).filter((m) => m === 'POST' || m === 'PATCH');
    if (retries && unsafe.length > 0) {
      warn(
        `${at}.retry.methods`,
        `${unsafe.join(', ')} requests are retried even without an Idempotency-Key: a retry after a reset or a 502-504 can duplicate a write. Remove them, or require clients to send Idempotency-Key.`,
      );
    }
    if (r.perTryTimeoutMs !== undefined && r.perTryTimeoutMs >= r.timeoutMs) {
      warn(
        `${at}.perTryTimeoutMs`,
        `the per-try timeout (${r.perTryTimeoutMs} ms) is >= the route timeout (${r.timeoutMs} ms): no retry can ever run after a slow attempt.`,
      );
    }
    if (retries && retry !== null && retry.budgetRatio === 0) {
      warn(
        `${at}.retry.budgetRatio`,
        'retries without a budget: when the upstream fails, every request multiplies into maxAttempts attempts (a retry storm). Keep a budget (0.2 by default).',
      );
    }
    if (retries && retry !== null && retry.bufferBytes < config.limits.maxBodyBytes) {
      warn(
        `${at}.retry.bufferBytes`,
        `bodies between ${retry.bufferBytes} and ${config.limits.maxBodyBytes} bytes (limits.maxBodyBytes) are accepted but never retried (they are streamed, not buffered).`,
      );
    }
    if (r.storeAndForward && r.retry === false) {
      warn(
        `${at}.storeAndForward`,
        'store-and-forward without retries: one failed attempt queues the write even when another endpoint could take it now.',
      );
    }
    lintRoutePolicies(config, r, at, warn);
  });
  for (const [name, u] of Object.entries(config.upstreams)) {
    if (u.keepAliveTimeoutMs === 0) {
      warn(
        `upstreams.${name}.keepAliveTimeoutMs`,
        'keep-alive to the upstream is off: every request opens a connection (several times slower, and a connection storm under load).',
      );
    }
    if (u.endpoints.length === 1 && u.outlierDetection !== undefined) {
      warn(
        `upstreams.${name}.outlierDetection`,
        'one endpoint: ejecting it leaves nothing (panic mode sends traffic to it anyway).',
      );
    }
  }
  if (
    config.redis !== undefined &&
    config.postgres === undefined &&
    config.routes.some((r) => r.storeAndForward)
  ) {
    warn(
      'postgres',
      'limits and breakers are shared through Redis, but store-and-forward keeps its queue and idempotency records per instance (SQLite in dataDir): a write queued on one instance is delivered only by it, and its status URL answers only there. Set postgres to share them.',
    );
  }
  if (config.http2 && config.tls === undefined) {
    warn(
      'http2',
      'HTTP/2 without tls is h2c (cleartext, prior knowledge): browsers never use it. Set tls for h2 by ALPN, or keep h2c for trusted internal clients only.',
    );
  }
  if (typeof config.admin === 'string' && /^(0\.0\.0\.0|\[::\]|)(:|$)/.test(config.admin)) {
    warn(
      'admin',
      'the admin port listens on every address and has no authentication: bind it to 127.0.0.1 or a private interface.',
    );
  }
  return out;
}

type RouteOf = GatewayConfig['routes'][number];

/** The lint of a route's bulkhead, hedging, cache, coalescing and chaos. */
function lintRoutePolicies(
  config: GatewayConfig,
  r: RouteOf,
  at: string,
  warn: (option: string, message: string) => void,
): void {
  const endpoints = config.upstreams[r.upstream]?.endpoints.length ?? 0;
  if (r.hedge !== undefined) {
    const writes = r.hedge.methods.filter((m) => m !== 'GET' && m !== 'HEAD' && m !== 'OPTIONS');
    if (writes.length > 0)
      warn(
        `${at}.hedge.methods`,
        `${writes.join(', ')} would be hedged: a hedge sends the request twice at once. Hedge idempotent reads only.`,
      );
    if (endpoints < 2)
      warn(
        `${at}.hedge`,
        'the upstream has one endpoint: every hedge goes to the endpoint that is already slow.',
      );
    if (r.hedge.delayMs !== undefined && r.hedge.delayMs >= r.timeoutMs)
      warn(`${at}.hedge.delayMs`, 'the hedge delay is >= the route timeout: no hedge can ever start.');
  }
  const apiKeyed = (r.limits ?? []).filter((l) => l.key === 'apiKey' || l.key.startsWith('header:'));
  const keyHeader = (k: string) => (k === 'apiKey' ? (config.auth?.apiKeyHeader ?? 'x-api-key') : k.slice(7));
  const shares = (what: string, keyHeaders: readonly string[]) => {
    const missing = apiKeyed
      .map((l) => keyHeader(l.key).toLowerCase())
      .filter((h) => !keyHeaders.some((k) => k.toLowerCase() === h));
    if (missing.length > 0)
      warn(
        `${at}.${what}`,
        `clients are told apart by ${missing.join(', ')}, which is not in ${what}.keyHeaders: one client's response can be served to another. Add it to keyHeaders (Authorization and Cookie are always kept apart).`,
      );
  };
  if (typeof r.cache === 'object' || r.cache === true)
    shares('cache', typeof r.cache === 'object' ? r.cache.keyHeaders : []);
  if (typeof r.coalesce === 'object' || r.coalesce === true)
    shares('coalesce', typeof r.coalesce === 'object' ? r.coalesce.keyHeaders : []);
  if (r.bulkhead !== undefined && r.bulkhead.queue > 0 && r.bulkhead.queueTimeoutMs >= r.timeoutMs)
    warn(
      `${at}.bulkhead.queueTimeoutMs`,
      `a request may wait ${r.bulkhead.queueTimeoutMs} ms for a slot, as long as the whole route timeout (${r.timeoutMs} ms): clients time out in the queue. Keep the wait well below timeoutMs.`,
    );
  if (r.chaos?.enabled === true && r.chaos.rate > 0)
    warn(
      `${at}.chaos`,
      'chaos is on from the start: real clients get the injected faults. Start with enabled: false and switch it on from the control plane.',
    );
}
