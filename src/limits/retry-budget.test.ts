import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoff } from '../core/backoff.js';
import { nonRetryable, TimeoutError } from '../core/errors.js';
import { retry } from '../core/retry.js';
import { isTimeoutLike, retryBudget } from './retry-budget.js';

describe('retryBudget.tokens against a reference model (AWS SDK quota)', () => {
  it('withdraws per retry, refunds the last retry cost or 1 on success, never exceeds capacity', async () => {
    // An execution: the failures of its attempts ('t' timeout, 'e' other), then success or not.
    const execution = fc.record({
      failures: fc.array(fc.constantFrom('t', 'e'), { maxLength: 4 }),
      succeeds: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(execution, { maxLength: 25 }),
        fc.integer({ min: 1, max: 60 }),
        async (runs, capacity) => {
          const budget = retryBudget.tokens({ capacity, retryCost: 5, timeoutCost: 10 });
          const policy = retry({ maxAttempts: 10, backoff: backoff.constant(0), budget });
          let tokens = capacity;
          for (const run of runs) {
            // model
            let lastCost = 0;
            let outcome: 'ok' | 'fail' = 'fail';
            let attempts = 0;
            for (let i = 0; ; i++) {
              attempts++;
              const f = run.failures[i];
              if (f === undefined && run.succeeds) {
                outcome = 'ok';
                break;
              }
              if (f === undefined) break; // fails with a non-retryable error
              const cost = f === 't' ? 10 : 5;
              if (tokens < cost) break; // refused
              tokens -= cost;
              lastCost = cost;
            }
            if (outcome === 'ok') tokens = Math.min(capacity, tokens + (lastCost > 0 ? lastCost : 1));
            // system
            let n = 0;
            const result = await policy
              .execute(() => {
                const f = run.failures[n++];
                if (f === 't') throw new TimeoutError(1);
                if (f === 'e') throw Object.assign(new Error('503'), { status: 503 });
                if (run.succeeds) return 'ok';
                throw nonRetryable(new Error('final'));
              })
              .then(
                () => 'ok',
                () => 'fail',
              );
            if (result !== outcome || n !== attempts) return false;
            const s = budget.stats;
            if (s.available !== tokens || s.available < 0 || s.available > capacity) return false;
          }
          return true;
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('isTimeoutLike', () => {
  it('is true for timeouts and network errors, false for HTTP errors and others', () => {
    expect(isTimeoutLike(new TimeoutError(5))).toBe(true);
    expect(isTimeoutLike(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))).toBe(true);
    expect(isTimeoutLike(Object.assign(new Error('busy'), { status: 503 }))).toBe(false);
    expect(isTimeoutLike(new Error('bad input'))).toBe(false);
    expect(isTimeoutLike('x')).toBe(false);
  });
});

describe('retryBudget.ratio', () => {
  it('never has more retries in flight than max(ratio × active, min) (model of grants)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('begin', 'end', 'acquire', 'attemptEnd'), { maxLength: 200 }),
        fc.double({ min: 0.01, max: 1, noNaN: true }),
        fc.nat(5),
        (ops, ratio, min) => {
          const b = retryBudget.ratio({ ratio, minRetriesConcurrent: min });
          let active = 0;
          let retrying = 0;
          for (const op of ops) {
            if (op === 'begin') {
              active++;
              b._begin();
            } else if (op === 'end' && active > retrying) {
              active--;
              b._end(true, 0);
            } else if (op === 'acquire' && active > 0) {
              const granted = b._acquire(null) >= 0;
              if (granted !== retrying + 1 <= Math.max(ratio * active, min)) return false;
              if (granted) retrying++;
            } else if (op === 'attemptEnd' && retrying > 0) {
              retrying--;
              b._attemptEnd();
            }
            const s = b.stats;
            if (s.active !== active || s.activeRetries !== retrying) return false;
          }
          return true;
        },
      ),
    );
  });
});
