import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoff } from '../core/backoff.js';
import { ConfigError, nonRetryable, TimeoutError } from '../core/errors.js';
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
            if (s.inFlight !== active || s.retriesInFlight !== retrying) return false;
          }
          return true;
        },
      ),
    );
  });
});

describe('retryBudget.ratioTokens (Brooker) against an exact reference model', () => {
  // The model counts in hundredths of a token with integers: ratio = k / 100, no rounding error.
  const setup = fc.record({
    k: fc.integer({ min: 1, max: 100 }),
    capacity: fc.integer({ min: 1, max: 20 }),
    initialPct: fc.integer({ min: 0, max: 100 }), // share of capacity in the bucket at start
  });
  const bucketOf = (s: { k: number; capacity: number; initialPct: number }) => {
    const initial100 = Math.floor((s.capacity * 100 * s.initialPct) / 100);
    const budget = retryBudget.ratioTokens({
      ratio: s.k / 100,
      capacity: s.capacity,
      initial: initial100 / 100,
    });
    return { budget, initial100, cap100: s.capacity * 100 };
  };

  it('grants exactly what the model grants, and retries <= ratio × executions + initial (any interleaving)', () => {
    fc.assert(
      fc.property(
        setup,
        fc.array(fc.constantFrom('begin', 'end', 'acquire', 'attemptEnd'), { maxLength: 300 }),
        (s, ops) => {
          const { budget, initial100, cap100 } = bucketOf(s);
          let tokens100 = initial100;
          let active = 0;
          let holding = 0;
          let executions = 0;
          let granted = 0;
          for (const op of ops) {
            if (op === 'begin') {
              active++;
              executions++;
              tokens100 = Math.min(cap100, tokens100 + s.k);
              budget._begin();
            } else if (op === 'end' && active > holding) {
              active--;
              budget._end(executions % 2 === 0, 1); // successes refund nothing
            } else if (op === 'acquire' && active > 0) {
              const cost = budget._acquire(new Error('503'));
              const expected = tokens100 >= 100;
              if (cost >= 0 !== expected) return false;
              if (expected) {
                if (cost !== 1) return false;
                tokens100 -= 100;
                granted++;
                holding++;
              }
            } else if (op === 'attemptEnd' && holding > 0) {
              holding--;
              budget._attemptEnd();
            }
            const st = budget.stats;
            if (Math.abs(st.available - tokens100 / 100) > 1e-9 || st.granted !== granted) return false;
            // the bound, exactly: 100 × granted <= k × executions + 100 × initial
            if (100 * granted > s.k * executions + initial100) return false;
          }
          return true;
        },
      ),
      { numRuns: 200 },
    );
  });

  it('through retry(): outcomes and attempts match the model; under a 100 % failing dependency attempts <= (1 + ratio) × executions + initial', async () => {
    const execution = fc.record({
      failures: fc.integer({ min: 0, max: 6 }), // failed attempts before success (or for ever)
      succeeds: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(
        setup,
        fc.array(execution, { maxLength: 40 }),
        fc.integer({ min: 1, max: 6 }),
        fc.boolean(),
        async (s, runs, maxAttempts, allFail) => {
          const { budget, initial100, cap100 } = bucketOf(s);
          const policy = retry({ maxAttempts, backoff: backoff.constant(0), budget });
          let tokens100 = initial100;
          let attemptsTotal = 0;
          for (const run of runs) {
            const succeeds = run.succeeds && !allFail;
            // model
            tokens100 = Math.min(cap100, tokens100 + s.k);
            let attempts = 0;
            let outcome: 'ok' | 'fail' = 'fail';
            for (;;) {
              attempts++;
              if (succeeds && attempts > run.failures) {
                outcome = 'ok';
                break;
              }
              if (attempts >= maxAttempts || tokens100 < 100) break;
              tokens100 -= 100;
            }
            // system
            let n = 0;
            const result = await policy
              .execute(() => {
                n++;
                if (succeeds && n > run.failures) return 'ok';
                throw Object.assign(new Error('503'), { status: 503 });
              })
              .then(
                () => 'ok',
                () => 'fail',
              );
            attemptsTotal += n;
            if (result !== outcome || n !== attempts) return false;
            if (Math.abs(budget.stats.available - tokens100 / 100) > 1e-9) return false;
          }
          const { granted } = budget.stats;
          if (100 * granted > s.k * runs.length + initial100) return false;
          if (allFail && 100 * attemptsTotal > (100 + s.k) * runs.length + initial100) return false;
          return true;
        },
      ),
      { numRuns: 100 },
    );
  });

  it('with 20 % and an empty bucket of 10, a failing dependency gets <= 1.2 attempts per request', async () => {
    const budget = retryBudget.ratioTokens({ ratio: 0.2, capacity: 10 });
    const policy = retry({ maxAttempts: 4, backoff: backoff.constant(0), budget });
    let attempts = 0;
    const fail = async () => {
      attempts++;
      throw new Error('down');
    };
    const wave = (n: number) => {
      const all: Promise<unknown>[] = [];
      for (let i = 0; i < n; i++) all.push(policy.execute(fail).catch(() => undefined));
      return Promise.all(all);
    };
    // 20 waves of 50 concurrent requests: each wave deposits 10 tokens, which pay for 10 retries.
    for (let w = 0; w < 20; w++) await wave(50);
    expect(attempts).toBe(1_200);
    expect(budget.stats).toMatchObject({ available: 0, granted: 200 });
    // 1 000 requests at once: the capacity caps the burst at 10 retries.
    attempts = 0;
    await wave(1_000);
    expect(attempts).toBe(1_010);
  });

  it('10 deposits of 0.1 pay for one retry (no floating-point shortfall); defaults 0.2, 10, empty', () => {
    const b = retryBudget.ratioTokens({ ratio: 0.1 });
    for (let i = 0; i < 10; i++) b._begin();
    expect(b._acquire(new TimeoutError(1))).toBe(1);
    expect(b._acquire(new Error('x'))).toBe(-1);
    const d = retryBudget.ratioTokens();
    expect(d.stats).toEqual({ algorithm: 'tokens', capacity: 10, available: 0, granted: 0, refused: 0 });
    for (let i = 0; i < 100; i++) d._begin();
    expect(d.stats.available).toBe(10); // capped
    d._end(true, 1);
    expect(d.stats.available).toBe(10);
    expect(retryBudget.ratioTokens({ initial: 4 }).stats.available).toBe(4);
  });

  it('validates its options with ConfigError naming the option', () => {
    const option = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as ConfigError).option;
      }
      return undefined;
    };
    expect(option(() => retryBudget.ratioTokens({ ratio: 0 }))).toBe('retryBudget.ratioTokens.ratio');
    expect(option(() => retryBudget.ratioTokens({ ratio: 1.5 }))).toBe('retryBudget.ratioTokens.ratio');
    expect(option(() => retryBudget.ratioTokens({ capacity: 0.5 }))).toBe('retryBudget.ratioTokens.capacity');
    expect(option(() => retryBudget.ratioTokens({ capacity: Number.POSITIVE_INFINITY }))).toBe(
      'retryBudget.ratioTokens.capacity',
    );
    expect(option(() => retryBudget.ratioTokens({ initial: -1 }))).toBe('retryBudget.ratioTokens.initial');
    expect(option(() => retryBudget.ratioTokens({ capacity: 5, initial: 6 }))).toBe(
      'retryBudget.ratioTokens.initial',
    );
    expect(option(() => retryBudget.ratioTokens({ retryCost: 1 } as never))).toBe(
      'retryBudget.ratioTokens.retryCost',
    );
    expect(option(() => retryBudget.ratioTokens(null as never))).toBe('retryBudget.ratioTokens');
  });
});

describe('retryBudget.tokens: refunds', () => {
  it('a success refunds the cost of its last retry even when that cost was 0, and noRetryIncrement without a retry', () => {
    const b = retryBudget.tokens({
      capacity: 10,
      retryCost: 5,
      noRetryIncrement: 1,
      costOf: (f) => (f === 'free' ? 0 : 5),
    });
    b._begin();
    expect(b._acquire('x')).toBe(5);
    expect(b._acquire('free')).toBe(0);
    expect(b.stats.available).toBe(5);
    b._end(true, 0); // its last retry cost 0: refunds 0 (AWS), not noRetryIncrement
    expect(b.stats.available).toBe(5);
    b._begin();
    b._end(true, -1); // no retry: + noRetryIncrement
    expect(b.stats.available).toBe(6);
  });
});
