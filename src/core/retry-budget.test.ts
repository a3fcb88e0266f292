import { describe, expect, it } from 'vitest';
import { retryBudget } from '../limits/retry-budget.js';
import { createFakeClock, deferred } from '../testing/index.js';
import { backoff } from './backoff.js';
import { ConfigError, TimeoutError } from './errors.js';
import type { RetryEvent } from './events.js';
import { retry } from './retry.js';

const noDelay = backoff.constant(0);

describe('retry({ budget })', () => {
  it('rejects a value that is not a budget', () => {
    expect(() => retry({ budget: {} as never })).toThrow(ConfigError);
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('gives up with reason budget when a token budget is empty', async () => {
    const budget = retryBudget.tokens({ capacity: 10, retryCost: 5 });
    const clock = createFakeClock();
    const r = retry({ maxAttempts: 10, backoff: noDelay, budget, clock });
    const events: RetryEvent[] = [];
    r.onEvent((e) => events.push(e));
    let calls = 0;
    await expect(
      r.execute(() => {
        calls++;
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(calls).toBe(3); // two retries of cost 5, then refused
    const giveUp = events.find((e) => e.event === 'giveUp');
    expect(giveUp && 'reason' in giveUp ? giveUp.reason : undefined).toBe('budget');
    expect(budget.stats).toMatchObject({ available: 0, granted: 2, refused: 1 });
  });

  it('refunds the last retry cost on success and 1 on a first-try success, up to capacity', async () => {
    const budget = retryBudget.tokens({ capacity: 20, retryCost: 5, timeoutCost: 10 });
    const r = retry({ maxAttempts: 3, backoff: noDelay, budget });
    let n = 0;
    await r.execute(() => {
      if (n++ === 0) throw new TimeoutError(100);
      return 'ok';
    });
    // withdrew 10 for the timeout retry, refunded 10 on success
    expect(budget.stats.available).toBe(20);
    n = 0;
    await expect(
      r.execute(() => {
        throw new Error('x');
      }),
    ).rejects.toThrow('x');
    expect(budget.stats.available).toBe(10); // 2 retries × 5, no refund on failure
    await r.execute(() => 1);
    expect(budget.stats.available).toBe(11);
  });

  it('a ratio budget caps concurrent retries across policies', async () => {
    const budget = retryBudget.ratio({ ratio: 0.2, minRetriesConcurrent: 1 });
    const gate = deferred<void>();
    const a = retry({ maxAttempts: 2, backoff: noDelay, budget });
    const b = retry({ maxAttempts: 2, backoff: noDelay, budget });
    let attempts = 0;
    const fn = async (ctx: { attempt: number }) => {
      attempts++;
      if (ctx.attempt === 1) throw new Error('first');
      await gate.promise;
      return 'ok';
    };
    const all = Promise.allSettled([a.execute(fn), b.execute(fn)]);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    // 2 active executions: max(0.2 × 2, 1) = 1 retry in flight; the second is refused
    expect(budget.stats).toMatchObject({ inFlight: 1, retriesInFlight: 1, granted: 1, refused: 1 });
    gate.resolve();
    const results = await all;
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(attempts).toBe(3);
    expect(budget.stats).toMatchObject({ inFlight: 0, retriesInFlight: 0 });
  });

  it('tracks active executions on the fast path and releases them on success and failure', async () => {
    const budget = retryBudget.ratio();
    const r = retry({ maxAttempts: 1, budget });
    const d = deferred<number>();
    const p = r.execute(() => d.promise);
    expect(budget.stats.inFlight).toBe(1);
    d.resolve(1);
    await p;
    expect(budget.stats.inFlight).toBe(0);
    await expect(
      r.execute(() => {
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    expect(budget.stats).toMatchObject({ inFlight: 0, retriesInFlight: 0, maxRetriesInFlight: 3 });
  });

  it('releases a retry slot when the wait is aborted', async () => {
    const clock = createFakeClock();
    const budget = retryBudget.ratio({ minRetriesConcurrent: 1 });
    const r = retry({ maxAttempts: 3, backoff: backoff.constant(1_000), budget, clock });
    const ac = new AbortController();
    const p = r.execute(
      () => {
        throw new Error('e');
      },
      { signal: ac.signal },
    );
    await new Promise((res) => setImmediate(res));
    expect(budget.stats.retriesInFlight).toBe(1);
    ac.abort(new Error('stop'));
    await expect(p).rejects.toThrow('stop');
    expect(budget.stats).toMatchObject({ inFlight: 0, retriesInFlight: 0 });
  });

  it('validates budget options', () => {
    expect(() => retryBudget.ratio({ ratio: 2 })).toThrow(/retryBudget.ratio.ratio/);
    expect(() => retryBudget.tokens({ capacity: 0 })).toThrow(/retryBudget.tokens.capacity/);
    expect(() => retryBudget.tokens({ cost: 1 } as never)).toThrow(ConfigError);
  });
});
