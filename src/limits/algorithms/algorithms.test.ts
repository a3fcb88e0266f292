import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createFakeClock } from '../../testing/index.js';
import { type RateLimitSpec, rateLimiter } from '../rate-limiter.js';

/** A run: steps of (time advance, cost). */
const steps = (maxDt: number, maxCost: number) =>
  fc.array(
    fc.record({ dt: fc.integer({ min: 0, max: maxDt }), cost: fc.integer({ min: 0, max: maxCost }) }),
    {
      minLength: 1,
      maxLength: 300,
    },
  );

interface Grant {
  readonly t: number;
  readonly cost: number;
}

/** Runs the steps against a one-limit limiter; returns each decision with its time. */
function drive(spec: RateLimitSpec, run: readonly { dt: number; cost: number }[], start = 0) {
  const clock = createFakeClock({ now: start });
  const l = rateLimiter({ limits: [spec], clock });
  const out: { t: number; cost: number; allowed: boolean; retryAfterMs: number; remaining: number }[] = [];
  for (const s of run) {
    clock.tickSync(s.dt);
    const d = l.consume('k', s.cost);
    out.push({
      t: clock.now(),
      cost: s.cost,
      allowed: d.allowed,
      retryAfterMs: d.retryAfterMs,
      remaining: d.remaining,
    });
  }
  return out;
}

const sum = (gs: readonly Grant[], from: number, to: number) =>
  gs.filter((g) => g.t > from && g.t <= to).reduce((a, g) => a + g.cost, 0);

describe('fixed window (property, reference model)', () => {
  it('grants exactly what the model grants, never more than the limit per aligned window', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 500 }),
        steps(200, 5),
        (limit, windowMs, run) => {
          const got = drive({ algorithm: 'fixed-window', limit, windowMs }, run);
          const perWindow = new Map<number, number>();
          for (const d of got) {
            const w = Math.floor(d.t / windowMs);
            const used = perWindow.get(w) ?? 0;
            const model = used + d.cost <= limit;
            expect(d.allowed).toBe(model);
            if (model) perWindow.set(w, used + d.cost);
            expect(perWindow.get(w) ?? 0).toBeLessThanOrEqual(limit);
          }
        },
      ),
    );
  });
});

// Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
// each test spells out its own scenario.
describe('sliding-window log (property, reference model)', () => {
  it('grants exactly what the model grants; any window of length W holds <= limit', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 500 }),
        steps(100, 4),
        (limit, windowMs, run) => {
          const got = drive({ algorithm: 'sliding-window-log', limit, windowMs }, run);
          const grants: Grant[] = [];
          for (const d of got) {
            const model = sum(grants, d.t - windowMs, d.t) + d.cost <= limit;
            expect(d.allowed).toBe(model);
            if (model) grants.push({ t: d.t, cost: d.cost });
          }
          // Any window (s − W, s] anchored on a grant.
          for (const g of grants) expect(sum(grants, g.t - windowMs, g.t)).toBeLessThanOrEqual(limit);
        },
      ),
    );
  });
});

// Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
// each test spells out its own scenario.
describe('sliding-window counter (property, reference model)', () => {
  it('grants exactly per its estimate formula, and the estimate never exceeds the limit', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 500 }),
        steps(200, 4),
        (limit, windowMs, run) => {
          const got = drive({ algorithm: 'sliding-window-counter', limit, windowMs }, run);
          const grants: Grant[] = [];
          const estimate = (t: number) => {
            const start = Math.floor(t / windowMs) * windowMs;
            const curr = sum(grants, start - 1e-9, t);
            const prev = grants
              .filter((g) => g.t >= start - windowMs && g.t < start)
              .reduce((a, g) => a + g.cost, 0);
            return Math.floor(prev * (1 - (t - start) / windowMs)) + curr;
          };
          for (const d of got) {
            const model = estimate(d.t) + d.cost <= limit;
            expect(d.allowed).toBe(model);
            if (model) grants.push({ t: d.t, cost: d.cost });
            expect(estimate(d.t)).toBeLessThanOrEqual(limit);
          }
        },
      ),
    );
  });
});

describe('token bucket (property)', () => {
  it('over any interval t grants <= capacity + rate·t, and matches the continuous-refill model', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 50 }),
        steps(300, 5),
        (capacity, rate, run) => {
          const got = drive({ algorithm: 'token-bucket', capacity, refillRate: rate }, run);
          let tokens = capacity;
          let last = 0;
          const grants: Grant[] = [];
          for (const d of got) {
            tokens = Math.min(capacity, tokens + ((d.t - last) * rate) / 1000);
            last = d.t;
            const model = tokens >= d.cost;
            expect(d.allowed).toBe(model);
            if (model) {
              tokens -= d.cost;
              grants.push({ t: d.t, cost: d.cost });
            }
          }
          for (let i = 0; i < grants.length; i++) {
            let total = 0;
            for (let j = i; j < grants.length; j++) {
              total += grants[j]!.cost;
              const t = grants[j]!.t - grants[i]!.t;
              expect(total).toBeLessThanOrEqual(capacity + (rate * t) / 1000 + 1e-9);
            }
          }
        },
      ),
    );
  });
});

describe('GCRA (redis-cell)', () => {
  it('a saturating client is admitted exactly burst + 1 + ⌊t/T⌋ times in [0, t]', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 0, max: 10 }),
        fc.integer({ min: 0, max: 2_000 }),
        fc.integer({ min: 0, max: 10_000 }),
        (rate, T, burst, t, start) => {
          const clock = createFakeClock({ now: start });
          const l = rateLimiter({ limits: [{ algorithm: 'gcra', rate, periodMs: rate * T, burst }], clock });
          let admitted = 0;
          for (let ms = 0; ms <= t; ms++) {
            while (l.consume('k').allowed) admitted++;
            if (ms < t) clock.tickSync(1);
          }
          expect(admitted).toBe(burst + 1 + Math.floor(t / T));
        },
      ),
    );
  });

  it('matches the redis-cell formulas step by step, and never exceeds burst + 1 + t/T in any interval', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 0, max: 5 }),
        steps(60, 3),
        (rate, T, burst, run) => {
          const got = drive({ algorithm: 'gcra', rate, periodMs: rate * T, burst }, run);
          const tau = T * (burst + 1);
          let tat = 0;
          const grants: Grant[] = [];
          for (const d of got) {
            const newTat = Math.max(tat, d.t) + T * d.cost;
            const allow = d.t >= newTat - tau;
            expect(d.allowed).toBe(allow);
            if (allow) {
              tat = newTat;
              expect(d.remaining).toBe(Math.max(0, Math.floor((tau - (newTat - d.t)) / T)));
              grants.push({ t: d.t, cost: d.cost });
            } else if (T * d.cost <= tau) {
              expect(d.retryAfterMs).toBeCloseTo(newTat - tau - d.t, 9);
            } else expect(d.retryAfterMs).toBe(Number.POSITIVE_INFINITY);
          }
          for (let i = 0; i < grants.length; i++) {
            let total = 0;
            for (let j = i; j < grants.length; j++) {
              total += grants[j]!.cost;
              expect(total).toBeLessThanOrEqual(burst + 1 + (grants[j]!.t - grants[i]!.t) / T);
            }
          }
        },
      ),
    );
  });
});

const specs: fc.Arbitrary<RateLimitSpec> = fc.oneof(
  fc.record({
    algorithm: fc.constant('token-bucket' as const),
    capacity: fc.integer({ min: 1, max: 10 }),
    refillRate: fc.integer({ min: 1, max: 20 }),
  }),
  fc.record({
    algorithm: fc.constant('gcra' as const),
    rate: fc.integer({ min: 1, max: 10 }),
    periodMs: fc.integer({ min: 1, max: 1_000 }),
    burst: fc.integer({ min: 0, max: 5 }),
  }),
  fc.record({
    algorithm: fc.constantFrom(
      'fixed-window' as const,
      'sliding-window-counter' as const,
      'sliding-window-log' as const,
    ),
    limit: fc.integer({ min: 1, max: 10 }),
    windowMs: fc.integer({ min: 1, max: 1_000 }),
  }),
);

describe('every algorithm', () => {
  it('retryAfterMs is honest: a rejected call of the same cost fits after waiting it (and not much before)', () => {
    fc.assert(
      fc.property(specs, steps(100, 3), (spec, run) => {
        const clock = createFakeClock({ now: 12_345 });
        const l = rateLimiter({ limits: [spec], clock });
        for (const s of run) {
          clock.tickSync(s.dt);
          const d = l.consume('k', s.cost);
          if (d.allowed) {
            expect(d.retryAfterMs).toBe(0);
            continue;
          }
          expect(d.retryAfterMs).toBeGreaterThan(0);
          if (!Number.isFinite(d.retryAfterMs)) continue;
          // Waiting retryAfterMs (rounded up to the next ms) admits the same call.
          const wait = Math.ceil(d.retryAfterMs);
          clock.tickSync(wait);
          expect(l.peek('k', s.cost).allowed).toBe(true);
        }
      }),
    );
  });

  it('several limits at once: a call any limit rejects spends nothing in the others', () => {
    fc.assert(
      fc.property(fc.array(specs, { minLength: 2, maxLength: 3 }), steps(100, 3), (list, run) => {
        const clock = createFakeClock({ now: 0 });
        const multi = rateLimiter({ limits: list, clock });
        const singles = list.map((s) => rateLimiter({ limits: [s], clock }));
        for (const s of run) {
          clock.tickSync(s.dt);
          const model = singles.every((x) => x.peek('k', s.cost).allowed);
          if (model) for (const x of singles) expect(x.consume('k', s.cost).allowed).toBe(true);
          const d = multi.consume('k', s.cost);
          expect(d.allowed).toBe(model);
        }
      }),
    );
  });
});
