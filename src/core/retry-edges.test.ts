import { getEventListeners } from 'node:events';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { alwaysFails, flaky, giveUpEvent, record, settle, setup } from '../../test/support/retry-harness.js';
import {
  backoff,
  ConfigError,
  type Context,
  handle,
  pipeline,
  type RetryEvent,
  type RetryOptions,
  retry,
  TimeoutError,
  timeout,
} from '../index.js';
import { createFakeClock } from '../testing/index.js';

// Deliberate repetition: the end of this file's import list and its first describe/it match other test
// files by shape only (names differ); there is no shared logic to extract.
describe('abort', () => {
  it('an abort during a backoff delay wakes it at once and rejects with the signal reason, leaving no timer and no listener', async () => {
    const { policy, clock } = setup({ backoff: backoff.constant(10_000) });
    const events = record(policy);
    const controller = new AbortController();
    const fn = alwaysFails();
    const done = settle(policy.execute(fn, { signal: controller.signal }));
    await clock.tick(100);
    expect(clock.pending).toBe(1);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    const reason = new Error('user navigated away');
    controller.abort(reason);
    await clock.tick(0); // lets promise callbacks run; no time passes
    expect(done).toEqual({ state: 'rejected', value: reason });
    expect(done.value).toBe(reason);
    expect(clock.now()).toBe(100);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(clock.pending).toBe(0);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    expect(events.at(-1)).toEqual(giveUpEvent({ attempt: 1, reason: 'aborted', error: reason }));
    expect(policy.stats.giveUps).toBe(1);
  });

  it('an abort without a reason rejects with the DOMException AbortError the signal carries', async () => {
    const { policy, clock } = setup({ backoff: backoff.constant(10_000) });
    const controller = new AbortController();
    const done = settle(policy.execute(alwaysFails(), { signal: controller.signal }));
    await clock.tick(10);
    controller.abort();
    await clock.tick(0);
    expect(done.state).toBe('rejected');
    expect(done.value).toBe(controller.signal.reason);
    expect((done.value as Error).name).toBe('AbortError');
  });

  it('a signal aborted before execute rejects with its reason without calling the function', async () => {
    const { policy, clock } = setup();
    const events = record(policy);
    const controller = new AbortController();
    const reason = new Error('already gone');
    controller.abort(reason);
    const fn = vi.fn(() => 'never');
    await expect(policy.execute(fn, { signal: controller.signal })).rejects.toBe(reason);
    expect(fn).not.toHaveBeenCalled();
    expect(events).toEqual([]);
    expect(policy.stats).toEqual({ executions: 0, retries: 0, giveUps: 0 });
    expect(clock.pending).toBe(0);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('an abort while a handled result is being retried rejects with the reason (no retry is announced)', async () => {
    const { policy, clock } = setup({
      handle: handle.results((r) => r === 'bad'),
      backoff: backoff.constant(0),
    });
    const events = record(policy);
    const controller = new AbortController();
    const fn = vi.fn(() => {
      controller.abort(new Error('stop'));
      return 'bad';
    });
    const done = settle(policy.execute(fn, { signal: controller.signal }));
    await clock.runAll();
    expect(done).toEqual({ state: 'rejected', value: new Error('stop') });
    expect(fn).toHaveBeenCalledTimes(1);
    expect(events.map((e) => e.event)).toEqual(['giveUp']);
    expect(events[0]).toMatchObject({ reason: 'aborted' });
  });

  it('an abort during the last attempt that returns a handled result also rejects with the reason', async () => {
    const { policy } = setup({ maxAttempts: 1, handle: handle.results((r) => r === 'bad') });
    const events = record(policy);
    const controller = new AbortController();
    const reason = new Error('stop');
    const done = policy.execute(
      () => {
        controller.abort(reason);
        return 'bad';
      },
      { signal: controller.signal },
    );
    await expect(done).rejects.toBe(reason);
    expect(events).toEqual([giveUpEvent({ attempt: 1, reason: 'aborted', error: reason })]);
  });

  it('a long-lived signal keeps no listener and no timer after many executions that retried', async () => {
    const { policy, clock } = setup({ backoff: backoff.constant(5) });
    const controller = new AbortController();
    for (let i = 0; i < 50; i++) {
      const done = settle(policy.execute(flaky(2), { signal: controller.signal }));
      const failed = settle(policy.execute(alwaysFails(), { signal: controller.signal }));
      await clock.runAll();
      expect(done.state).toBe('fulfilled');
      expect(failed.state).toBe('rejected');
    }
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    expect(clock.pending).toBe(0);
  });

  it('the function sees the caller signal as ctx.signal', async () => {
    const { policy } = setup();
    const controller = new AbortController();
    let seen: AbortSignal | undefined;
    await policy.execute(
      ({ signal }) => {
        seen = signal;
      },
      { signal: controller.signal },
    );
    expect(seen?.aborted).toBe(false);
    controller.abort();
    expect(seen?.aborted).toBe(true);
  });
});

describe('validation', () => {
  it('retry.maxAttempts must be an integer >= 1 (got 0)', () => {
    let error: unknown;
    try {
      retry({ maxAttempts: 0 });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ code: 'INVALID_OPTION', option: 'retry.maxAttempts' });
    expect((error as Error).message).toBe('retry.maxAttempts must be an integer >= 1 (got 0)');
  });

  it.each([
    [{ maxAttempts: -1 }, 'retry.maxAttempts must be an integer >= 1 (got -1)'],
    [{ maxAttempts: 2.5 }, 'retry.maxAttempts must be an integer >= 1 (got 2.5)'],
    [{ maxAttempts: Number.NaN }, 'retry.maxAttempts must be an integer >= 1 (got NaN)'],
    [{ maxAttempts: '3' }, 'retry.maxAttempts must be an integer >= 1 (got "3")'],
    [{ maxAttempts: null }, 'retry.maxAttempts must be an integer >= 1 (got null)'],
    [{ maxDurationMs: -1 }, 'retry.maxDurationMs must be a number >= 0 (got -1)'],
    [{ maxDurationMs: Number.NaN }, 'retry.maxDurationMs must be a number >= 0 (got NaN)'],
    [
      { backoff: 100 },
      'retry.backoff must be a backoff, e.g. backoff.exponential({ initialMs: 100 }) (got 100)',
    ],
    [
      { backoff: {} },
      'retry.backoff must be a backoff, e.g. backoff.exponential({ initialMs: 100 }) (got an object)',
    ],
    [{ handle: () => true }, 'retry.handle must be a handler, e.g. handle.transient() (got a function)'],
    [{ retryAfter: true }, 'retry.retryAfter must be false or an options object ({ maxMs }) (got true)'],
    [{ retryAfter: { maxMs: -1 } }, 'retry.retryAfter.maxMs must be a number >= 0 (got -1)'],
    [{ random: 0.5 }, 'retry.random must be a function (got 0.5)'],
    [{ name: '' }, 'retry.name must be a non-empty string (got "")'],
  ])('%j is rejected: %s', (options, message) => {
    expect(() => retry(options as RetryOptions)).toThrow(new ConfigError('x', 'y', 0).constructor as never);
    expect(() => retry(options as RetryOptions)).toThrow(message);
  });

  it('names the offending option path in ConfigError.option', () => {
    const optionOf = (options: unknown) => {
      try {
        retry(options as RetryOptions);
      } catch (e) {
        return (e as ConfigError).option;
      }
      return undefined;
    };
    expect(optionOf({ maxDurationMs: -1 })).toBe('retry.maxDurationMs');
    expect(optionOf({ retryAfter: { maxMs: -1 } })).toBe('retry.retryAfter.maxMs');
    expect(optionOf({ backoff: 1 })).toBe('retry.backoff');
  });

  it('rejects unknown option keys (typos) with their path', () => {
    expect(() => retry({ maxAttemps: 3 } as never)).toThrow(
      expect.objectContaining({
        code: 'UNKNOWN_OPTION',
        option: 'retry.maxAttemps',
        suggestion: 'maxAttempts',
      }),
    );
    expect(() => retry({ maxAttemps: 3 } as never)).toThrow(
      /^retry\.maxAttemps is not an option of retry; did you mean retry\.maxAttempts\? the known options are maxAttempts, /,
    );
    expect(() => retry({ retryAfter: { maximum: 5 } } as never)).toThrow(
      expect.objectContaining({ option: 'retry.retryAfter.maximum' }),
    );
  });

  it('rejects options that are not an object', () => {
    expect(() => retry(5 as never)).toThrow('retry must be an options object (got 5)');
    expect(() => retry(null as never)).toThrow('retry must be an options object (got null)');
  });

  it('accepts every valid option', () => {
    expect(() =>
      retry({
        maxAttempts: Number.POSITIVE_INFINITY,
        maxDurationMs: Number.POSITIVE_INFINITY,
        backoff: backoff.constant(1),
        handle: handle.transient(),
        retryAfter: { maxMs: 0 },
        random: () => 0.5,
        name: 'r',
        clock: createFakeClock(),
      }),
    ).not.toThrow();
    expect(() => retry({ retryAfter: {} })).not.toThrow();
    expect(() => retry({ retryAfter: false })).not.toThrow();
    expect(() => retry({ maxAttempts: () => 3, maxDurationMs: () => 10 })).not.toThrow();
  });
});

describe('inside a pipeline', () => {
  it('an enclosing timeout that elapses during a backoff delay ends the wait at once and gives up as aborted', async () => {
    const clock = createFakeClock();
    const inner = retry({ clock, backoff: backoff.constant(10_000), maxAttempts: 5 });
    const events = record(inner);
    const policy = pipeline(timeout({ timeoutMs: 1_000, clock }), inner);
    const fn = alwaysFails();
    const done = settle(policy.execute(fn));
    await clock.tick(1_000);
    expect(done.state).toBe('rejected');
    expect(done.value).toBeInstanceOf(TimeoutError);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(clock.pending).toBe(0);
    expect(events.at(-1)).toMatchObject({ event: 'giveUp', reason: 'aborted' });
  });

  it('a per-attempt timeout inside the retry is retried (TimeoutError is not an abort of the execution)', async () => {
    const clock = createFakeClock();
    const policy = pipeline(
      retry({ clock, backoff: backoff.constant(10), maxAttempts: 3 }),
      timeout({ timeoutMs: 100, strategy: 'abandon', clock }),
    );
    const fn = vi.fn((ctx: Context) => (ctx.attempt < 3 ? new Promise<string>(() => {}) : 'fast'));
    const done = settle(policy.execute(fn));
    await clock.runAll();
    expect(done.value).toBe('fast');
    expect(fn).toHaveBeenCalledTimes(3);
  });
});

describe('property: the number of calls', () => {
  type Outcome = 'throw' | 'bad' | 'ok';

  it('never exceeds maxAttempts and equals min(maxAttempts, first success); the outcome is the last attempt', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom<Outcome>('throw', 'bad', 'ok'), { minLength: 0, maxLength: 15 }),
        fc.integer({ min: 1, max: 12 }),
        fc.constantFrom(0, 7),
        fc.boolean(),
        async (script, maxAttempts, delay, listen) => {
          const clock = createFakeClock();
          const policy = retry({
            clock,
            maxAttempts,
            backoff: backoff.constant(delay),
            handle: handle.all().orResults((r) => r === 'bad'),
          });
          const events: RetryEvent[] = [];
          if (listen) policy.onEvent((e) => events.push(e));
          let calls = 0;
          const outcomeOf = (i: number): Outcome => script[i] ?? 'ok'; // beyond the script: success
          const done = settle(
            policy.execute(() => {
              const o = outcomeOf(calls++);
              if (o === 'throw') throw new Error(`e${calls}`);
              return o;
            }),
          );
          // (zero-delay retries yield a macrotask each, so run until the execution settles)
          for (let i = 0; i < 50 && done.state === 'pending'; i++) await clock.runAll();
          const firstOk = [...script, 'ok'].indexOf('ok') + 1; // 1-based attempt of the first success
          const expectedCalls = Math.min(maxAttempts, firstOk);
          expect(calls).toBe(expectedCalls);
          expect(calls).toBeLessThanOrEqual(maxAttempts);
          const last = outcomeOf(expectedCalls - 1);
          if (last === 'throw')
            expect(done).toEqual({ state: 'rejected', value: new Error(`e${expectedCalls}`) });
          else expect(done).toEqual({ state: 'fulfilled', value: last });
          const gaveUp = last !== 'ok';
          expect(policy.stats).toEqual({
            executions: 1,
            retries: expectedCalls - 1,
            giveUps: gaveUp ? 1 : 0,
          });
          if (listen) {
            expect(events.filter((e) => e.event === 'retry')).toHaveLength(expectedCalls - 1);
            expect(events.at(-1)?.event).toBe(gaveUp ? 'giveUp' : 'success');
          }
          expect(clock.pending).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe('retry: a retried Response is discarded', () => {
  it("cancels the unread body of each retried Response (freeing its connection), not the returned one's", async () => {
    const clock = createFakeClock();
    const cancelled: number[] = [];
    let n = 0;
    const make = () => {
      const id = ++n;
      if (id === 3) return new Response('ok', { status: 200 });
      const body = new ReadableStream({
        cancel() {
          cancelled.push(id);
        },
      });
      return new Response(body, { status: 503 });
    };
    const policy = retry({
      maxAttempts: 3,
      handle: handle.transient(),
      backoff: backoff.constant(10),
      clock,
    });
    const done = policy.execute(make);
    await clock.tick(100);
    const res = await done;
    expect(res.status).toBe(200);
    expect(cancelled).toEqual([1, 2]);
    expect(await res.text()).toBe('ok');
  });
});

describe('retry: predicates that throw', () => {
  it('a result predicate that throws rejects the execution without running the operation again', async () => {
    const clock = createFakeClock();
    const policy = retry({
      clock,
      handle: handle.all().orResults((r: { status: number }) => r.status >= 500),
    });
    let charges = 0;
    const err = await policy
      .execute(() => {
        charges++;
        return undefined as unknown as { status: number };
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect(charges).toBe(1);
  });
});

describe('retry: many waits on one caller signal', () => {
  it('share one abort listener (no MaxListenersExceededWarning), removed when the waits end', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const clock = createFakeClock();
      const caller = new AbortController();
      const policy = retry({ clock, maxAttempts: 2, backoff: backoff.constant(100) });
      const runs = Array.from({ length: 20 }, () =>
        policy.execute((ctx) => (ctx.attempt === 1 ? Promise.reject(new Error('once')) : 'ok'), {
          signal: caller.signal,
        }),
      );
      await clock.tick(0);
      expect(getEventListeners(caller.signal, 'abort')).toHaveLength(1);
      await clock.tick(100);
      await expect(Promise.all(runs)).resolves.toHaveLength(20);
      expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
      await new Promise((r) => setImmediate(r));
      expect(warnings).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });
});
