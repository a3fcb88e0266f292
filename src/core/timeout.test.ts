import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { configError } from '../../test/support/config-error.js';
import { track, untilAborted, withUnhandledRejections } from '../../test/support/timeout-harness.js';
import { ConfigError, TimeoutError, type TimeoutEvent, TimeoutPolicy, timeout } from '../index.js';
import { createFakeClock, deferred, flushMicrotasks } from '../testing/index.js';

describe('timeout: cooperative (default)', () => {
  it('aborts ctx.signal with a TimeoutError at the deadline, not before', async () => {
    const clock = createFakeClock();
    const t = timeout({ timeoutMs: 100, clock });
    let signal: AbortSignal | undefined;
    const call = track(
      t.execute((ctx) => {
        signal = ctx.signal;
        return untilAborted(ctx);
      }),
    );
    await clock.tick(99);
    expect(signal?.aborted).toBe(false);
    expect(call.current.state).toBe('pending');
    await clock.tick(1);
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBeInstanceOf(TimeoutError);
    expect((signal!.reason as TimeoutError).timeoutMs).toBe(100);
    expect((signal!.reason as TimeoutError).code).toBe('TIMEOUT');
    expect(call.current.state).toBe('rejected');
  });

  it('fails with the signal reason itself when the function rejects with it', async () => {
    const clock = createFakeClock();
    let signal: AbortSignal | undefined;
    const p = timeout({ timeoutMs: 50, clock }).execute((ctx) => {
      signal = ctx.signal;
      return untilAborted(ctx);
    });
    const settled = track(p);
    await clock.tick(50);
    expect(settled.current.state).toBe('rejected');
    await expect(p).rejects.toBe(signal?.reason);
  });

  it('a function that rejects after the deadline fails with TimeoutError whose cause is its own error', async () => {
    const clock = createFakeClock();
    const own = new Error('socket closed');
    const p = timeout({ timeoutMs: 100, clock }).execute(({ signal }) => {
      return new Promise((_, reject) => signal.addEventListener('abort', () => reject(own)));
    });
    const settled = track(p);
    await clock.tick(100);
    expect(settled.current.state).toBe('rejected');
    const error = await p.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).cause).toBe(own);
    expect((error as TimeoutError).timeoutMs).toBe(100);
  });

  it('waits for the function: does not settle at the deadline while the function still runs', async () => {
    const clock = createFakeClock();
    const d = deferred<string>();
    const call = track(timeout({ timeoutMs: 100, clock }).execute(() => d.promise));
    await clock.tick(500);
    expect(call.current.state).toBe('pending');
    d.reject(new Error('late'));
    await flushMicrotasks();
    expect(call.current.state).toBe('rejected');
    const error = (call.current as { error: unknown }).error;
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).cause).toEqual(new Error('late'));
  });

  it('a function that resolves after the deadline returns its value (and the timeout is still counted)', async () => {
    const clock = createFakeClock();
    const t = timeout({ timeoutMs: 100, clock });
    const d = deferred<string>();
    const p = t.execute(() => d.promise);
    await clock.tick(150);
    d.resolve('late but fine');
    await expect(p).resolves.toBe('late but fine');
    expect(t.stats.timeouts).toBe(1);
  });

  it('passes an error from before the deadline through unchanged', async () => {
    const clock = createFakeClock();
    const own = new RangeError('bad');
    const p = timeout({ timeoutMs: 100, clock }).execute(async () => {
      throw own;
    });
    await expect(p).rejects.toBe(own);
  });

  it('does not wrap a TimeoutError from an inner timeout', async () => {
    const clock = createFakeClock();
    const inner = new TimeoutError(5);
    const d = deferred();
    const p = timeout({ timeoutMs: 100, clock }).execute(() => d.promise);
    await clock.tick(100);
    d.reject(inner);
    await expect(p).rejects.toBe(inner);
  });

  it('returns the value of a function that finishes in time, and leaves the signal unaborted', async () => {
    const clock = createFakeClock();
    const t = timeout({ timeoutMs: 100, clock });
    let signal: AbortSignal | undefined;
    const p = t.execute(async (ctx) => {
      signal = ctx.signal;
      return 7;
    });
    await expect(p).resolves.toBe(7);
    await clock.tick(1_000);
    expect(signal?.aborted).toBe(false);
    expect(t.stats.timeouts).toBe(0);
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('the function sees a child signal, not the caller signal, and the caller signal is never aborted by the timeout', async () => {
    const clock = createFakeClock();
    const caller = new AbortController();
    let seen: AbortSignal | undefined;
    const p = timeout({ timeoutMs: 10, clock }).execute(
      (ctx) => {
        seen = ctx.signal;
        return untilAborted(ctx);
      },
      { signal: caller.signal },
    );
    const settled = track(p);
    await clock.tick(10);
    expect(settled.current.state).toBe('rejected');
    expect(seen).not.toBe(caller.signal);
    expect(seen?.aborted).toBe(true);
    expect(caller.signal.aborted).toBe(false);
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
  });

  it('on the caller abort, aborts the child signal with the caller reason and fails with it (not a TimeoutError)', async () => {
    const clock = createFakeClock();
    const caller = new AbortController();
    const reason = new Error('user went away');
    const p = timeout({ timeoutMs: 1_000, clock }).execute(untilAborted, { signal: caller.signal });
    await flushMicrotasks();
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(1);
    caller.abort(reason);
    await expect(p).rejects.toBe(reason);
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('rejects with the reason of an already aborted caller signal without calling the function', async () => {
    const clock = createFakeClock();
    const caller = new AbortController();
    caller.abort('early');
    let calls = 0;
    const p = timeout({ timeoutMs: 1_000, clock }).execute(
      () => {
        calls++;
        return 1;
      },
      { signal: caller.signal },
    );
    await expect(p).rejects.toBe('early');
    expect(calls).toBe(0);
    expect(clock.pending).toBe(0);
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
  });
});

describe('timeout: abandon', () => {
  it('rejects at the deadline with TimeoutError even when the function ignores its signal', async () => {
    const clock = createFakeClock();
    const t = timeout({ timeoutMs: 100, strategy: 'abandon', clock });
    expect(t.strategy).toBe('abandon');
    const never = deferred<string>();
    let signal: AbortSignal | undefined;
    const call = track(
      t.execute((ctx) => {
        signal = ctx.signal;
        return never.promise;
      }),
    );
    await clock.tick(99);
    expect(call.current.state).toBe('pending');
    await clock.tick(1);
    expect(call.current.state).toBe('rejected');
    const error = (call.current as { error: unknown }).error;
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).timeoutMs).toBe(100);
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBe(error);
    expect(t.stats.timeouts).toBe(1);
  });

  it("the abandoned function's later rejection is not an unhandled rejection", async () => {
    const unhandled = await withUnhandledRejections(async () => {
      const clock = createFakeClock();
      const t = timeout({ timeoutMs: 100, strategy: 'abandon', clock });
      const late = deferred<string>();
      const p = t.execute(() => late.promise);
      const settled = track(p);
      await clock.tick(100);
      expect(settled.current.state).toBe('rejected');
      late.reject(new Error('rejected after being abandoned'));
      await expect(p).rejects.toBeInstanceOf(TimeoutError);
    });
    expect(unhandled).toEqual([]);
  });

  it("the abandoned function's later value is dropped", async () => {
    const clock = createFakeClock();
    const late = deferred<string>();
    const p = timeout({ timeoutMs: 100, strategy: 'abandon', clock }).execute(() => late.promise);
    const outcome = p.catch((e: unknown) => e);
    await clock.tick(100);
    late.resolve('too late');
    expect(await outcome).toBeInstanceOf(TimeoutError);
  });

  it('a function that rejects after its signal aborted still yields the TimeoutError (the first outcome wins)', async () => {
    const clock = createFakeClock();
    const p = timeout({ timeoutMs: 100, strategy: 'abandon', clock }).execute(untilAborted);
    const outcome = p.catch((e: unknown) => e);
    await clock.tick(100);
    const error = await outcome;
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).cause).toBeUndefined();
  });

  it('settles with the outcome of a function that finishes in time', async () => {
    const clock = createFakeClock();
    const t = timeout({ timeoutMs: 100, strategy: 'abandon', clock });
    await expect(t.execute(async () => 'ok')).resolves.toBe('ok');
    const own = new Error('own');
    await expect(
      t.execute(async () => {
        throw own;
      }),
    ).rejects.toBe(own);
    expect(t.stats.timeouts).toBe(0);
    expect(clock.refed).toBe(0);
  });

  it('abandons at once on the caller abort, with the caller reason, leaving no listener', async () => {
    const unhandled = await withUnhandledRejections(async () => {
      const clock = createFakeClock();
      const caller = new AbortController();
      const late = deferred<string>();
      let signal: AbortSignal | undefined;
      const p = timeout({ timeoutMs: 1_000, strategy: 'abandon', clock }).execute(
        (ctx) => {
          signal = ctx.signal;
          return late.promise; // ignores its signal
        },
        { signal: caller.signal },
      );
      const settled = track(p);
      await flushMicrotasks();
      expect(settled.current.state).toBe('pending');
      caller.abort('cancelled');
      await flushMicrotasks();
      expect(settled.current).toEqual({ state: 'rejected', error: 'cancelled' });
      expect(signal?.aborted).toBe(true);
      expect(signal?.reason).toBe('cancelled');
      expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
      expect(clock.refed).toBe(0);
      late.reject(new Error('late failure'));
    });
    expect(unhandled).toEqual([]);
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('rejects with the reason of an already aborted caller signal without calling the function', async () => {
    const clock = createFakeClock();
    const caller = new AbortController();
    caller.abort('gone');
    let calls = 0;
    const p = timeout({ timeoutMs: 1_000, strategy: 'abandon', clock }).execute(
      () => {
        calls++;
        return 1;
      },
      { signal: caller.signal },
    );
    await expect(p).rejects.toBe('gone');
    expect(calls).toBe(0);
    expect(clock.pending).toBe(0);
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
  });

  it('removes its caller-signal listener when the function settles in time', async () => {
    const clock = createFakeClock();
    const caller = new AbortController();
    const t = timeout({ timeoutMs: 1_000, strategy: 'abandon', clock });
    await t.execute(async () => 1, { signal: caller.signal });
    await expect(t.execute(() => Promise.reject(new Error('x')), { signal: caller.signal })).rejects.toThrow(
      'x',
    );
    await t.execute(() => 1, { signal: caller.signal });
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
  });
});

describe('timeout: options', () => {
  it('timeout(ms) is the shorthand of a cooperative timeout', async () => {
    const clock = createFakeClock();
    const t = timeout(100);
    expect(t).toBeInstanceOf(TimeoutPolicy);
    expect(t.strategy).toBe('cooperative');
    expect(t.kind).toBe('timeout');
    expect(t.name).toBe('timeout');
    // The shorthand uses the system clock: check it with a fake clock via the options form.
    const same = timeout({ timeoutMs: 100, clock });
    expect(same.strategy).toBe('cooperative');
  });

  it('timeout(fn) is the shorthand of a dynamic timeout', async () => {
    const t = timeout(() => Number.POSITIVE_INFINITY);
    await expect(t.execute(() => 'x')).resolves.toBe('x');
  });

  it('takes a dynamic ms from the context, e.g. by priority', async () => {
    const clock = createFakeClock();
    const seen: number[] = [];
    const t = timeout({ timeoutMs: (ctx) => (ctx.priority === 'critical' ? 50 : 200), clock });
    t.onEvent((e) => seen.push(e.timeoutMs));
    const signals: Record<string, AbortSignal> = {};
    const run = (priority: string) =>
      t.execute(
        (ctx) => {
          signals[priority] = ctx.signal;
          return untilAborted(ctx);
        },
        { priority },
      );
    const critical = track(run('critical'));
    const normal = track(run('normal'));
    await clock.tick(50);
    expect(critical.current.state).toBe('rejected');
    expect(normal.current.state).toBe('pending');
    expect((signals.critical!.reason as TimeoutError).timeoutMs).toBe(50);
    await clock.tick(150);
    expect(normal.current.state).toBe('rejected');
    expect((signals.normal!.reason as TimeoutError).timeoutMs).toBe(200);
    expect(seen).toEqual([50, 200]);
  });

  it('a dynamic ms that returns a bad value fails the call with a ConfigError naming timeout.timeoutMs(ctx)', async () => {
    const t = timeout({ timeoutMs: () => -5, clock: createFakeClock() });
    let calls = 0;
    const p = t.execute(() => ++calls); // must not throw synchronously
    const error = await p.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).option).toBe('timeout.timeoutMs(ctx)');
    expect((error as Error).message).toBe(
      'timeout.timeoutMs(ctx) must be a number of milliseconds > 0 (or Infinity) (got -5)',
    );
    expect(calls).toBe(0);
    const throwing = timeout({
      timeoutMs: () => {
        throw new Error('no ms for you');
      },
    });
    await expect(throwing.execute(() => 1)).rejects.toThrow('no ms for you');
  });

  it('Infinity passes straight through: no timer, and ctx.signal is the caller signal', async () => {
    const clock = createFakeClock();
    const caller = new AbortController();
    const t = timeout({ timeoutMs: Number.POSITIVE_INFINITY, clock });
    let seen: AbortSignal | undefined;
    const p = t.execute(
      (ctx) => {
        seen = ctx.signal;
        expect(clock.pending).toBe(0);
        return 'through';
      },
      { signal: caller.signal },
    );
    await expect(p).resolves.toBe('through');
    expect(seen).toBe(caller.signal);
    expect(clock.pending).toBe(0);
    await expect(t.execute(() => Promise.reject(new Error('e')))).rejects.toThrow('e');
    await expect(
      t.execute(() => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('a dynamic ms may return Infinity for some calls', async () => {
    const clock = createFakeClock();
    const t = timeout({
      timeoutMs: (ctx) => (ctx.priority === 'low' ? 10 : Number.POSITIVE_INFINITY),
      clock,
    });
    await t.execute(() => {
      expect(clock.pending).toBe(0);
    });
    await t.execute(
      () => {
        expect(clock.pending).toBe(1);
      },
      { priority: 'low' },
    );
  });

  it.each(['cooperative', 'abandon'] as const)(
    '%s: handles sync functions and sync throws',
    async (strategy) => {
      const clock = createFakeClock();
      const t = timeout({ timeoutMs: 100, strategy, clock });
      await expect(t.execute(() => 42)).resolves.toBe(42);
      const own = new Error('sync throw');
      let thrownSync = false;
      let p: Promise<unknown>;
      try {
        p = t.execute(() => {
          throw own;
        });
      } catch {
        thrownSync = true;
        p = Promise.resolve();
      }
      expect(thrownSync).toBe(false);
      await expect(p).rejects.toBe(own);
      expect(clock.refed).toBe(0);
      await clock.tick(100);
      expect(clock.pending).toBe(0);
      expect(t.stats.timeouts).toBe(0);
    },
  );

  it.each(['cooperative', 'abandon'] as const)(
    '%s: emits a timeout event with timeoutMs and strategy',
    async (strategy) => {
      const clock = createFakeClock();
      const t = timeout({ timeoutMs: 100, strategy, name: 'db', clock });
      const events: TimeoutEvent[] = [];
      const stop = t.onEvent((e) => events.push(e));
      const p = t.execute(untilAborted, { priority: 'high' });
      const settled = track(p);
      await clock.tick(100);
      expect(settled.current.state).toBe('rejected');
      expect(events).toEqual([
        {
          kind: 'timeout',
          event: 'timeout',
          name: 'db',
          priority: 'high',
          attempt: 1,
          timeoutMs: 100,
          strategy,
        },
      ]);
      stop();
      const p2 = track(t.execute(untilAborted));
      await clock.tick(100);
      expect(p2.current.state).toBe('rejected');
      expect(events).toHaveLength(1);
    },
  );

  it('counts every timed-out execution in stats.timeouts', async () => {
    const clock = createFakeClock();
    const t = timeout({ timeoutMs: 10, clock });
    expect(t.stats).toEqual({ timeouts: 0 });
    const calls = [t.execute(untilAborted), t.execute(untilAborted), t.execute(async () => 1)];
    const all = Promise.allSettled(calls);
    await clock.tick(10);
    const results = await all;
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'fulfilled']);
    expect(t.stats.timeouts).toBe(2);
  });

  describe('validation', () => {
    const bad = (f: () => unknown, option: string, message?: RegExp) => {
      const error = configError(f);
      expect(error.option).toBe(option);
      expect(error.code).toBe(/\.(msec|[a-z]+typo)$/.test(option) ? 'UNKNOWN_OPTION' : 'INVALID_OPTION');
      expect(error.message).toContain(option);
      if (message) expect(error.message).toMatch(message);
    };

    it('timeout.ms is required and must be a number > 0', () => {
      bad(() => timeout({} as never), 'timeout.timeoutMs');
      bad(() => timeout(0), 'timeout.timeoutMs', /> 0.*\(got 0\)/);
      bad(() => timeout(-1), 'timeout.timeoutMs', /\(got -1\)/);
      bad(() => timeout(Number.NaN), 'timeout.timeoutMs', /\(got NaN\)/);
      bad(() => timeout({ timeoutMs: '100' as unknown as number }), 'timeout.timeoutMs', /\(got "100"\)/);
      expect(timeout(0.5).kind).toBe('timeout');
      expect(timeout(Number.POSITIVE_INFINITY).kind).toBe('timeout');
    });

    it("timeout.strategy must be 'cooperative' or 'abandon'", () => {
      bad(
        () => timeout({ timeoutMs: 1, strategy: 'drop' as never }),
        'timeout.strategy',
        /'cooperative', 'abandon'/,
      );
    });

    it('timeout.name must be a non-empty string; unknown options and non-objects are refused', () => {
      bad(() => timeout({ timeoutMs: 1, name: '' }), 'timeout.name');
      bad(() => timeout({ timeoutMs: 1, msec: 2 } as never), 'timeout.msec');
      bad(() => timeout(null as never), 'timeout');
      bad(() => timeout('100' as never), 'timeout');
    });
  });
});
