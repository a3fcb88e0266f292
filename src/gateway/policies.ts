/**
 * Every construction of a core policy the gateway uses, in one place (so a rename of a core
 * option is adapted here only): the endpoint breaker, the retry budget of an upstream group and
 * the per-client rate limiters.
 * @module
 */

import { type CircuitBreakerPolicy, circuitBreaker } from '../core/breaker/circuit-breaker.js';
import { handle } from '../core/handle.js';
import type { Registry } from '../core/registry.js';
import type { RetryBudget } from '../core/retry-budget.js';
import { type RateLimiter, rateLimiter } from '../limits/rate-limiter.js';
import { retryBudget } from '../limits/retry-budget.js';
import type { SharedCircuitBreakerPolicy } from '../redis/shared-breaker.js';

/**
 * An attempt the gateway itself cancelled (its client went away, or a hedge won): no evidence
 * about the endpoint, so neither its breaker nor outlier detection counts it.
 */
export class AttemptCancelledError extends Error {
  constructor() {
    super('the attempt was cancelled (the client went away, or another attempt answered first)');
  }
}

/** An endpoint breaker's settings (from `upstreams.<name>.breaker`). */
export interface EndpointBreakerSettings {
  readonly threshold: number;
  readonly halfOpenAfterMs: number;
}

/** The code of the error an attempt is aborted with when the gateway no longer wants it. */
const ABANDONED = 'GATEWAY_ABANDONED';

/**
 * The reason an attempt is aborted with when the gateway itself gives it up (the client went
 * away, another attempt answered): no verdict on the endpoint, so its breaker excludes it.
 */
export function abandoned(message: string): Error {
  return Object.assign(new Error(message), { code: ABANDONED });
}

const isAbandoned = (error: unknown): boolean => (error as { code?: unknown } | null)?.code === ABANDONED;

/**
 * The breaker of one endpoint: opens after `threshold` consecutive failures (connect errors,
 * resets, timeouts and 5xx answers), half-opens after `halfOpenAfterMs`. The attempt it wraps
 * resolves to the upstream's status code; an attempt the gateway abandoned (`abandoned()`)
 * counts neither way.
 */
export function endpointBreaker(
  name: string,
  settings: EndpointBreakerSettings,
  registry?: Registry,
): CircuitBreakerPolicy {
  return circuitBreaker({
    ...endpointBreakerOptions(name, settings),
    ...(registry !== undefined ? { registry } : {}),
  });
}

/** The options of an endpoint breaker, local or shared through Redis (src/gateway/fleet.ts). */
export function endpointBreakerOptions(name: string, settings: EndpointBreakerSettings) {
  return {
    name,
    breaker: { kind: 'consecutive' as const, threshold: settings.threshold },
    halfOpenAfterMs: settings.halfOpenAfterMs,
    handle: handle.all().orResults((status: number) => status >= 500),
    // An attempt the gateway gave up or cancelled (the client left, a hedge lost) says nothing
    // about the endpoint: it counts neither way.
    exclude: handle.errors((e: unknown) => isAbandoned(e) || e instanceof AttemptCancelledError),
  };
}

/** An endpoint's breaker: the core one, or one shared through Redis by the fleet. */
export type EndpointBreaker = CircuitBreakerPolicy | SharedCircuitBreakerPolicy;

/**
 * The retry budget of an upstream group: every request deposits `ratio` tokens (up to 10), every
 * retry costs one, so attempts stay <= (1 + ratio) × requests (+3) even with every endpoint down.
 */
export function upstreamRetryBudget(ratio: number): RetryBudget {
  return retryBudget.ratioTokens({ ratio, capacity: 10, initial: 3 });
}

/** A per-client limit: `limit` per `windowMs` (sliding window counter), keyed per client. */
export function clientLimiter(limit: number, windowMs: number): RateLimiter {
  return rateLimiter({
    limits: [{ algorithm: 'sliding-window-counter', limit, windowMs }],
    maxKeys: 100_000,
  });
}

/** The budget's internal contract, named here so the gateway never spells it elsewhere. */
export const budget = {
  begin: (b: RetryBudget): void => b._begin(),
  /** True when one more retry is allowed. */
  acquire: (b: RetryBudget, failure: unknown): boolean => b._acquire(failure) >= 0,
  attemptEnd: (b: RetryBudget): void => b._attemptEnd(),
  end: (b: RetryBudget, success: boolean): void => b._end(success, -1),
};
