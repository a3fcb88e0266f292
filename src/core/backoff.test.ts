import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Backoff,
  backoff,
  ConfigError,
  type Context,
  type Jitter,
  type RandomSource,
} from '../index.js';
import { fixedRandom, seededRandom } from '../testing/index.js';

/** The first `n` delays of a fresh sequence. */
function take(b: Backoff, n: number, random: RandomSource = Math.random, ctx?: Context): number[] {
  const seq = b.start(ctx, random);
  return Array.from({ length: n }, () => seq.next());
}

function ctxOf(priority: string, props: Record<string, unknown> = {}): Context {
  return { signal: new AbortController().signal, attempt: 1, priority, name: undefined, props };
}

/** Reference for decorrelated-v2 (limits.md): t = n + U; f(t) = factor^t·tanh(√(4t)); delay = min((f(t) − f(prev))/1.4·initial, max). */
function v2Reference(initial: number, max: number, factor: number, randoms: number[]): number[] {
  let prev = 0;
  return randoms.map((u, n) => {
    const t = n + u;
    const f = factor ** t * Math.tanh(Math.sqrt(4 * t));
    const d = Math.min(((f - prev) / 1.4) * initial, max);
    prev = f;
    return d;
  });
}

describe('backoff.constant', () => {
  it('gives the same delay every time, as a number or as { delay }', () => {
    expect(take(backoff.constant(250), 5)).toEqual([250, 250, 250, 250, 250]);
    expect(take(backoff.constant({ delayMs: 40 }), 3)).toEqual([40, 40, 40]);
    expect(take(backoff.constant(0), 2)).toEqual([0, 0]);
  });

  it("jitter 'none' is the default and ignores the random source", () => {
    let calls = 0;
    const r = () => {
      calls++;
      return 0.5;
    };
    expect(take(backoff.constant({ delayMs: 100, jitter: 'none' }), 3, r)).toEqual([100, 100, 100]);
    expect(calls).toBe(0);
  });

  it("jitter 'full' is U(0, delay)", () => {
    expect(
      take(backoff.constant({ delayMs: 200, jitter: 'full' }), 4, fixedRandom(0, 0.25, 0.5, 0.999)),
    ).toEqual([0, 50, 100, 199.8]);
  });

  it("jitter 'equal' is delay/2 + U(0, delay/2)", () => {
    expect(take(backoff.constant({ delayMs: 200, jitter: 'equal' }), 3, fixedRandom(0, 0.5, 0.999))).toEqual([
      100, 150, 199.9,
    ]);
  });

  it('the delay may be a function of the context, read once per sequence', () => {
    let reads = 0;
    const b = backoff.constant((ctx) => {
      reads++;
      return ctx.priority === 'critical' ? 10 : 1_000;
    });
    expect(take(b, 3, Math.random, ctxOf('critical'))).toEqual([10, 10, 10]);
    expect(take(b, 2, Math.random, ctxOf('low'))).toEqual([1_000, 1_000]);
    expect(reads).toBe(2);
    expect(take(b, 1)).toEqual([1_000]); // no context: priority 'normal'
  });

  it('validates its options', () => {
    expect(() => backoff.constant(-1)).toThrow(
      'backoff.constant.delayMs must be a finite number >= 0 (got -1)',
    );
    expect(() => backoff.constant(Number.NaN)).toThrow(ConfigError);
    expect(() => backoff.constant(Number.POSITIVE_INFINITY)).toThrow(ConfigError);
    expect(() => backoff.constant({} as never)).toThrow(
      'backoff.constant.delayMs must be a finite number >= 0 (the delay is required) (got undefined)',
    );
    expect(() => backoff.constant({ delayMs: 1, jitter: 'decorrelated' as never })).toThrow(
      `backoff.constant.jitter must be one of 'none', 'full', 'equal' (got "decorrelated")`,
    );
    expect(() => backoff.constant({ delayMs: 1, jitter: 'decorrelated-v2' as never })).toThrow(ConfigError);
    expect(() => backoff.constant({ delayMs: 1, jiter: 'full' } as never)).toThrow(
      expect.objectContaining({
        option: 'backoff.constant.jiter',
        code: 'UNKNOWN_OPTION',
        suggestion: 'jitter',
      }),
    );
    expect(() => backoff.constant('100' as never)).toThrow(
      'backoff.constant must be an options object (got "100")',
    );
  });

  it('a dynamic delay returning a bad value throws a ConfigError naming the function', () => {
    const b = backoff.constant(() => -5);
    expect(() => b.start(undefined, Math.random)).toThrow(
      'backoff.constant.delayMs(ctx) must be a finite number >= 0 (got -5)',
    );
  });
});

describe('backoff.linear', () => {
  it('defaults: initial 100, step = initial, max 30 000, no jitter', () => {
    expect(take(backoff.linear(), 4)).toEqual([100, 200, 300, 400]);
    const seq = take(backoff.linear(), 400);
    expect(seq[298]).toBe(29_900);
    expect(seq[299]).toBe(30_000);
    expect(seq[399]).toBe(30_000);
  });

  it('is initial + step·n, capped at max', () => {
    expect(take(backoff.linear({ initialMs: 50, stepMs: 20, maxMs: 100 }), 6)).toEqual([
      50, 70, 90, 100, 100, 100,
    ]);
    expect(take(backoff.linear({ initialMs: 0, stepMs: 10 }), 3)).toEqual([0, 10, 20]);
    expect(take(backoff.linear({ initialMs: 30, stepMs: 0 }), 3)).toEqual([30, 30, 30]);
  });

  it('an initial above max is capped at max', () => {
    expect(take(backoff.linear({ initialMs: 500, maxMs: 200 }), 2)).toEqual([200, 200]);
  });

  it("jitter 'full' is U(0, min(max, initial + step·n))", () => {
    const b = backoff.linear({ initialMs: 100, stepMs: 100, maxMs: 250, jitter: 'full' });
    expect(take(b, 4, fixedRandom(0.5, 0.5, 0.5, 0.1))).toEqual([50, 100, 125, 25]);
  });

  it("jitter 'equal' is v/2 + U(0, v/2)", () => {
    const b = backoff.linear({ initialMs: 100, stepMs: 100, maxMs: 1_000, jitter: 'equal' });
    expect(take(b, 3, fixedRandom(0, 0.5, 1))).toEqual([50, 150, 300]);
  });

  it('every option may be a function of the context', () => {
    const b = backoff.linear({
      initialMs: (ctx) => (ctx.priority === 'critical' ? 10 : 100),
      stepMs: (ctx) => (ctx.props.fast ? 1 : 50),
      maxMs: () => 120,
    });
    expect(take(b, 4, Math.random, ctxOf('critical', { fast: true }))).toEqual([10, 11, 12, 13]);
    expect(take(b, 3, Math.random, ctxOf('normal'))).toEqual([100, 120, 120]);
  });

  it('validates its options, rejecting the decorrelated jitters', () => {
    expect(() => backoff.linear({ jitter: 'decorrelated' as never })).toThrow(
      `backoff.linear.jitter must be one of 'none', 'full', 'equal' (got "decorrelated")`,
    );
    expect(() => backoff.linear({ jitter: 'decorrelated-v2' as never })).toThrow(ConfigError);
    expect(() => backoff.linear({ initialMs: -1 })).toThrow(
      'backoff.linear.initialMs must be a finite number >= 0 (got -1)',
    );
    expect(() => backoff.linear({ stepMs: Number.NaN })).toThrow(
      'backoff.linear.stepMs must be a finite number >= 0 (got NaN)',
    );
    expect(() => backoff.linear({ maxMs: -1 })).toThrow(
      'backoff.linear.maxMs must be a number >= 0 (got -1)',
    );
    expect(() => backoff.linear({ setp: 1 } as never)).toThrow(
      expect.objectContaining({ option: 'backoff.linear.setp' }),
    );
    expect(() => backoff.linear(null as never)).toThrow(
      'backoff.linear must be an options object (got null)',
    );
    expect(() => backoff.linear({ initialMs: '5' as never })).toThrow(
      'backoff.linear.initialMs must be a finite number >= 0 (got "5")',
    );
  });
});

describe('backoff.exponential', () => {
  it("defaults: initial 100, factor 2, max 30 000, jitter 'full'", () => {
    expect(take(backoff.exponential(), 4, fixedRandom(1))).toEqual([100, 200, 400, 800]);
    expect(take(backoff.exponential(), 3, fixedRandom(0.5))).toEqual([50, 100, 200]);
    const capped = take(backoff.exponential(), 12, fixedRandom(1));
    expect(capped[8]).toBe(25_600);
    expect(capped[9]).toBe(30_000);
    expect(capped[11]).toBe(30_000);
  });

  it("jitter 'none' is min(max, initial·factor^n)", () => {
    const b = backoff.exponential({ initialMs: 10, factor: 3, maxMs: 1_000, jitter: 'none' });
    expect(take(b, 6)).toEqual([10, 30, 90, 270, 810, 1_000]);
    expect(take(backoff.exponential({ initialMs: 100, factor: 1, jitter: 'none' }), 3)).toEqual([
      100, 100, 100,
    ]);
  });

  it("jitter 'full' is U(0, min(max, initial·factor^n))", () => {
    const b = backoff.exponential({ initialMs: 100, maxMs: 1_000, jitter: 'full' });
    const r = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
    expect(take(b, 6, fixedRandom(...r))).toEqual([10, 40, 120, 320, 500, 600]);
  });

  it("jitter 'equal' is v/2 + U(0, v/2) with v = min(max, initial·factor^n)", () => {
    const b = backoff.exponential({ initialMs: 100, maxMs: 1_000, jitter: 'equal' });
    expect(take(b, 5, fixedRandom(0, 0.5, 1, 0.5, 0))).toEqual([50, 150, 400, 600, 500]);
  });

  it("jitter 'decorrelated' is sleep = min(max, U(initial, 3·sleep)), starting from sleep = initial", () => {
    const b = backoff.exponential({ initialMs: 100, maxMs: 1_000, jitter: 'decorrelated' });
    // 100 + 0.5·(300 − 100) = 200; 100 + 0.5·(600 − 100) = 350; 100 + 0.5·(1050 − 100) = 575; then 100 + 0.5·1625 > 1000
    expect(take(b, 5, fixedRandom(0.5))).toEqual([200, 350, 575, 912.5, 1_000]);
    expect(take(b, 3, fixedRandom(0))).toEqual([100, 100, 100]);
    expect(take(b, 3, fixedRandom(1))).toEqual([300, 900, 1_000]);
  });

  it("jitter 'decorrelated' ignores factor (the AWS formula has none)", () => {
    const r = [0.3, 0.7, 0.2, 0.9];
    const f2 = take(
      backoff.exponential({ initialMs: 50, maxMs: 5_000, factor: 2, jitter: 'decorrelated' }),
      4,
      fixedRandom(...r),
    );
    const f5 = take(
      backoff.exponential({ initialMs: 50, maxMs: 5_000, factor: 5, jitter: 'decorrelated' }),
      4,
      fixedRandom(...r),
    );
    expect(f5).toEqual(f2);
  });

  it("jitter 'decorrelated-v2' follows Polly's formula exactly", () => {
    const r = [0.5, 0.1, 0.9, 0.3, 0.7, 0.05, 0.95, 0.5];
    const b = backoff.exponential({ initialMs: 100, maxMs: 60_000, jitter: 'decorrelated-v2' });
    const got = take(b, r.length, fixedRandom(...r));
    const want = v2Reference(100, 60_000, 2, r);
    got.forEach((d, i) => {
      expect(d).toBeCloseTo(want[i]!, 9);
    });
    // anchor: t = 0.5 → 2^0.5·tanh(√2)/1.4·100 ≈ 89.74
    expect(got[0]).toBeCloseTo(89.74, 2);
  });

  it("jitter 'decorrelated-v2' uses factor as the exponent base", () => {
    const r = [0.4, 0.6, 0.2];
    const got = take(
      backoff.exponential({ initialMs: 10, factor: 3, maxMs: 1e9, jitter: 'decorrelated-v2' }),
      3,
      fixedRandom(...r),
    );
    const want = v2Reference(10, 1e9, 3, r);
    got.forEach((d, i) => {
      expect(d).toBeCloseTo(want[i]!, 9);
    });
  });

  it("jitter 'decorrelated-v2' stays at max once factor^t overflows to Infinity (no NaN)", () => {
    const b = backoff.exponential({ initialMs: 100, maxMs: 5_000, jitter: 'decorrelated-v2' });
    const seq = take(b, 1_100, fixedRandom(0.5));
    expect(seq.slice(1_030)).toEqual(new Array(70).fill(5_000));
  });

  it('a huge number of retries never overflows to NaN or Infinity', () => {
    for (const jitter of ['none', 'full', 'equal', 'decorrelated', 'decorrelated-v2'] as const) {
      const seq = take(backoff.exponential({ initialMs: 100, maxMs: 1_000, jitter }), 3_000, seededRandom(1));
      for (const d of seq) {
        expect(Number.isFinite(d)).toBe(true);
        expect(d).toBeLessThanOrEqual(1_000);
      }
      expect(seq[2_999]).toBeGreaterThanOrEqual(0);
    }
  });

  it('an initial of 0 gives 0 (not NaN) even after factor^n overflows', () => {
    const seq = take(backoff.exponential({ initialMs: 0, maxMs: 100, jitter: 'none' }), 1_200);
    expect(new Set(seq)).toEqual(new Set([0]));
  });

  it('max 0 makes every delay 0', () => {
    for (const jitter of ['none', 'full', 'equal', 'decorrelated', 'decorrelated-v2'] as const) {
      expect(take(backoff.exponential({ maxMs: 0, jitter }), 5, seededRandom(3))).toEqual([0, 0, 0, 0, 0]);
    }
  });

  it('every option may be a function of the context (a tier-aware backoff is one backoff)', () => {
    const b = backoff.exponential({
      initialMs: (ctx) => (ctx.priority === 'critical' ? 100 : 500),
      maxMs: (ctx) => (ctx.priority === 'critical' ? 1_000 : 60_000),
      factor: (ctx) => (ctx.props.gentle ? 1.5 : 2),
      jitter: 'none',
    });
    expect(take(b, 5, Math.random, ctxOf('critical'))).toEqual([100, 200, 400, 800, 1_000]);
    expect(take(b, 3, Math.random, ctxOf('normal', { gentle: true }))).toEqual([500, 750, 1_125]);
    expect(take(b, 2)).toEqual([500, 1_000]);
  });

  it('a dynamic option returning a bad value throws a ConfigError naming the function', () => {
    const bad = backoff.exponential({ factor: () => 0.5 });
    expect(() => bad.start(undefined, Math.random)).toThrow(
      'backoff.exponential.factor(ctx) must be a finite number >= 1 (got 0.5)',
    );
    const notNumber = backoff.exponential({ initialMs: () => '100' as unknown as number });
    expect(() => notNumber.start(undefined, Math.random)).toThrow(
      expect.objectContaining({ option: 'backoff.exponential.initialMs(ctx)', code: 'INVALID_OPTION' }),
    );
  });

  it('validates its options', () => {
    expect(() => backoff.exponential({ factor: 0.5 })).toThrow(
      'backoff.exponential.factor must be a finite number >= 1 (got 0.5)',
    );
    expect(() => backoff.exponential({ initialMs: Number.POSITIVE_INFINITY })).toThrow(
      'backoff.exponential.initialMs must be a finite number >= 0 (got Infinity)',
    );
    expect(() => backoff.exponential({ maxMs: Number.NaN })).toThrow(
      'backoff.exponential.maxMs must be a number >= 0 (got NaN)',
    );
    expect(() => backoff.exponential({ jitter: 'random' as Jitter })).toThrow(
      `backoff.exponential.jitter must be one of 'none', 'full', 'equal', 'decorrelated', 'decorrelated-v2' (got "random")`,
    );
    expect(() => backoff.exponential({ intial: 5 } as never)).toThrow(
      expect.objectContaining({ option: 'backoff.exponential.intial' }),
    );
    expect(() => backoff.exponential([] as never)).toThrow(
      'backoff.exponential must be an options object (got an array)',
    );
  });
});

describe('backoff.delegate', () => {
  it('is called with the 1-based retry number and the context', () => {
    const calls: [number, Context | undefined][] = [];
    const b = backoff.delegate((n, ctx) => {
      calls.push([n, ctx]);
      return n * 7;
    });
    const ctx = ctxOf('high');
    expect(take(b, 3, Math.random, ctx)).toEqual([7, 14, 21]);
    expect(calls).toEqual([
      [1, ctx],
      [2, ctx],
      [3, ctx],
    ]);
  });

  it('is not called until a delay is asked for', () => {
    let calls = 0;
    const b = backoff.delegate(() => ++calls);
    b.start(undefined, Math.random);
    expect(calls).toBe(0);
  });

  it('a bad value from the function throws a ConfigError', () => {
    for (const v of [-1, Number.NaN, '10', undefined]) {
      const b = backoff.delegate(() => v as number);
      expect(() => take(b, 1)).toThrow(expect.objectContaining({ option: 'backoff.delegate(retry)' }));
    }
    expect(() =>
      take(
        backoff.delegate(() => -1),
        1,
      ),
    ).toThrow('backoff.delegate(retry) must be a number >= 0 (got -1)');
  });

  it('requires a function', () => {
    expect(() => backoff.delegate(5 as never)).toThrow(
      'backoff.delegate must be a function (retry, ctx) => ms (got 5)',
    );
  });
});

describe('sequences', () => {
  it('each start() is an independent sequence from the first delay', () => {
    const b = backoff.exponential({ initialMs: 10, jitter: 'none' });
    const a = b.start(undefined, Math.random);
    a.next();
    a.next();
    expect(b.start(undefined, Math.random).next()).toBe(10);
    expect(a.next()).toBe(40);
  });

  it('the same seeded random source gives the same delays', () => {
    for (const jitter of ['full', 'equal', 'decorrelated', 'decorrelated-v2'] as const) {
      const b = backoff.exponential({ initialMs: 100, maxMs: 10_000, jitter });
      expect(take(b, 20, seededRandom(42))).toEqual(take(b, 20, seededRandom(42)));
      expect(take(b, 20, seededRandom(42))).not.toEqual(take(b, 20, seededRandom(43)));
    }
  });
});

describe('the clamping defect of plain decorrelated jitter, and decorrelated-v2', () => {
  const INITIAL = 100;
  const MAX = 10_000;
  const decorrelated = backoff.exponential({ initialMs: INITIAL, maxMs: MAX, jitter: 'decorrelated' });
  const v2 = backoff.exponential({ initialMs: INITIAL, maxMs: MAX, jitter: 'decorrelated-v2' });

  it('decorrelated: once a delay is clamped to max, about 2/3 of the next delays are exactly max again', () => {
    // The clamped value feeds the next draw U(initial, 3·max), so P(max again) = 2·max/(3·max − initial).
    const expected = (2 * MAX) / (3 * MAX - INITIAL);
    const random = seededRandom(1);
    let afterMax = 0;
    let maxAgain = 0;
    let atMax = 0;
    let total = 0;
    for (let run = 0; run < 200; run++) {
      const seq = take(decorrelated, 200, random);
      for (let i = 0; i < seq.length; i++) {
        total++;
        if (seq[i] === MAX) atMax++;
        if (i > 0 && seq[i - 1] === MAX) {
          afterMax++;
          if (seq[i] === MAX) maxAgain++;
        }
      }
    }
    expect(maxAgain / afterMax).toBeGreaterThan(expected - 0.03);
    expect(maxAgain / afterMax).toBeLessThan(expected + 0.03);
    // a spike: a large share of all delays is the one identical value max (clients re-synchronise there)
    expect(atMax / total).toBeGreaterThan(0.25);
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('decorrelated: after reaching max it scatters back towards initial (the backoff is forgotten)', () => {
    const random = seededRandom(2);
    let after = 0;
    let low = 0;
    for (let run = 0; run < 200; run++) {
      const seq = take(decorrelated, 200, random);
      const first = seq.indexOf(MAX);
      if (first < 0) continue;
      for (const d of seq.slice(first + 1)) {
        after++;
        if (d < MAX / 4) low++;
      }
    }
    expect(low / after).toBeGreaterThan(0.25);
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it("decorrelated reaches max while the exponential envelope is far below it; decorrelated-v2 doesn't", () => {
    // v2's delay at retry n (0-based) is at most factor^(n+1)/1.4·initial: below max for n <= 5 here.
    const random = seededRandom(3);
    let decorrelatedAtMax = 0;
    let v2AtMax = 0;
    for (let run = 0; run < 2_000; run++) {
      decorrelatedAtMax += take(decorrelated, 6, random).filter((d) => d === MAX).length;
      v2AtMax += take(v2, 6, random).filter((d) => d === MAX).length;
    }
    expect(decorrelatedAtMax).toBeGreaterThan(20);
    expect(v2AtMax).toBe(0);
  });

  it('decorrelated-v2: the median delay grows by the factor each retry (exponential backoff on average)', () => {
    const runs = 2_001;
    const columns: number[][] = Array.from({ length: 9 }, () => []);
    const random = seededRandom(4);
    const b = backoff.exponential({ initialMs: INITIAL, maxMs: 1e12, jitter: 'decorrelated-v2' });
    for (let run = 0; run < runs; run++) {
      take(b, 9, random).forEach((d, i) => {
        columns[i]!.push(d);
      });
    }
    const medians = columns.map((c) => c.sort((x, y) => x - y)[(runs - 1) / 2]!);
    for (let n = 2; n < medians.length; n++) {
      const ratio = medians[n]! / medians[n - 1]!;
      expect(ratio).toBeGreaterThan(1.7);
      expect(ratio).toBeLessThan(2.3);
    }
    expect(medians[0]).toBeGreaterThan(0.6 * INITIAL);
    expect(medians[0]).toBeLessThan(1.2 * INITIAL);
  });

  it('decorrelated-v2 is still a capped exponential: with many retries it settles at max', () => {
    const seq = take(v2, 60, seededRandom(5));
    expect(seq.slice(20).every((d) => d === MAX)).toBe(true);
  });
});

describe('property: every delay is finite, >= 0 and <= max', () => {
  const unit = fc.double({ min: 0, max: 1, noNaN: true });
  const randomSource = fc.oneof(
    fc.integer().map((seed) => ({ label: `seeded(${seed})`, make: () => seededRandom(seed) })),
    fc.array(unit, { minLength: 1, maxLength: 20 }).map((values) => ({
      label: `fixed(${values.join(',')})`,
      make: () => fixedRandom(...values),
    })),
    fc.constantFrom(
      { label: 'zero', make: () => fixedRandom(0) },
      { label: 'almost one', make: () => fixedRandom(1 - Number.EPSILON) },
      { label: 'one', make: () => fixedRandom(1) },
    ),
  );
  const ms = fc.oneof(fc.double({ min: 0, max: 1e7, noNaN: true }), fc.constantFrom(0, 1, 100, 30_000));
  const maxMs = fc.oneof(fc.double({ min: 0, max: 1e9, noNaN: true }), fc.constantFrom(0, 1, 30_000));
  const plain = fc.constantFrom<'none' | 'full' | 'equal'>('none', 'full', 'equal');
  const anyJitter = fc.constantFrom<Jitter>('none', 'full', 'equal', 'decorrelated', 'decorrelated-v2');

  const kind = fc.oneof(
    fc
      .record({ delayMs: ms, jitter: plain })
      .map((o) => ({ backoff: backoff.constant(o), max: o.delayMs, o })),
    fc
      .record({ initialMs: ms, stepMs: ms, maxMs: maxMs, jitter: plain })
      .map((o) => ({ backoff: backoff.linear(o), max: o.maxMs, o })),
    fc
      .record({
        initialMs: ms,
        maxMs: maxMs,
        factor: fc.double({ min: 1, max: 10, noNaN: true }),
        jitter: anyJitter,
      })
      .map((o) => ({ backoff: backoff.exponential(o), max: o.maxMs, o })),
  );

  it('for random kinds, options, jitters, random sources and many steps', () => {
    fc.assert(
      fc.property(
        kind,
        randomSource,
        fc.integer({ min: 1, max: 1_200 }),
        ({ backoff: b, max }, source, steps) => {
          const seq = b.start(undefined, source.make());
          for (let i = 0; i < steps; i++) {
            const d = seq.next();
            if (!(Number.isFinite(d) && d >= 0 && d <= max)) {
              throw new Error(`delay ${i} was ${d} (max ${max}, random ${source.label})`);
            }
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
