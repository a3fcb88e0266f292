import { describe, expect, expectTypeOf, it } from 'vitest';
import { configError } from '../../test/support/config-error.js';
import {
  BrokenCircuitError,
  type BulkheadRejectedError,
  bulkhead,
  type Context,
  circuitBreaker,
  type FallbackEvent,
  type FallbackOutcome,
  FallbackPolicy,
  fallback,
  handle,
  pipeline,
  TimeoutError,
  timeout,
} from '../index.js';
import { createFakeClock, flushMicrotasks } from '../testing/index.js';

// Deliberate repetition: the end of this file's import list and its first describe/it match other test
// files by shape only (names differ); there is no shared logic to extract.
describe('fallback: what it answers with', () => {
  it('answers a failure with a value', async () => {
    const f = fallback('cached');
    expect(f).toBeInstanceOf(FallbackPolicy);
    expect(f.kind).toBe('fallback');
    expect(f.name).toBe('fallback');
    await expect(f.execute(() => Promise.reject(new Error('down')))).resolves.toBe('cached');
    await expect(
      f.execute(() => {
        throw new Error('sync');
      }),
    ).resolves.toBe('cached');
  });

  it('passes a success through untouched, and does not call the fallback function', async () => {
    let produced = 0;
    const f = fallback(() => {
      produced++;
      return 0;
    });
    await expect(f.execute(async () => 42)).resolves.toBe(42);
    await expect(f.execute(() => 'sync')).resolves.toBe('sync');
    expect(produced).toBe(0);
    expect(f.stats.fallbacks).toBe(0);
  });

  it('answers with a function of the outcome ({ error }) and the context', async () => {
    const seen: [FallbackOutcome, Context][] = [];
    const f = fallback((outcome, ctx) => {
      seen.push([outcome, ctx]);
      return `fallback for ${ctx.name} (${ctx.priority})`;
    });
    const boom = new Error('boom');
    const r = await f.execute(() => Promise.reject(boom), {
      name: 'getPrice',
      priority: 'high',
      props: { sku: 'x' },
    });
    expect(r).toBe('fallback for getPrice (high)');
    expect(seen).toHaveLength(1);
    expect(seen[0]![0]).toEqual({ error: boom });
    expect('result' in seen[0]![0]).toBe(false);
    expect(seen[0]![1].props).toEqual({ sku: 'x' });
    expect(seen[0]![1].attempt).toBe(1);
  });

  it('awaits an async fallback function', async () => {
    const f = fallback(async (outcome) => {
      await flushMicrotasks();
      return `async: ${(('error' in outcome ? outcome.error : undefined) as Error).message}`;
    });
    await expect(f.execute(() => Promise.reject(new Error('x')))).resolves.toBe('async: x');
  });

  it('a fallback function that fails makes the execution fail with its error', async () => {
    const own = new Error('fallback failed too');
    const f = fallback(() => {
      throw own;
    });
    await expect(f.execute(() => Promise.reject(new Error('x')))).rejects.toBe(own);
    const g = fallback(async () => {
      throw own;
    });
    await expect(g.execute(() => Promise.reject(new Error('x')))).rejects.toBe(own);
  });

  it('answers handled results with a function of { result }', async () => {
    const f = fallback((outcome) => ('result' in outcome ? { status: 200, from: outcome.result } : null), {
      handle: handle.results((r: { status: number }) => r.status >= 500),
    });
    const bad = { status: 503 };
    await expect(f.execute(() => bad)).resolves.toEqual({ status: 200, from: bad });
    await expect(f.execute(() => ({ status: 404 }))).resolves.toEqual({ status: 404 });
    // handle.results only: errors are not answered
    await expect(f.execute(() => Promise.reject(new Error('e')))).rejects.toThrow('e');
  });

  it('answers only the errors its handler handles', async () => {
    class Transientish extends Error {}
    const f = fallback('fb', { handle: handle.errors(Transientish) });
    await expect(f.execute(() => Promise.reject(new Transientish('t')))).resolves.toBe('fb');
    await expect(f.execute(() => Promise.reject(new TypeError('bug')))).rejects.toBeInstanceOf(TypeError);
    const both = fallback('fb', { handle: handle.errors(Transientish).orResults((r) => r === 'bad') });
    await expect(both.execute(() => 'bad')).resolves.toBe('fb');
    await expect(both.execute(() => 'good')).resolves.toBe('good');
  });

  it('by default answers every error but no result', async () => {
    const f = fallback(0);
    await expect(f.execute(() => Promise.reject('a string'))).resolves.toBe(0);
    await expect(f.execute(() => Promise.reject(undefined))).resolves.toBe(0);
    await expect(f.execute(() => null)).resolves.toBeNull();
  });
});

describe('fallback: answers the rejections of inner policies', () => {
  it('BrokenCircuitError from an open breaker', async () => {
    const clock = createFakeClock();
    const breaker = circuitBreaker({
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfterMs: 1_000,
      clock,
    });
    const seen: unknown[] = [];
    const policy = pipeline(
      fallback((o) => {
        seen.push('error' in o ? o.error : o.result);
        return 'served from cache';
      }),
      breaker,
    );
    await expect(policy.execute(() => Promise.reject(new Error('down')))).resolves.toBe('served from cache');
    await expect(policy.execute(() => 'never called')).resolves.toBe('served from cache');
    expect(seen[1]).toBeInstanceOf(BrokenCircuitError);
  });

  it('BulkheadRejectedError from a full bulkhead', async () => {
    const b = bulkhead({ limit: 1 });
    const policy = pipeline(
      fallback((o) => ('error' in o ? (o.error as BulkheadRejectedError).code : '')),
      b,
    );
    let release!: () => void;
    const first = policy.execute(() => new Promise<string>((r) => (release = () => r('first'))));
    await expect(policy.execute(() => 'second')).resolves.toBe('BULKHEAD_FULL');
    release();
    await expect(first).resolves.toBe('first');
  });

  it('TimeoutError from a timeout (cooperative and abandon)', async () => {
    const clock = createFakeClock();
    for (const strategy of ['cooperative', 'abandon'] as const) {
      const policy = pipeline(
        fallback((o) => ('error' in o && o.error instanceof TimeoutError ? 'too slow' : 'other')),
        timeout({ timeoutMs: 100, strategy, clock }),
      );
      const p = policy.execute(
        ({ signal }) =>
          new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
      );
      await clock.tick(100);
      await expect(p).resolves.toBe('too slow');
    }
  });

  it("does not answer the caller's own abort: the caller gets its reason", async () => {
    const clock = createFakeClock();
    const f = fallback('fb');
    const caller = new AbortController();
    const p = f.execute(
      ({ signal }) =>
        new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
      { signal: caller.signal },
    );
    caller.abort('user cancelled');
    await expect(p).rejects.toBe('user cancelled');
    expect(f.stats.fallbacks).toBe(0);
    // through a timeout and a queued bulkhead too
    const b = bulkhead({ limit: 1, queue: 1, clock });
    const policy = pipeline(f, timeout({ timeoutMs: 1_000, strategy: 'abandon', clock }), b);
    const busy = b.execute(() => new Promise(() => {}));
    void busy;
    const c2 = new AbortController();
    const q = policy.execute(() => 'x', { signal: c2.signal });
    c2.abort('gone');
    await expect(q).rejects.toBe('gone');
    expect(f.stats.fallbacks).toBe(0);
  });

  it("inside a timeout, does not answer that timeout's own abort: the enclosing timeout's outcome stands", async () => {
    const clock = createFakeClock();
    const f = fallback('fb');
    const policy = pipeline(timeout({ timeoutMs: 100, clock }), f);
    const p = policy.execute(
      ({ signal }) =>
        new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
    );
    const outcome = p.catch((e: unknown) => e);
    await clock.tick(100);
    expect(await outcome).toBeInstanceOf(TimeoutError);
    expect(f.stats.fallbacks).toBe(0);
  });

  it('still answers a failure that is not the abort reason while the caller is aborted', async () => {
    const f = fallback('fb');
    const caller = new AbortController();
    const p = f.execute(
      ({ signal }) =>
        new Promise((_, reject) =>
          signal.addEventListener('abort', () => reject(new Error('cleanup failed'))),
        ),
      { signal: caller.signal },
    );
    caller.abort('stop');
    await expect(p).resolves.toBe('fb');
  });
});

describe('fallback: events, stats, options', () => {
  it('emits a fallback event with the error or the result, and counts it', async () => {
    const f = fallback('fb', { name: 'price', handle: handle.all().orResults((r) => r === 'bad') });
    const events: FallbackEvent[] = [];
    const stop = f.onEvent((e) => events.push(e));
    const err = new Error('x');
    await f.execute(() => Promise.reject(err), { priority: 'low' });
    await f.execute(() => 'bad');
    await f.execute(() => 'good');
    expect(events).toEqual([
      { kind: 'fallback', event: 'fallback', name: 'price', priority: 'low', attempt: 1, error: err },
      { kind: 'fallback', event: 'fallback', name: 'price', priority: 'normal', attempt: 1, result: 'bad' },
    ]);
    expect(f.stats).toEqual({ fallbacks: 2 });
    stop();
    await f.execute(() => 'bad');
    expect(events).toHaveLength(2);
    expect(f.stats.fallbacks).toBe(3);
  });

  it('validates its options', () => {
    const bad = (fn: () => unknown, option: string) => expect(configError(fn).option).toBe(option);
    bad(() => fallback(1, { handle: (() => true) as never }), 'fallback.handle');
    bad(() => fallback(1, { name: '' }), 'fallback.name');
    bad(() => fallback(1, { clock: createFakeClock() } as never), 'fallback.clock');
    bad(() => fallback(1, 'x' as never), 'fallback');
  });
});

describe('fallback: types', () => {
  it('execute returns T | R', async () => {
    const f = fallback('cached' as string);
    const r = await f.execute(() => 42);
    expectTypeOf(r).toEqualTypeOf<number | string>();

    const literal = fallback(0);
    expectTypeOf(literal).toEqualTypeOf<FallbackPolicy<0>>();
    expectTypeOf(await literal.execute(async () => 'x')).toEqualTypeOf<string | 0>();

    const fromFn = fallback(() => ({ cached: true }));
    expectTypeOf(await fromFn.execute(() => 1)).toEqualTypeOf<number | { cached: boolean }>();

    const fromAsync = fallback(async () => 'later');
    expectTypeOf(fromAsync).toEqualTypeOf<FallbackPolicy<string>>();
    expectTypeOf(await fromAsync.execute(() => 1)).toEqualTypeOf<number | string>();

    const inPipeline = pipeline(fallback(null), timeout(1_000));
    expectTypeOf(await inPipeline.execute(() => 1)).toEqualTypeOf<number | null>();
  });
});
