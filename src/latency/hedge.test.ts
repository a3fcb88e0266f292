import { describe, expect, it } from 'vitest';
import { ConfigError } from '../core/errors.js';
import { handle } from '../core/handle.js';
import { pipeline } from '../core/policy.js';
import { timeout } from '../core/timeout.js';
import { createFakeClock, deferred, flushMicrotasks } from '../testing/index.js';
import { HedgeCancelledError, type HedgeEvent, hedge } from './hedge.js';

describe('hedge', () => {
  it('a call that finishes before the delay runs once and leaves no timer behind', async () => {
    const clock = createFakeClock();
    const h = hedge({ delay: 50, clock });
    const attempts: number[] = [];
    expect(
      await h.execute(({ attempt }) => {
        attempts.push(attempt);
        return 'a';
      }),
    ).toBe('a');
    expect(attempts).toEqual([1]);
    expect(clock.refed).toBe(0);
    expect(h.stats).toEqual({ executions: 1, hedges: 0, hedgeWins: 0 });
  });

  it('starts an extra attempt after the delay; the first result wins and the loser is aborted', async () => {
    const clock = createFakeClock();
    const h = hedge({ delay: 50, maxHedges: 2, clock });
    const events: HedgeEvent[] = [];
    h.onEvent((e) => events.push(e));
    const gates = [deferred<string>(), deferred<string>(), deferred<string>()];
    const signals: AbortSignal[] = [];
    const attempts: number[] = [];
    const p = h.execute(({ attempt, signal }) => {
      attempts.push(attempt);
      signals.push(signal);
      signal.addEventListener('abort', () => gates[attempt - 1]!.reject(signal.reason));
      return gates[attempt - 1]!.promise;
    });
    await clock.tick(49);
    expect(attempts).toEqual([1]);
    await clock.tick(1);
    expect(attempts).toEqual([1, 2]);
    await clock.tick(50);
    expect(attempts).toEqual([1, 2, 3]);
    gates[1]!.resolve('second');
    expect(await p).toBe('second');
    await flushMicrotasks();
    expect(signals.map((s) => s.aborted)).toEqual([true, false, true]);
    expect(signals[0]!.reason).toBeInstanceOf(HedgeCancelledError);
    expect(events.map((e) => [e.reason, e.attempt])).toEqual([
      ['delay', 2],
      ['delay', 3],
    ]);
    expect(h.stats).toEqual({ executions: 1, hedges: 2, hedgeWins: 1 });
    expect(clock.refed).toBe(0);
  });

  it('hedges at once on a handled error and rejects with the last error when all fail', async () => {
    const clock = createFakeClock();
    const h = hedge({ delay: 1_000, maxHedges: 2, clock, handle: handle.errors(TypeError) });
    let n = 0;
    await expect(
      h.execute(() => {
        n++;
        throw new TypeError(`t${n}`);
      }),
    ).rejects.toThrow('t3');
    expect(n).toBe(3);
    expect(clock.refed).toBe(0);
    // An unhandled error ends the call at once.
    // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
    // each test spells out its own scenario.
    let m = 0;
    await expect(
      h.execute(() => {
        m++;
        throw new RangeError('r');
      }),
    ).rejects.toThrow('r');
    expect(m).toBe(1);
  });

  it('a handled result starts a hedge; the acceptable one wins', async () => {
    const clock = createFakeClock();
    const h = hedge({ delay: 1_000, clock, handle: handle.results((r: number) => r < 0) });
    expect(await h.execute(({ attempt }) => (attempt === 1 ? -1 : 7))).toBe(7);
    // Every result handled: the last one is returned.
    expect(await h.execute(({ attempt }) => -attempt)).toBe(-2);
  });

  it("a caller's abort aborts every attempt and rejects at once", async () => {
    const clock = createFakeClock();
    const h = hedge({ delay: 10, clock });
    const c = new AbortController();
    const signals: AbortSignal[] = [];
    const p = h.execute(
      ({ signal }) => {
        signals.push(signal);
        return new Promise(() => {});
      },
      { signal: c.signal },
    );
    await clock.tick(10);
    c.abort(new Error('stop'));
    await expect(p).rejects.toThrow('stop');
    expect(signals.map((s) => s.aborted)).toEqual([true, true]);
    const c2 = new AbortController();
    c2.abort(new Error('already'));
    await expect(h.execute(() => 1, { signal: c2.signal })).rejects.toThrow('already');
  });

  it('takes its delay from a latency percentile once enough samples are known', async () => {
    const clock = createFakeClock();
    const h = hedge({
      delay: { quantile: 0.5, initialMs: 500, minSamples: 4, minMs: 5, maxMs: 200 },
      clock,
    });
    expect(h.delayMs).toBe(500);
    for (const ms of [10, 20, 30, 40]) await h.execute(() => clock.tick(ms));
    expect(h.delayMs).toBeGreaterThanOrEqual(20); // the sketch is within 4.4 % above, then rounded up
    expect(h.delayMs).toBeLessThanOrEqual(21);
    for (let i = 0; i < 8; i++) await h.execute(() => clock.tick(1_000 + i)).catch(() => {});
    expect(h.delayMs).toBe(200); // clamped
  });

  it('delay 0 starts every attempt at once; works inside a pipeline with a timeout', async () => {
    const clock = createFakeClock();
    const h = hedge({ delay: 0, maxHedges: 2, clock });
    const attempts: number[] = [];
    const p = pipeline(timeout({ timeoutMs: 100, clock }), h);
    const r = await p.execute(({ attempt }) => {
      attempts.push(attempt);
      return attempt === 3 ? 3 : new Promise<number>(() => {});
    });
    expect(r).toBe(3);
    expect(attempts).toEqual([1, 2, 3]);
  });

  it('losers that reject later cause no unhandled rejection', async () => {
    const clock = createFakeClock();
    const h = hedge({ delay: 5, clock });
    const unhandled: unknown[] = [];
    const on = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', on);
    try {
      const slow = deferred<string>();
      const p = h.execute(({ attempt }) => (attempt === 1 ? slow.promise : 'fast'));
      await clock.tick(5);
      expect(await p).toBe('fast');
      slow.reject(new Error('late'));
      await flushMicrotasks();
      await flushMicrotasks();
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', on);
    }
  });

  it('an enclosing timeout aborts every attempt and stops further hedges', async () => {
    const clock = createFakeClock();
    const h = hedge({ delay: 40, maxHedges: 5, clock });
    const signals: AbortSignal[] = [];
    const p = pipeline(timeout({ timeoutMs: 100, clock }), h).execute(({ signal }) => {
      signals.push(signal);
      return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    });
    const outcome = p.catch((e: unknown) => e);
    await clock.tick(100);
    expect((await outcome) as Error).toMatchObject({ code: 'TIMEOUT' });
    expect(signals.length).toBe(3); // at 0, 40 and 80 ms
    expect(signals.every((s) => s.aborted)).toBe(true);
    await clock.tick(1_000);
    expect(signals.length).toBe(3);
    expect(clock.refed).toBe(0);
  });

  it('validates options', () => {
    expect(() => hedge({ delay: -1 })).toThrow(ConfigError);
    expect(() => hedge({ delay: { quantile: 0 } })).toThrow(/hedge.delay.quantile/);
    expect(() => hedge({ delay: { quantile: 0.9, minMs: 10, maxMs: 5 } })).toThrow(/hedge.delay.maxMs/);
    expect(() => hedge({ delay: { quantile: 0.9, windowMs: 0 } })).toThrow(/hedge.delay.windowMs/);
    expect(() => hedge({ delay: { quantile: 0.9, windowSize: 10 } as never })).toThrow(/windowSize/);
    expect(() => hedge({ delay: 1, maxHedges: 0 })).toThrow(/hedge.maxHedges/);
    expect(() => hedge({ delay: 1, handle: (() => true) as never })).toThrow(/hedge.handle/);
    expect(() => hedge({} as never)).toThrow(/hedge.delay/);
    expect(() => hedge({ delay: 1, maxHedge: 2 } as never)).toThrow(/maxHedge/);
  });
});

describe('hedge: enabled', () => {
  it('a call that is not hedged runs as if the policy were absent (the inner promise itself, no timer)', async () => {
    const clock = createFakeClock();
    const off = hedge({ delay: 10, enabled: false, clock });
    const inner = Promise.resolve('x');
    const p = off.execute(() => inner);
    expect(p).toBe(inner);
    expect(clock.pending).toBe(0);
    await expect(p).resolves.toBe('x');
    const onlyCritical = hedge({ delay: 10, enabled: (ctx) => ctx.priority === 'critical', clock });
    let calls = 0;
    const slow = () => {
      calls++;
      return new Promise((r) => clock.setTimeout(() => r('done'), 50));
    };
    const normal = onlyCritical.execute(slow);
    await clock.tick(60);
    await expect(normal).resolves.toBe('done');
    expect(calls).toBe(1);
    expect(onlyCritical.stats.hedges).toBe(0);
    const critical = onlyCritical.execute(slow, { priority: 'critical' });
    await clock.tick(60);
    await expect(critical).resolves.toBe('done');
    expect(calls).toBe(3);
    expect(() => hedge({ delay: 10, enabled: 'yes' as never })).toThrow('hedge.enabled must be');
  });
});

describe('hedge: switched off leaves pipelines', () => {
  it('a hedge made with enabled: false is not part of a pipeline built with it', () => {
    const p = pipeline(hedge({ delay: 10, enabled: false }), timeout(100));
    expect((p as unknown as { policies: readonly unknown[] }).policies).toHaveLength(1);
  });
});
