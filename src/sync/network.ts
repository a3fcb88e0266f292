/**
 * How the client meets the network: the default policy around every push and pull — retries
 * tiered by the request's priority inside an adaptive timeout that follows observed latency.
 * @module
 */

import { backoff } from '../core/backoff.js';
import type { Clock } from '../core/clock.js';
import { pipeline } from '../core/policy.js';
import { retry } from '../core/retry.js';
import { type AdaptiveTimeoutPolicy, adaptiveTimeout } from '../limits/adaptive-timeout.js';

/** Something that runs a call under resilience policies (a Bulwark policy or pipeline). */
export interface SyncPolicy {
  execute<T>(
    fn: (ctx: { readonly signal: AbortSignal }) => Promise<T>,
    options?: { priority?: string },
  ): Promise<T>;
}

/** The default push/pull policy: retries tiered by priority inside an adaptive timeout. @internal */
export function defaultPolicy(clock: Clock): { policy: SyncPolicy; timeout: AdaptiveTimeoutPolicy } {
  const critical = (p: string) => p === 'critical';
  const timeout = adaptiveTimeout({
    quantile: 0.99,
    multiplier: 2,
    minMs: 200,
    maxMs: 60_000,
    initialMs: 10_000,
    clock,
  });
  const policy = pipeline(
    retry({
      maxAttempts: (ctx) => (critical(ctx.priority) ? 6 : ctx.priority === 'low' ? 2 : 4),
      backoff: backoff.exponential({
        initialMs: (ctx) => (critical(ctx.priority) ? 100 : 500),
        maxMs: (ctx) => (critical(ctx.priority) ? 2_000 : 10_000),
        jitter: 'full',
      }),
      clock,
    }),
    timeout,
  );
  return { policy, timeout };
}
