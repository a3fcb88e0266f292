import { getEventListeners } from 'node:events';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  BrokenCircuitError,
  backoff,
  ConfigError,
  type Context,
  handle,
  NonRetryableError,
  nonRetryable,
  pipeline,
  type RetryEvent,
  type RetryOptions,
  retry,
  TimeoutError,
  telemetry,
  timeout,
} from '../index.js';
import { createFakeClock, type FakeClock, fixedRandom } from '../testing/index.js';

/** A function that fails `failures` times (throwing `make(n)`) and then returns `ok@<attempt>`. */
function flaky(failures: number, make: (n: number) => unknown = (n) => new Error(`failure ${n}`)) {
  const fn = vi.fn((ctx: Context) => {
    if (fn.mock.calls.length <= failures) throw make(fn.mock.calls.length);
    return `ok@${ctx.attempt}`;
  });
  return fn;
}

const alwaysFails = (error: unknown = new Error('down')) =>
  vi.fn((): never => {
    throw error;
  });

/** Records every event of a policy. */
function record(policy: { onEvent(l: (e: RetryEvent) => void): unknown }): RetryEvent[] {
  const events: RetryEvent[] = [];
  policy.onEvent((e) => events.push(e));
  return events;
}

/** A retry on a fake clock with a constant backoff unless told otherwise. */
function setup(options: RetryOptions = {}, clock: FakeClock = createFakeClock()) {
  const policy = retry({ backoff: backoff.constant(100), clock, ...options });
  return { policy, clock };
}

/** Settles `p` and reports how, so a test can assert without unhandled rejections. */
function settle<T>(p: Promise<T>): { readonly state: string; readonly value: unknown } {
  const out = { state: 'pending', value: undefined as unknown };
  p.then(
    (v) => {
      out.state = 'fulfilled';
      out.value = v;
    },
    (e: unknown) => {
      out.state = 'rejected';
      out.value = e;
    },
  );
  return out;
}

const retryAfterError = (fields: Record<string, unknown>) => Object.assign(new Error('throttled'), fields);
const response = (status: number, headers: Record<string, string> = {}) =>
  new Response(null, { status, headers });

describe('defaults', () => {
  it('makes 3 attempts, then rejects with the last error', async () => {
    const { policy, clock } = setup();
    const fn = alwaysFails();
    const done = settle(policy.execute(fn));
    await clock.runAll();
    expect(fn).toHaveBeenCalledTimes(3);
    expect(done).toEqual({ state: 'rejected', value: new Error('down') });
  });

  it("waits backoff.exponential({ initialMs: 100, maxMs: 30_000, jitter: 'full' }) by default", async () => {
    const clock = createFakeClock();
    const policy = retry({ clock, random: fixedRandom(0.5), maxAttempts: 4 });
    const events = record(policy);
    const done = settle(policy.execute(alwaysFails()));
    await clock.runAll();
    expect(events.filter((e) => e.event === 'retry').map((e) => (e as { delayMs: number }).delayMs)).toEqual([
      50, 100, 200,
    ]);
    expect(done.state).toBe('rejected');
  });

  it('returns the value of a first-try success without any timer', async () => {
    const { policy, clock } = setup();
    await expect(policy.execute(() => 42)).resolves.toBe(42);
    await expect(policy.execute(async () => 'async')).resolves.toBe('async');
    expect(clock.pending).toBe(0);
  });

  it('on the success path the backoff is never started', async () => {
    const delays = vi.fn(() => 10);
    const { policy } = setup({ backoff: backoff.delegate(delays) });
    await policy.execute(() => 'ok');
    expect(delays).not.toHaveBeenCalled();
  });

  it('has kind retry and name retry unless named', () => {
    expect(retry().kind).toBe('retry');
    expect(retry().name).toBe('retry');
    expect(retry({ name: 'payments' }).name).toBe('payments');
  });
});

describe('maxAttempts', () => {
  it('counts the first attempt: maxAttempts 1 never retries', async () => {
    const { policy } = setup({ maxAttempts: 1 });
    const fn = alwaysFails();
    await expect(policy.execute(fn)).rejects.toThrow('down');
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('maxAttempts 5 makes five attempts and succeeds on the fifth', async () => {
    const { policy, clock } = setup({ maxAttempts: 5 });
    const fn = flaky(4);
    const done = settle(policy.execute(fn));
    await clock.runAll();
    expect(done).toEqual({ state: 'fulfilled', value: 'ok@5' });
    expect(fn).toHaveBeenCalledTimes(5);
  });

  it('Infinity retries until the function succeeds', async () => {
    const { policy, clock } = setup({ maxAttempts: Number.POSITIVE_INFINITY, backoff: backoff.constant(10) });
    const fn = flaky(250);
    const done = settle(policy.execute(fn));
    await clock.runAll();
    expect(done).toEqual({ state: 'fulfilled', value: 'ok@251' });
  });

  it('may be a function of the context, e.g. more attempts for critical calls', async () => {
    const { policy, clock } = setup({ maxAttempts: (ctx) => (ctx.priority === 'critical' ? 5 : 2) });
    const critical = alwaysFails();
    const normal = alwaysFails();
    const a = settle(policy.execute(critical, { priority: 'critical' }));
    const b = settle(policy.execute(normal));
    await clock.runAll();
    expect(critical).toHaveBeenCalledTimes(5);
    expect(normal).toHaveBeenCalledTimes(2);
    expect([a.state, b.state]).toEqual(['rejected', 'rejected']);
  });

  it('the function sees the execution context (priority, name, props) and is read once per execution', async () => {
    const seen: Context[] = [];
    const { policy, clock } = setup({
      maxAttempts: (ctx) => {
        seen.push(ctx);
        return ctx.props.attempts as number;
      },
    });
    const fn = alwaysFails();
    const done = settle(policy.execute(fn, { priority: 'low', name: 'sync', props: { attempts: 4 } }));
    await clock.runAll();
    expect(fn).toHaveBeenCalledTimes(4);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ priority: 'low', name: 'sync', props: { attempts: 4 } });
    expect(done.state).toBe('rejected');
  });

  it('a function returning a bad value rejects with a ConfigError naming retry.maxAttempts(ctx), without calling fn', async () => {
    for (const [bad, got] of [
      [0, '0'],
      [2.5, '2.5'],
      [Number.NaN, 'NaN'],
      ['3', '"3"'],
    ] as const) {
      const policy = retry({ maxAttempts: () => bad as number });
      const fn = vi.fn(() => 'x');
      let p: Promise<unknown> | undefined;
      expect(() => {
        p = policy.execute(fn);
      }).not.toThrow();
      const error = await p!.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect(error).toMatchObject({ code: 'INVALID_OPTION', option: 'retry.maxAttempts(ctx)' });
      expect((error as Error).message).toBe(`retry.maxAttempts(ctx) must be an integer >= 1 (got ${got})`);
      expect(fn).not.toHaveBeenCalled();
    }
  });
});

describe('backoff: the delays are really waited on the clock', () => {
  it('does not call the function again before the delay, and does once it has passed', async () => {
    const { policy, clock } = setup({ backoff: backoff.constant(100) });
    const fn = flaky(2);
    const done = settle(policy.execute(fn));
    await clock.tick(0);
    expect(fn).toHaveBeenCalledTimes(1);
    await clock.tick(99);
    expect(fn).toHaveBeenCalledTimes(1);
    await clock.tick(1);
    expect(fn).toHaveBeenCalledTimes(2);
    await clock.tick(99);
    expect(fn).toHaveBeenCalledTimes(2);
    await clock.tick(1);
    expect(fn).toHaveBeenCalledTimes(3);
    expect(done).toEqual({ state: 'fulfilled', value: 'ok@3' });
    expect(clock.pending).toBe(0);
  });

  it('attempts start at the cumulative exponential delays', async () => {
    const { policy, clock } = setup({
      maxAttempts: 5,
      backoff: backoff.exponential({ initialMs: 100, jitter: 'none' }),
    });
    const times: number[] = [];
    const done = settle(
      policy.execute(() => {
        times.push(clock.now());
        throw new Error('x');
      }),
    );
    await clock.runAll();
    expect(times).toEqual([0, 100, 300, 700, 1_500]);
    expect(done.state).toBe('rejected');
  });

  it('the time an attempt takes does not shorten the next delay', async () => {
    const { policy, clock } = setup({ backoff: backoff.constant(100) });
    const times: number[] = [];
    const done = settle(
      policy.execute(
        () =>
          new Promise((_, reject) => {
            times.push(clock.now());
            clock.setTimeout(() => reject(new Error('slow failure')), 50);
          }),
      ),
    );
    await clock.runAll();
    expect(times).toEqual([0, 150, 300]);
    expect(done.state).toBe('rejected');
  });

  it('linear and delegate backoffs are waited the same way; the delegate sees the retry number and the context', async () => {
    const calls: [number, unknown][] = [];
    const { policy, clock } = setup({
      maxAttempts: 4,
      backoff: backoff.delegate((n, ctx) => {
        calls.push([n, ctx?.priority]);
        return n * 1_000;
      }),
    });
    const times: number[] = [];
    const done = settle(
      policy.execute(
        () => {
          times.push(clock.now());
          throw new Error('x');
        },
        { priority: 'high' },
      ),
    );
    await clock.runAll();
    expect(times).toEqual([0, 1_000, 3_000, 6_000]);
    expect(calls).toEqual([
      [1, 'high'],
      [2, 'high'],
      [3, 'high'],
    ]);
    expect(done.state).toBe('rejected');

    const linear = setup({ maxAttempts: 3, backoff: backoff.linear({ initialMs: 10, stepMs: 5 }) });
    const lt: number[] = [];
    settle(
      linear.policy.execute(() => {
        lt.push(linear.clock.now());
        throw new Error('x');
      }),
    );
    await linear.clock.runAll();
    expect(lt).toEqual([0, 10, 25]);
  });

  it('the random option drives the jitter', async () => {
    const { policy, clock } = setup({
      maxAttempts: 3,
      backoff: backoff.exponential({ initialMs: 100, jitter: 'full' }),
      random: fixedRandom(0.25, 0.75),
    });
    const events = record(policy);
    settle(policy.execute(alwaysFails()));
    await clock.runAll();
    expect(events.flatMap((e) => (e.event === 'retry' ? [e.delayMs] : []))).toEqual([25, 150]);
  });

  it('a dynamic backoff option is read from the execution context', async () => {
    const { policy, clock } = setup({
      maxAttempts: 2,
      backoff: backoff.exponential({
        initialMs: (ctx) => (ctx.priority === 'critical' ? 10 : 500),
        jitter: 'none',
      }),
    });
    const events = record(policy);
    settle(policy.execute(alwaysFails(), { priority: 'critical' }));
    settle(policy.execute(alwaysFails()));
    await clock.runAll();
    expect(events.flatMap((e) => (e.event === 'retry' ? [[e.priority, e.delayMs]] : []))).toEqual([
      ['critical', 10],
      ['normal', 500],
    ]);
  });

  it('a zero delay retries without a timer (it only yields to the event loop)', async () => {
    const { policy, clock } = setup({ backoff: backoff.constant(0) });
    const fn = flaky(2);
    await expect(policy.execute(fn)).resolves.toBe('ok@3');
    expect(clock.pending).toBe(0);
  });

  it('a zero-delay retry loop that fails at once can still be stopped by an enclosing timeout (it yields)', async () => {
    const policy = pipeline(
      timeout(20),
      retry({ maxAttempts: Number.POSITIVE_INFINITY, backoff: backoff.constant(0) }),
    );
    let calls = 0;
    const err = await policy
      .execute(() => {
        calls++;
        throw new Error('fails at once');
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(calls).toBeGreaterThan(1);
  });

  it("a delay longer than Node's timer limit (~24.8 days) is waited in full, not fired early", async () => {
    const thirtyDays = 30 * 24 * 3600 * 1000;
    const { policy, clock } = setup({
      maxAttempts: 2,
      handle: handle.results((r: Response) => r.status === 503),
      retryAfter: { maxMs: Number.POSITIVE_INFINITY },
    });
    const fn = vi.fn((ctx: Context) =>
      response(ctx.attempt === 1 ? 503 : 200, { 'Retry-After': String(thirtyDays / 1000) }),
    );
    const done = settle(policy.execute(fn));
    await clock.tick(0);
    expect(clock.nextDue()).toBe(2_147_483_647);
    await clock.tick(thirtyDays - 1);
    expect(fn).toHaveBeenCalledTimes(1);
    await clock.tick(1);
    expect(fn).toHaveBeenCalledTimes(2);
    expect((done.value as Response).status).toBe(200);
  });

  it('a dynamic backoff option returning a bad value rejects with its ConfigError', async () => {
    const { policy, clock } = setup({ backoff: backoff.exponential({ initialMs: () => -1 }) });
    const done = settle(policy.execute(alwaysFails()));
    await clock.runAll();
    expect(done.state).toBe('rejected');
    expect(done.value).toMatchObject({ option: 'backoff.exponential.initialMs(ctx)' });
  });
});

describe('default handling: every error except aborts and nonRetryable()', () => {
  it.each([
    ['an Error', new Error('x')],
    ['a TypeError', new TypeError('x')],
    ['a TimeoutError', new TimeoutError(100)],
    ['a thrown string', 'oops'],
    ['a thrown undefined', undefined],
  ])('retries %s', async (_label, error) => {
    const { policy, clock } = setup({ maxAttempts: 2 });
    const fn = flaky(1, () => error);
    const done = settle(policy.execute(fn));
    await clock.runAll();
    expect(done).toEqual({ state: 'fulfilled', value: 'ok@2' });
  });

  it.each([
    ['a DOMException AbortError', new DOMException('The operation was aborted.', 'AbortError')],
    ['an Error named AbortError', Object.assign(new Error('aborted'), { name: 'AbortError' })],
  ])('does not retry %s', async (_label, error) => {
    const { policy } = setup();
    const fn = alwaysFails(error);
    await expect(policy.execute(fn)).rejects.toBe(error);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it("does not retry an open breaker's BrokenCircuitError (it exists to fail fast)", async () => {
    const { policy } = setup();
    const error = new BrokenCircuitError('b', 'open', 500);
    const fn = alwaysFails(error);
    await expect(policy.execute(fn)).rejects.toBe(error);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('does not retry after the caller aborted during the attempt, and gives up with reason aborted', async () => {
    const { policy } = setup();
    const events = record(policy);
    const controller = new AbortController();
    const failure = new Error('failed because the caller left');
    const fn = vi.fn(() => {
      controller.abort();
      throw failure;
    });
    await expect(policy.execute(fn, { signal: controller.signal })).rejects.toBe(failure);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(events).toEqual([
      {
        kind: 'retry',
        event: 'giveUp',
        name: 'retry',
        priority: 'normal',
        attempt: 1,
        reason: 'aborted',
        error: failure,
      },
    ]);
  });
});

describe('nonRetryable', () => {
  it('an error marked nonRetryable() is never retried, and the giveUp reason is nonRetryable', async () => {
    const { policy } = setup({ maxAttempts: 5 });
    const events = record(policy);
    const error = nonRetryable(new Error('invalid card'));
    const fn = alwaysFails(error);
    await expect(policy.execute(fn)).rejects.toBe(error);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(events).toEqual([
      {
        kind: 'retry',
        event: 'giveUp',
        name: 'retry',
        priority: 'normal',
        attempt: 1,
        reason: 'nonRetryable',
        error,
      },
    ]);
    expect(policy.stats).toEqual({ executions: 1, retries: 0, giveUps: 1 });
  });

  it('wins over any handler, even handle.all() and handle.transient()', async () => {
    for (const h of [handle.all(), handle.transient(), handle.errors(Error)]) {
      const { policy } = setup({ handle: h });
      const error = nonRetryable(Object.assign(new Error('x'), { code: 'ECONNRESET' }));
      const fn = alwaysFails(error);
      await expect(policy.execute(fn)).rejects.toBe(error);
      expect(fn).toHaveBeenCalledTimes(1);
    }
  });

  it('a thrown nonRetryable(primitive) rejects with a NonRetryableError and is not retried', async () => {
    const { policy } = setup();
    const fn = vi.fn(() => {
      throw nonRetryable('bad request');
    });
    const error = await policy.execute(fn).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NonRetryableError);
    expect((error as Error).cause).toBe('bad request');
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('is decided per attempt: a later attempt may fail non-retryably', async () => {
    const { policy, clock } = setup({ maxAttempts: 5 });
    const fn = flaky(3, (n) => (n === 2 ? nonRetryable(new Error('fatal')) : new Error('flaky')));
    const done = settle(policy.execute(fn));
    await clock.runAll();
    expect(fn).toHaveBeenCalledTimes(2);
    expect(done.value).toEqual(new Error('fatal'));
  });
});

describe('handle', () => {
  it('handle.errors(Class) retries that class and rethrows others at once (no giveUp: it was never retryable)', async () => {
    const { policy, clock } = setup({ handle: handle.errors(RangeError) });
    const events = record(policy);
    const ranged = flaky(2, () => new RangeError('r'));
    const done = settle(policy.execute(ranged));
    await clock.runAll();
    expect(done.value).toBe('ok@3');
    const typed = alwaysFails(new TypeError('t'));
    await expect(policy.execute(typed)).rejects.toThrow(TypeError);
    expect(typed).toHaveBeenCalledTimes(1);
    expect(events.filter((e) => e.event === 'giveUp')).toEqual([]);
  });

  it('handle.errors(predicate) retries the errors the predicate accepts', async () => {
    const { policy, clock } = setup({
      handle: handle.errors((e) => (e as { code?: string }).code === 'EBUSY'),
    });
    const busy = flaky(1, () => Object.assign(new Error('busy'), { code: 'EBUSY' }));
    const done = settle(policy.execute(busy));
    await clock.runAll();
    expect(done.value).toBe('ok@2');
    const other = alwaysFails(Object.assign(new Error('x'), { code: 'EPERM' }));
    await expect(policy.execute(other)).rejects.toThrow('x');
    expect(other).toHaveBeenCalledTimes(1);
  });

  it('handle.results retries handled results and returns the last one when giving up', async () => {
    const { policy, clock } = setup({ handle: handle.results((r: { status: number }) => r.status >= 500) });
    const events = record(policy);
    const bad = { status: 503 };
    const fn = vi.fn(() => bad);
    const done = settle(policy.execute(fn));
    await clock.runAll();
    expect(done).toEqual({ state: 'fulfilled', value: bad });
    expect(done.value).toBe(bad);
    expect(fn).toHaveBeenCalledTimes(3);
    expect(events.at(-1)).toEqual({
      kind: 'retry',
      event: 'giveUp',
      name: 'retry',
      priority: 'normal',
      attempt: 3,
      reason: 'maxAttempts',
      result: bad,
    });
  });

  it('a results-only handler does not retry errors', async () => {
    const { policy } = setup({ handle: handle.results(() => true) });
    const fn = alwaysFails();
    await expect(policy.execute(fn)).rejects.toThrow('down');
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('handle.transient() retries transient errors and Response results, not permanent ones', async () => {
    const { policy, clock } = setup({ handle: handle.transient(), maxAttempts: 4 });
    const responses = [response(503), response(429), response(200)];
    const fn = vi.fn(() => responses.shift()!);
    const done = settle(policy.execute(fn));
    await clock.runAll();
    expect((done.value as Response).status).toBe(200);
    expect(fn).toHaveBeenCalledTimes(3);

    const notFound = vi.fn(() => response(404));
    expect((await policy.execute(notFound)).status).toBe(404);
    expect(notFound).toHaveBeenCalledTimes(1);

    const reset = flaky(2, () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
    const r = settle(policy.execute(reset));
    await clock.runAll();
    expect(r.value).toBe('ok@3');

    const invalid = alwaysFails(new Error('invalid input'));
    await expect(policy.execute(invalid)).rejects.toThrow('invalid input');
    expect(invalid).toHaveBeenCalledTimes(1);
  });

  it('handle.none() retries nothing', async () => {
    const { policy } = setup({ handle: handle.none() });
    const fn = alwaysFails();
    await expect(policy.execute(fn)).rejects.toThrow('down');
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('a result predicate that throws rejects the execution with its error', async () => {
    const boom = new Error('predicate bug');
    const { policy } = setup({
      handle: handle.results(() => {
        throw boom;
      }),
    });
    await expect(policy.execute(() => 1)).rejects.toBe(boom);
  });
});

describe('maxDuration', () => {
  it('stops retrying when the next delay would end at or past the limit, with reason maxDuration', async () => {
    const { policy, clock } = setup({ maxAttempts: 10, maxDurationMs: 300, backoff: backoff.constant(100) });
    const events = record(policy);
    const times: number[] = [];
    const error = new Error('x');
    const done = settle(
      policy.execute(() => {
        times.push(clock.now());
        throw error;
      }),
    );
    await clock.runAll();
    // a retry at 300 would start exactly at the limit: not made
    expect(times).toEqual([0, 100, 200]);
    expect(done).toEqual({ state: 'rejected', value: error });
    expect(events.at(-1)).toMatchObject({ event: 'giveUp', reason: 'maxDuration', attempt: 3, error });
  });

  it('one millisecond more allows one more retry', async () => {
    const { policy, clock } = setup({ maxAttempts: 10, maxDurationMs: 301, backoff: backoff.constant(100) });
    const fn = alwaysFails();
    settle(policy.execute(fn));
    await clock.runAll();
    expect(fn).toHaveBeenCalledTimes(4);
  });

  it('counts the time the attempts themselves take, from the start of the first attempt', async () => {
    const { policy, clock } = setup({
      maxAttempts: 10,
      maxDurationMs: 1_000,
      backoff: backoff.constant(100),
    });
    const fn = vi.fn(
      () =>
        new Promise((_, reject) => {
          clock.setTimeout(() => reject(new Error('slow')), 400);
        }),
    );
    settle(policy.execute(fn));
    await clock.runAll();
    // attempt 1: 0–400, retry at 500, attempt 2: 500–900; 900 + 100 >= 1000 stops
    expect(fn).toHaveBeenCalledTimes(2);
  });

  it('a delay longer than the remaining time gives up at once (no pointless wait)', async () => {
    const { policy, clock } = setup({ maxDurationMs: 5_000, backoff: backoff.constant(10_000) });
    const done = settle(policy.execute(alwaysFails()));
    await clock.tick(0);
    expect(done.state).toBe('rejected');
    expect(clock.pending).toBe(0);
  });

  it('returns the handled result when it gives up on maxDuration', async () => {
    const { policy, clock } = setup({ maxDurationMs: 50, handle: handle.results((r) => r === 'bad') });
    const done = settle(policy.execute(() => 'bad'));
    await clock.runAll();
    expect(done).toEqual({ state: 'fulfilled', value: 'bad' });
  });

  it('may be a function of the context', async () => {
    const { policy, clock } = setup({
      maxAttempts: 10,
      maxDurationMs: (ctx) => (ctx.priority === 'critical' ? 1_000 : 150),
    });
    const critical = alwaysFails();
    const normal = alwaysFails();
    settle(policy.execute(critical, { priority: 'critical' }));
    settle(policy.execute(normal));
    await clock.runAll();
    expect(critical).toHaveBeenCalledTimes(10);
    expect(normal).toHaveBeenCalledTimes(2);
  });

  it('a dynamic value that is bad rejects with a ConfigError naming retry.maxDurationMs(ctx)', async () => {
    const { policy, clock } = setup({ maxDurationMs: () => -1 });
    const done = settle(policy.execute(alwaysFails()));
    await clock.runAll();
    expect(done.value).toBeInstanceOf(ConfigError);
    expect((done.value as Error).message).toBe('retry.maxDurationMs(ctx) must be a number >= 0 (got -1)');
  });

  it('0 allows only immediate retries', async () => {
    const delayed = setup({ maxDurationMs: 0, backoff: backoff.constant(1) });
    const fn = alwaysFails();
    await expect(delayed.policy.execute(fn)).rejects.toThrow('down');
    expect(fn).toHaveBeenCalledTimes(1);
  });
});

describe('retryAfter', () => {
  const throttledThenOk = (first: Response) => {
    const fn = vi.fn((ctx: Context) => (ctx.attempt === 1 ? first : response(200)));
    return fn;
  };

  it('waits the Retry-After seconds of a handled Response result', async () => {
    const { policy, clock } = setup({ handle: handle.transient() });
    const fn = throttledThenOk(response(429, { 'Retry-After': '2' }));
    const done = settle(policy.execute(fn));
    await clock.tick(1_999);
    expect(fn).toHaveBeenCalledTimes(1);
    await clock.tick(1);
    expect(fn).toHaveBeenCalledTimes(2);
    expect((done.value as Response).status).toBe(200);
  });

  it("waits until a Retry-After HTTP date, measured on the clock's wall time (clock.date())", async () => {
    const clock = createFakeClock({ date: Date.UTC(2031, 5, 1) });
    const { policy } = setup({ handle: handle.transient() }, clock);
    const events = record(policy);
    const fn = throttledThenOk(
      response(503, { 'Retry-After': new Date(clock.date() + 5_000).toUTCString() }),
    );
    const done = settle(policy.execute(fn));
    await clock.tick(4_999);
    expect(fn).toHaveBeenCalledTimes(1);
    await clock.tick(1);
    expect(fn).toHaveBeenCalledTimes(2);
    expect(events[0]).toMatchObject({ event: 'retry', delayMs: 5_000 });
    expect((done.value as Response).status).toBe(200);
  });

  it('reads an error with plain-object headers', async () => {
    const { policy, clock } = setup();
    const events = record(policy);
    settle(policy.execute(flaky(1, () => retryAfterError({ headers: { 'retry-after': '3' } }))));
    await clock.runAll();
    expect(events[0]).toMatchObject({ event: 'retry', delayMs: 3_000 });
  });

  it('reads an error with a Headers instance', async () => {
    const { policy, clock } = setup();
    const events = record(policy);
    settle(policy.execute(flaky(1, () => retryAfterError({ headers: new Headers({ 'Retry-After': '4' }) }))));
    await clock.runAll();
    expect(events[0]).toMatchObject({ event: 'retry', delayMs: 4_000 });
  });

  it("reads an error's response.headers", async () => {
    const { policy, clock } = setup();
    const events = record(policy);
    const make = () => retryAfterError({ response: { status: 429, headers: { 'retry-after': '5' } } });
    settle(policy.execute(flaky(1, make)));
    await clock.runAll();
    expect(events[0]).toMatchObject({ event: 'retry', delayMs: 5_000 });
  });

  it("reads an error's retryAfterMs (e.g. an open breaker's, when it is handled explicitly)", async () => {
    const { policy, clock } = setup({ handle: handle.errors(BrokenCircuitError) });
    const events = record(policy);
    settle(policy.execute(flaky(1, () => new BrokenCircuitError('b', 'open', 1_234))));
    await clock.runAll();
    expect(events[0]).toMatchObject({ event: 'retry', delayMs: 1_234 });
  });

  it('is capped by retryAfter.max (default 60 000 ms)', async () => {
    const capped = setup({ retryAfter: { maxMs: 5_000 } });
    const cappedEvents = record(capped.policy);
    settle(capped.policy.execute(flaky(1, () => retryAfterError({ headers: { 'retry-after': '3600' } }))));
    await capped.clock.runAll();
    expect(cappedEvents[0]).toMatchObject({ delayMs: 5_000 });

    const byDefault = setup();
    const defaultEvents = record(byDefault.policy);
    settle(byDefault.policy.execute(flaky(1, () => retryAfterError({ headers: { 'retry-after': '3600' } }))));
    await byDefault.clock.runAll();
    expect(defaultEvents[0]).toMatchObject({ delayMs: 60_000 });
  });

  it('the delay is max(backoff, min(asked, max)): a shorter ask never shortens the backoff', async () => {
    const { policy, clock } = setup({ backoff: backoff.constant(3_000) });
    const events = record(policy);
    settle(policy.execute(flaky(1, () => retryAfterError({ headers: { 'retry-after': '1' } }))));
    await clock.runAll();
    expect(events[0]).toMatchObject({ delayMs: 3_000 });

    const capBelowBackoff = setup({ backoff: backoff.constant(3_000), retryAfter: { maxMs: 2_000 } });
    const e2 = record(capBelowBackoff.policy);
    settle(
      capBelowBackoff.policy.execute(flaky(1, () => retryAfterError({ headers: { 'retry-after': '10' } }))),
    );
    await capBelowBackoff.clock.runAll();
    expect(e2[0]).toMatchObject({ delayMs: 3_000 });
  });

  it('is ignored with retryAfter: false (and with max 0)', async () => {
    for (const retryAfter of [false, { maxMs: 0 }] as const) {
      const { policy, clock } = setup({ retryAfter });
      const events = record(policy);
      settle(policy.execute(flaky(1, () => retryAfterError({ headers: { 'retry-after': '30' } }))));
      await clock.runAll();
      expect(events[0]).toMatchObject({ delayMs: 100 });
    }
  });

  it('an invalid Retry-After is ignored (the backoff applies)', async () => {
    const { policy, clock } = setup();
    const events = record(policy);
    settle(policy.execute(flaky(1, () => retryAfterError({ headers: { 'retry-after': 'soon' } }))));
    await clock.runAll();
    expect(events[0]).toMatchObject({ delayMs: 100 });
  });

  it('an ask that would pass maxDuration gives up instead of waiting', async () => {
    const { policy, clock } = setup({ maxDurationMs: 10_000 });
    const events = record(policy);
    const done = settle(policy.execute(alwaysFails(retryAfterError({ headers: { 'retry-after': '20' } }))));
    await clock.tick(0);
    expect(done.state).toBe('rejected');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ event: 'giveUp', reason: 'maxDuration' });
  });
});

describe('events', () => {
  it('onRetry fires before each wait with attempt, delayMs and the error', async () => {
    const { policy, clock } = setup({ name: 'db', maxAttempts: 3 });
    const retries: unknown[] = [];
    policy.onRetry((e) => retries.push({ ...e, at: clock.now() }));
    const errors = [new Error('a'), new Error('b')];
    settle(
      policy.execute(
        flaky(2, (n) => errors[n - 1]),
        { priority: 'high' },
      ),
    );
    await clock.runAll();
    expect(retries).toEqual([
      {
        kind: 'retry',
        event: 'retry',
        name: 'db',
        priority: 'high',
        attempt: 1,
        delayMs: 100,
        error: errors[0],
        at: 0,
      },
      {
        kind: 'retry',
        event: 'retry',
        name: 'db',
        priority: 'high',
        attempt: 2,
        delayMs: 100,
        error: errors[1],
        at: 100,
      },
    ]);
  });

  it('onRetry carries the result (not an error) for a handled result', async () => {
    const { policy, clock } = setup({ handle: handle.results((r) => r === 'bad'), maxAttempts: 2 });
    const retries: RetryEvent[] = [];
    policy.onRetry((e) => retries.push(e));
    settle(policy.execute(() => 'bad'));
    await clock.runAll();
    expect(retries).toHaveLength(1);
    expect(retries[0]).toHaveProperty('result', 'bad');
    expect(retries[0]).not.toHaveProperty('error');
  });

  it('onGiveUp fires once with the reason and the last error; onRetry and onGiveUp each see only their event', async () => {
    const { policy, clock } = setup();
    const giveUps: RetryEvent[] = [];
    const retries: RetryEvent[] = [];
    policy.onGiveUp((e) => giveUps.push(e));
    policy.onRetry((e) => retries.push(e));
    const last = new Error('third');
    settle(policy.execute(flaky(3, (n) => (n === 3 ? last : new Error(String(n))))));
    await clock.runAll();
    expect(giveUps).toEqual([
      {
        kind: 'retry',
        event: 'giveUp',
        name: 'retry',
        priority: 'normal',
        attempt: 3,
        reason: 'maxAttempts',
        error: last,
      },
    ]);
    expect(retries.map((e) => e.event)).toEqual(['retry', 'retry']);
  });

  it("onEvent receives retry events and a final 'success' with the attempt and the total duration", async () => {
    const { policy, clock } = setup();
    const events = record(policy);
    settle(policy.execute(flaky(2)));
    await clock.runAll();
    expect(events.map((e) => e.event)).toEqual(['retry', 'retry', 'success']);
    expect(events[2]).toEqual({
      kind: 'retry',
      event: 'success',
      name: 'retry',
      priority: 'normal',
      attempt: 3,
      durationMs: 200,
    });
  });

  it("a first-try success emits 'success' with attempt 1 when someone listens", async () => {
    const { policy } = setup();
    const events = record(policy);
    await policy.execute(() => 'ok');
    expect(events).toEqual([
      { kind: 'retry', event: 'success', name: 'retry', priority: 'normal', attempt: 1, durationMs: 0 },
    ]);
  });

  it('every disposer form stops delivery (call, dispose(), Symbol.dispose)', async () => {
    const { policy, clock } = setup();
    const seen = { onEvent: 0, onRetry: 0, onGiveUp: 0 };
    const d1 = policy.onEvent(() => seen.onEvent++);
    const d2 = policy.onRetry(() => seen.onRetry++);
    const d3 = policy.onGiveUp(() => seen.onGiveUp++);
    settle(policy.execute(alwaysFails()));
    await clock.runAll();
    expect(seen).toEqual({ onEvent: 3, onRetry: 2, onGiveUp: 1 });
    d1();
    d2.dispose();
    d3[Symbol.dispose]();
    d1(); // disposing twice is harmless
    settle(policy.execute(alwaysFails()));
    await clock.runAll();
    expect(seen).toEqual({ onEvent: 3, onRetry: 2, onGiveUp: 1 });
  });

  it('the global telemetry bus receives the same events', async () => {
    const { policy, clock } = setup({ name: 'global-test' });
    const local = record(policy);
    const global: unknown[] = [];
    const stop = telemetry.onEvent((e) => {
      if (e.name === 'global-test') global.push(e);
    });
    try {
      settle(policy.execute(flaky(1)));
      await clock.runAll();
    } finally {
      stop();
    }
    expect(global).toHaveLength(2);
    expect(global).toEqual(local);
    expect(global[0]).toBe(local[0]);
  });

  it('the bus alone (no policy listener) is enough to get events', async () => {
    const { policy, clock } = setup({ name: 'bus-only' });
    const global: string[] = [];
    const stop = telemetry.onEvent((e) => {
      if (e.name === 'bus-only') global.push(e.event);
    });
    try {
      settle(policy.execute(flaky(1)));
      await clock.runAll();
    } finally {
      stop();
    }
    expect(global).toEqual(['retry', 'success']);
  });

  it('a listener that throws does not break the execution (it becomes a process warning)', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const { policy, clock } = setup();
      policy.onRetry(() => {
        throw new Error('listener bug');
      });
      const done = settle(policy.execute(flaky(1)));
      await clock.runAll();
      expect(done.value).toBe('ok@2');
      expect(warn).toHaveBeenCalledWith(
        expect.objectContaining({
          name: 'BulwarkListenerError',
          message: 'A Bulwark event listener threw: listener bug',
          cause: expect.objectContaining({ message: 'listener bug' }),
        }),
      );
    } finally {
      warn.mockRestore();
    }
  });
});

describe('stats', () => {
  it('counts executions, retries made and executions that gave up', async () => {
    const { policy, clock } = setup({ maxAttempts: 3 });
    expect(policy.stats).toEqual({ executions: 0, retries: 0, giveUps: 0 });
    await policy.execute(() => 'ok');
    settle(policy.execute(flaky(1)));
    settle(policy.execute(alwaysFails()));
    await clock.runAll();
    await policy.execute(alwaysFails(nonRetryable(new Error('x')))).catch(() => {});
    expect(policy.stats).toEqual({ executions: 4, retries: 3, giveUps: 2 });
  });

  it('is a snapshot, not a live object', async () => {
    const { policy } = setup();
    const before = policy.stats;
    await policy.execute(() => 1);
    expect(before.executions).toBe(0);
    expect(policy.stats.executions).toBe(1);
  });
});

describe('the execution context', () => {
  it('the function sees ctx.attempt 1, 2, 3 (1-based) and the priority, name and props', async () => {
    const { policy, clock } = setup();
    const seen: [number, string, string | undefined, unknown][] = [];
    settle(
      policy.execute(
        (ctx) => {
          seen.push([ctx.attempt, ctx.priority, ctx.name, ctx.props.orderId]);
          throw new Error('x');
        },
        { priority: 'critical', name: 'charge', props: { orderId: 7 } },
      ),
    );
    await clock.runAll();
    expect(seen).toEqual([
      [1, 'critical', 'charge', 7],
      [2, 'critical', 'charge', 7],
      [3, 'critical', 'charge', 7],
    ]);
  });

  it('ctx.attempt is 1-based in both the fast path and the event path', async () => {
    const { policy, clock } = setup();
    const fast: number[] = [];
    settle(
      policy.execute(({ attempt }) => {
        fast.push(attempt);
        throw new Error('x');
      }),
    );
    await clock.runAll();
    record(policy);
    const slow: number[] = [];
    settle(
      policy.execute(({ attempt }) => {
        slow.push(attempt);
        throw new Error('x');
      }),
    );
    await clock.runAll();
    expect(fast).toEqual([1, 2, 3]);
    expect(slow).toEqual([1, 2, 3]);
  });
});

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
    expect(events.at(-1)).toEqual({
      kind: 'retry',
      event: 'giveUp',
      name: 'retry',
      priority: 'normal',
      attempt: 1,
      reason: 'aborted',
      error: reason,
    });
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
    expect(events).toEqual([
      {
        kind: 'retry',
        event: 'giveUp',
        name: 'retry',
        priority: 'normal',
        attempt: 1,
        reason: 'aborted',
        error: reason,
      },
    ]);
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
