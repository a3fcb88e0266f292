import { describe, expect, it, vi } from 'vitest';
// Deliberate repetition: an import list (it matches other files' lists by shape only).
import {
  alwaysFails,
  flaky,
  giveUpEvent,
  record,
  response,
  settle,
  setup,
} from '../../test/support/retry-harness.js';
import {
  BrokenCircuitError,
  backoff,
  ConfigError,
  type Context,
  handle,
  NonRetryableError,
  nonRetryable,
  pipeline,
  retry,
  TimeoutError,
  timeout,
} from '../index.js';
import { createFakeClock, fixedRandom } from '../testing/index.js';

// Deliberate repetition: the end of this file's import list and its first describe/it match other test
// files by shape only (names differ); there is no shared logic to extract.
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
    expect(events).toEqual([giveUpEvent({ attempt: 1, reason: 'aborted', error: failure })]);
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
    expect(events).toEqual([giveUpEvent({ attempt: 1, reason: 'nonRetryable', error })]);
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
    expect(events.at(-1)).toEqual(giveUpEvent({ attempt: 3, reason: 'maxAttempts', result: bad }));
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
