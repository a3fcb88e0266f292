import { describe, expect, it, vi } from 'vitest';
// Deliberate repetition: an import list (it matches other files' lists by shape only).
import {
  alwaysFails,
  flaky,
  giveUpEvent,
  record,
  response,
  retryAfterError,
  settle,
  setup,
} from '../../test/support/retry-harness.js';
import {
  BrokenCircuitError,
  backoff,
  ConfigError,
  type Context,
  handle,
  nonRetryable,
  type RetryEvent,
  telemetry,
} from '../index.js';
import { createFakeClock } from '../testing/index.js';

// Deliberate repetition: the end of this file's import list and its first describe/it match other test
// files by shape only (names differ); there is no shared logic to extract.
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
    expect(giveUps).toEqual([giveUpEvent({ attempt: 3, reason: 'maxAttempts', error: last })]);
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
    const attemptsSeen = async () => {
      const seen: number[] = [];
      settle(
        policy.execute(({ attempt }) => {
          seen.push(attempt);
          throw new Error('x');
        }),
      );
      await clock.runAll();
      return seen;
    };
    expect(await attemptsSeen()).toEqual([1, 2, 3]); // no listener: the fast path
    record(policy);
    expect(await attemptsSeen()).toEqual([1, 2, 3]); // with a listener: the event path
  });
});
