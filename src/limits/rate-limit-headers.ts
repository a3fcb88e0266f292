/**
 * Renders the IETF rate-limit headers (draft-ietf-httpapi-ratelimit-headers-08 style) and
 * `Retry-After` from a decision.
 */

import type { RateLimitDecision } from './rate-limiter.js';

/** Headers made by `rateLimitHeaders()`. */
export interface RateLimitHeaders {
  /** `"name";q=limit;w=windowSeconds` */
  'RateLimit-Policy': string;
  /** `"name";r=remaining;t=secondsUntilReset` */
  RateLimit: string;
  /** Seconds (rounded up) before retrying; only when the call was rejected and may ever fit. */
  'Retry-After'?: string;
}

/**
 * The `RateLimit-Policy`, `RateLimit` and (when rejected) `Retry-After` headers of a decision.
 *
 * @example
 * ```ts
 * import { rateLimiter, rateLimitHeaders } from 'bulwark';
 * const l = rateLimiter({ limits: [{ algorithm: 'fixed-window', limit: 100, windowMs: 60_000 }] });
 * const headers = rateLimitHeaders(l.consume('ip-1'), 'api');
 * // { 'RateLimit-Policy': '"api";q=100;w=60', RateLimit: '"api";r=99;t=…' }
 * ```
 */
export function rateLimitHeaders(decision: RateLimitDecision, policyName = 'default'): RateLimitHeaders {
  const name = `"${policyName.replace(/["\\]/g, '\\$&')}"`;
  const w = Math.max(1, Math.ceil(decision.windowMs / 1000));
  const t = Math.max(0, Math.ceil(decision.resetMs / 1000));
  const headers: RateLimitHeaders = {
    'RateLimit-Policy': `${name};q=${Math.floor(decision.limit)};w=${w}`,
    RateLimit: `${name};r=${Math.max(0, Math.floor(decision.remaining))};t=${t}`,
  };
  if (!decision.allowed && Number.isFinite(decision.retryAfterMs)) {
    headers['Retry-After'] = String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000)));
  }
  return headers;
}
