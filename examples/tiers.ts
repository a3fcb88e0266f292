/**
 * Priority tiers in one policy: critical calls get more attempts, a faster backoff and a
 * larger share of the bulkhead, and may pass an open breaker — counted and reported, never silent.
 *
 *   npx tsx examples/tiers.ts
 */

import { backoff, bulkhead, circuitBreaker, pipeline, retry } from 'bulwark';

const policy = pipeline(
  retry({
    maxAttempts: (ctx) => (ctx.priority === 'critical' ? 10 : 5),
    backoff: backoff.exponential({ initialMs: (ctx) => (ctx.priority === 'critical' ? 10 : 50), maxMs: 200 }),
  }),
  circuitBreaker({ name: 'ledger', breaker: { kind: 'consecutive', threshold: 3 }, bypass: ['critical'] }),
  // Up to 4 at once for critical work, 2 for everything else: capacity is reserved for critical.
  bulkhead({ limit: (ctx) => (ctx.priority === 'critical' ? 4 : 2), queue: 8 }),
);

policy.onEvent((e) => {
  if (e.event === 'bypass')
    console.log(`  ${e.name}: a ${e.priority} call (attempt ${e.attempt}) bypassed the open ${e.kind}`);
});

let failuresLeft = 6;
const flaky = async ({ attempt, priority }: { attempt: number; priority: string }) => {
  if (failuresLeft-- > 0) throw new Error(`flaky (${priority}, attempt ${attempt})`);
  return `ok on attempt ${attempt}`;
};

// A normal call gives up after 5 attempts; the breaker opens after 3 failures in a row.
console.log(
  'normal:',
  await policy.execute(flaky, { priority: 'normal' }).catch((e: Error) => `failed: ${e.message}`),
);
// A critical call gets up to 10 attempts, and passes the open breaker.
console.log('critical:', await policy.execute(flaky, { priority: 'critical' }));
