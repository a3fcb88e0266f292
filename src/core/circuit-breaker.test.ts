import { describe, expect, it, vi } from 'vitest';
import {
  BrokenCircuitError,
  BulkheadRejectedError,
  backoff,
  bulkhead,
  type CircuitBreakerEvent,
  type CircuitBreakerOptions,
  type CircuitState,
  ConfigError,
  circuitBreaker,
  handle,
  type PolicyEvent,
  pipeline,
  type SavedCircuitState,
  TimeoutError,
  telemetry,
  timeout,
} from '../index.js';
import { createFakeClock, type FakeClock, fixedRandom } from '../testing/index.js';

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

function outcome(p: Promise<unknown>): Promise<Outcome> {
  return p.then(
    (value) => ({ ok: true, value }),
    (error: unknown) => ({ ok: false, error }),
  );
}

class NotFound extends Error {}

/** A breaker on a fake clock, with helpers to run calls through it. */
function setup(options: Omit<CircuitBreakerOptions, 'clock'> = {}, clock: FakeClock = createFakeClock()) {
  const breaker = circuitBreaker({ clock, ...options });
  const events: CircuitBreakerEvent[] = [];
  breaker.onEvent((e) => events.push(e));
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      clock.setTimeout(resolve, ms);
    });
  const priority = (p: string | undefined) => (p === undefined ? undefined : { priority: p });
  /** A call that succeeds at once. */
  const pass = (p?: string) => outcome(breaker.execute(() => 'ok', priority(p)));
  /** A call that fails at once. */
  const fail = (error: unknown = new Error('boom'), p?: string) =>
    outcome(
      breaker.execute(() => {
        throw error;
      }, priority(p)),
    );
  /** Starts a call that settles after `ms` of fake time (does not advance the clock). */
  const start = (ms: number, error?: unknown, p?: string) =>
    outcome(
      breaker.execute(async () => {
        await sleep(ms);
        if (error !== undefined) throw error;
        return 'ok';
      }, priority(p)),
    );
  /** A call that takes `ms` of fake time (advances the clock). */
  const slow = async (ms: number, error?: unknown) => {
    const p = start(ms, error);
    await clock.tick(ms);
    return p;
  };
  const changes = () => events.filter((e) => e.event === 'stateChange').map((e) => `${e.from}->${e.to}`);
  return { breaker, clock, events, pass, fail, start, slow, sleep, changes };
}

function expectRejected(o: Outcome, state: CircuitState, retryAfterMs?: number): BrokenCircuitError {
  expect(o.ok).toBe(false);
  const error = (o as { error: unknown }).error;
  expect(error).toBeInstanceOf(BrokenCircuitError);
  const e = error as BrokenCircuitError;
  expect(e.code).toBe('BREAKER_OPEN');
  expect(e.state).toBe(state);
  if (retryAfterMs !== undefined) expect(e.retryAfterMs).toBe(retryAfterMs);
  return e;
}

function expectPassed(o: Outcome): void {
  expect(o.ok ? 'passed' : (o.error as Error).message).toBe('passed');
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('circuitBreaker: consecutive breaker', () => {
  it('defaults to 5 consecutive failures', async () => {
    const { breaker, fail, pass } = setup();
    for (let i = 0; i < 4; i++) await fail();
    expect(breaker.state).toBe('closed');
    await fail();
    expect(breaker.state).toBe('open');
    expectRejected(await pass(), 'open');
  });

  it('opens after `threshold` failures in a row; a success resets the streak', async () => {
    const { breaker, fail, pass, events } = setup({ breaker: { kind: 'consecutive', threshold: 3 } });
    await fail();
    await fail();
    expect(breaker.stats).toMatchObject({ calls: 2, failures: 2, slow: 0 });
    await pass();
    expect(breaker.stats).toMatchObject({ calls: 0, failures: 0 });
    await fail();
    await fail();
    expect(breaker.state).toBe('closed');
    await fail();
    expect(breaker.state).toBe('open');
    const open = events.find((e) => e.event === 'stateChange' && e.to === 'open');
    expect(open).toMatchObject({ from: 'closed', reason: '3 consecutive failures' });
  });

  it('passes results and errors through unchanged', async () => {
    const { breaker } = setup();
    await expect(breaker.execute(() => 42)).resolves.toBe(42);
    await expect(breaker.execute(async () => 'async')).resolves.toBe('async');
    const error = new Error('mine');
    await expect(
      breaker.execute(() => {
        throw error;
      }),
    ).rejects.toBe(error);
  });

  it('does not accept slowCall (slow calls need a rate window)', () => {
    const error = configError(() =>
      circuitBreaker({ breaker: { kind: 'consecutive', slowCall: { durationMs: 10 } } as never }),
    );
    expect(error.option).toBe('circuitBreaker.breaker.slowCall');
  });
});

describe('circuitBreaker: count breaker', () => {
  it('waits for minimumCalls, then opens when the failure rate reaches failureRateThreshold', async () => {
    const { breaker, fail, pass, events } = setup({
      breaker: { kind: 'count', size: 10, minimumCalls: 4, failureRateThreshold: 0.5 },
    });
    await fail();
    await fail();
    await fail();
    expect(breaker.state).toBe('closed'); // 100% but only 3 calls
    await pass(); // 3 of 4 failed
    expect(breaker.state).toBe('open');
    expect(events.find((e) => e.event === 'stateChange')).toMatchObject({
      reason: 'failure rate 75% >= 50% over 4 calls',
    });
  });

  it('minimumCalls defaults to size', async () => {
    const { breaker, fail, pass } = setup({ breaker: { kind: 'count', size: 4 } });
    await fail();
    await fail();
    await fail();
    expect(breaker.state).toBe('closed');
    await pass();
    expect(breaker.state).toBe('open');
  });

  it('looks at the last `size` calls only (the ring wraps around)', async () => {
    const { breaker, fail, pass } = setup({
      breaker: { kind: 'count', size: 4, minimumCalls: 4, failureRateThreshold: 0.75 },
    });
    await fail();
    await fail();
    await pass();
    await pass(); // F F S S: 50%
    expect(breaker.stats).toMatchObject({ calls: 4, failures: 2 });
    await pass(); // F S S S
    await pass(); // S S S S
    expect(breaker.stats).toMatchObject({ calls: 4, failures: 0 });
    for (let i = 0; i < 9; i++) await pass(); // several turns of the ring
    await fail();
    await fail();
    expect(breaker.state).toBe('closed'); // S S F F: 50%
    await fail(); // S F F F: 75%
    expect(breaker.state).toBe('open');
  });

  it('slow successes open it (slowCall.durationMs, rateThreshold), timed on the clock', async () => {
    const { breaker, slow, events } = setup({
      breaker: {
        kind: 'count',
        size: 4,
        minimumCalls: 4,
        failureRateThreshold: 1,
        slowCall: { durationMs: 100, rateThreshold: 0.5 },
      },
    });
    expectPassed(await slow(99)); // not slow
    expectPassed(await slow(100)); // slow: >= durationMs
    expectPassed(await slow(10));
    expect(breaker.stats).toMatchObject({ calls: 3, failures: 0, slow: 1 });
    expectPassed(await slow(250));
    expect(breaker.state).toBe('open');
    expect(events.find((e) => e.event === 'stateChange')).toMatchObject({
      reason: 'slow-call rate 50% >= 50% over 4 calls',
    });
    const durations = events.flatMap((e) => (e.event === 'success' ? [[e.durationMs, e.slow]] : []));
    expect(durations).toEqual([
      [99, false],
      [100, true],
      [10, false],
      [250, true],
    ]);
  });

  it('slowCall.rateThreshold defaults to 1 (every call in the window slow)', async () => {
    const { breaker, slow } = setup({
      breaker: { kind: 'count', size: 2, failureRateThreshold: 1, slowCall: { durationMs: 50 } },
    });
    await slow(50);
    await slow(10);
    expect(breaker.state).toBe('closed');
    await slow(60);
    expect(breaker.state).toBe('closed'); // 1 of 2 slow
    await slow(70);
    expect(breaker.state).toBe('open');
  });
});

describe('circuitBreaker: time breaker', () => {
  const breakerOpts = {
    kind: 'time',
    windowMs: 1000,
    buckets: 4,
    minimumThroughput: 4,
    failureRateThreshold: 0.5,
  } as const;

  it('makes no decision below minimumThroughput', async () => {
    const { breaker, fail, pass } = setup({ breaker: breakerOpts });
    await fail();
    await fail();
    await fail();
    expect(breaker.state).toBe('closed');
    await pass();
    expect(breaker.state).toBe('open');
  });

  it('forgets calls whose bucket left the window; buckets roll off whole', async () => {
    const { breaker, clock, fail, pass } = setup({ breaker: breakerOpts });
    await fail(); // t=0, bucket 0
    await clock.tick(249);
    await fail(); // t=249, bucket 0
    await clock.tick(1);
    await pass(); // t=250, bucket 1
    await clock.tick(749); // t=999
    expect(breaker.stats).toMatchObject({ calls: 3, failures: 2 });
    await clock.tick(1); // t=1000: bucket 0 leaves whole
    expect(breaker.stats).toMatchObject({ calls: 1, failures: 0 });
    await fail();
    await fail();
    expect(breaker.state).toBe('closed'); // 3 calls: below minimumThroughput
    await fail(); // 3 of 4 failed
    expect(breaker.state).toBe('open');
  });

  it('slow successes open it too', async () => {
    const { breaker, slow, events } = setup({
      breaker: { ...breakerOpts, failureRateThreshold: 1, slowCall: { durationMs: 20, rateThreshold: 0.75 } },
    });
    await slow(20);
    await slow(5);
    await slow(30);
    expect(breaker.stats).toMatchObject({ calls: 3, slow: 2 });
    await slow(40);
    expect(breaker.state).toBe('open');
    expect(events.find((e) => e.event === 'stateChange')).toMatchObject({
      reason: 'slow-call rate 75% >= 75% over 4 calls',
    });
  });

  it('slow calls roll off with their bucket', async () => {
    const { breaker, clock, slow } = setup({
      breaker: { ...breakerOpts, failureRateThreshold: 1, slowCall: { durationMs: 20, rateThreshold: 0.5 } },
    });
    await slow(30); // recorded at t=30, bucket 0
    await clock.tick(1000);
    expect(breaker.stats).toMatchObject({ calls: 0, slow: 0 });
  });
});

describe('circuitBreaker: open state', () => {
  it('rejects with BrokenCircuitError: code, breaker name, state and retryAfterMs', async () => {
    const { breaker, clock, fail, pass } = setup({
      name: 'inventory',
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfter: 10_000,
    });
    await fail();
    await clock.tick(2_500);
    const e = expectRejected(await pass(), 'open', 7_500);
    expect(e.breaker).toBe('inventory');
    expect(e.name).toBe('BrokenCircuitError');
    expect(e.message).toBe(
      'Circuit breaker "inventory" rejected the call: it opened after repeated failures; retry in 7500 ms or serve a fallback',
    );
    expect(breaker.stats.retryAfterMs).toBe(7_500);
  });

  it('does not run the function while open', async () => {
    const { breaker, fail } = setup({ breaker: { kind: 'consecutive', threshold: 1 } });
    await fail();
    const fn = vi.fn(() => 'ok');
    expectRejected(await outcome(breaker.execute(fn)), 'open');
    expect(fn).not.toHaveBeenCalled();
  });

  it.each([
    { kind: 'consecutive', threshold: 1 },
    { kind: 'count', size: 1 },
  ] as const)('with no listener at all, the break of a %j breaker starts when it opens', async (b) => {
    // A clock far from 0, as performance.now() is in a long-running process.
    const clock = createFakeClock({ now: 3_600_000 });
    const breaker = circuitBreaker({ clock, breaker: b, halfOpenAfter: 1_000 });
    await outcome(
      breaker.execute(() => {
        throw new Error('down');
      }),
    );
    expect(breaker.stats.retryAfterMs).toBe(1_000);
    expectRejected(await outcome(breaker.execute(() => 'x')), 'open', 1_000);
    await clock.tick(1_000);
    expectPassed(await outcome(breaker.execute(() => 'x')));
    expect(breaker.state).toBe('closed');
  });

  it('with no listener, a failed probe starts a new break', async () => {
    const clock = createFakeClock({ now: 3_600_000 });
    const breaker = circuitBreaker({
      clock,
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfter: 1_000,
    });
    const down = () => {
      throw new Error('down');
    };
    await outcome(breaker.execute(down));
    await clock.tick(1_000);
    await outcome(breaker.execute(down)); // the probe fails
    expectRejected(await outcome(breaker.execute(() => 'x')), 'open', 1_000);
  });

  it('defaults halfOpenAfter to 30 s', async () => {
    const { breaker, clock, fail, pass } = setup({ breaker: { kind: 'consecutive', threshold: 1 } });
    await fail();
    await clock.tick(29_999);
    expectRejected(await pass(), 'open', 1);
    await clock.tick(1);
    expectPassed(await pass());
    expect(breaker.state).toBe('closed');
  });

  it('turns half-open on the first call after halfOpenAfter (not before)', async () => {
    const { breaker, clock, fail, pass, changes } = setup({
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfter: 1_000,
    });
    await fail();
    await clock.tick(5_000);
    expect(breaker.state).toBe('open'); // nothing happened yet
    expect(breaker.stats.retryAfterMs).toBe(0);
    expectPassed(await pass());
    expect(changes()).toEqual(['closed->open', 'open->half-open', 'half-open->closed']);
  });
});

describe('circuitBreaker: half-open state', () => {
  it('admits `halfOpen.probes` concurrent probes and rejects the rest (state half-open)', async () => {
    const { breaker, clock, fail, start, pass } = setup({
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfter: 100,
      halfOpen: { probes: 2 },
    });
    await fail();
    await clock.tick(100);
    const p1 = start(50);
    expect(breaker.state).toBe('half-open');
    const p2 = start(50);
    const e = expectRejected(await pass(), 'half-open', 0);
    expect(e.message).toContain('half-open and its probe slots are taken');
    await clock.tick(50);
    expectPassed(await p1);
    expectPassed(await p2);
    expect(breaker.state).toBe('closed'); // successThreshold defaults to probes
  });

  it('closes after `successThreshold` successful probes', async () => {
    const { breaker, clock, fail, pass, changes } = setup({
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfter: 100,
      halfOpen: { probes: 1, successThreshold: 3 },
    });
    await fail();
    await clock.tick(100);
    await pass();
    await pass();
    expect(breaker.state).toBe('half-open');
    await pass();
    expect(breaker.state).toBe('closed');
    expect(changes()).toEqual(['closed->open', 'open->half-open', 'half-open->closed']);
  });

  it('a probe slot frees when its probe succeeds without closing the breaker', async () => {
    const { breaker, clock, fail, start, pass } = setup({
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfter: 100,
      halfOpen: { probes: 1, successThreshold: 2 },
    });
    await fail();
    await clock.tick(100);
    const probe = start(10);
    expectRejected(await pass(), 'half-open');
    await clock.tick(10);
    expectPassed(await probe);
    expectPassed(await pass());
    expect(breaker.state).toBe('closed');
  });

  it('re-opens on one failed probe; the other probes in flight no longer count', async () => {
    const { breaker, clock, fail, start, events } = setup({
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfter: 100,
      halfOpen: { probes: 3, successThreshold: 2 },
    });
    await fail();
    await clock.tick(100);
    const good1 = start(20);
    const bad = start(10, new Error('still down'));
    const good2 = start(30);
    await clock.tick(10);
    expect(breaker.state).toBe('open');
    await clock.tick(20);
    await Promise.all([good1, bad, good2]);
    expect(breaker.state).toBe('open'); // the late successes did not close it
    expect(events.filter((e) => e.event === 'stateChange').at(-1)).toMatchObject({
      from: 'half-open',
      to: 'open',
      reason: 'half-open probe failed',
      breakMs: 100,
    });
  });

  it('re-opens on a slow probe when slowCall is set', async () => {
    const { breaker, clock, fail, slow, events } = setup({
      breaker: { kind: 'count', size: 1, failureRateThreshold: 1, slowCall: { durationMs: 50 } },
      halfOpenAfter: 100,
    });
    await fail();
    await clock.tick(100);
    expectPassed(await slow(60)); // the caller gets the result...
    expect(breaker.state).toBe('open'); // ...but the dependency is still too slow
    expect(events.filter((e) => e.event === 'stateChange').at(-1)).toMatchObject({
      reason: 'slow half-open probe',
    });
    await clock.tick(100);
    await slow(49);
    expect(breaker.state).toBe('closed');
  });

  it('an excluded probe counts neither way and releases its slot', async () => {
    const { breaker, clock, fail, pass } = setup({
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfter: 100,
      exclude: handle.errors(NotFound),
    });
    await fail();
    await clock.tick(100);
    await fail(new NotFound());
    expect(breaker.state).toBe('half-open');
    expectPassed(await pass()); // admitted as a probe: the slot was released
    expect(breaker.state).toBe('closed');
  });

  it('a probe aborted by its caller releases its slot', async () => {
    const { breaker, clock, fail, sleep, pass } = setup({
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfter: 100,
    });
    await fail();
    await clock.tick(100);
    const controller = new AbortController();
    const probe = outcome(
      breaker.execute(
        async ({ signal }) => {
          await sleep(1_000);
          signal.throwIfAborted();
          return 'late';
        },
        { signal: controller.signal },
      ),
    );
    controller.abort(new Error('user went away'));
    await clock.tick(1_000);
    expect((await probe).ok).toBe(false);
    expect(breaker.state).toBe('half-open');
    expectPassed(await pass());
    expect(breaker.state).toBe('closed');
  });

  it('closing forgets the counts from before the break', async () => {
    const { breaker, clock, fail, pass } = setup({
      breaker: { kind: 'count', size: 4, minimumCalls: 2, failureRateThreshold: 0.5 },
      halfOpenAfter: 100,
    });
    await pass();
    await fail();
    expect(breaker.state).toBe('open');
    expect(breaker.stats).toMatchObject({ calls: 2, failures: 1 }); // kept while open
    await clock.tick(100);
    await pass();
    expect(breaker.state).toBe('closed');
    expect(breaker.stats).toMatchObject({ calls: 0, failures: 0 });
    await pass();
    await fail(); // 1 of 2: opens again only because this window is fresh
    expect(breaker.state).toBe('open');
  });
});

describe('circuitBreaker: halfOpenAfter as a backoff', () => {
  it('grows with consecutive opens and resets after a close', async () => {
    const { breaker, clock, fail, pass, events } = setup({
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfter: backoff.exponential({ initialMs: 1_000, factor: 2, maxMs: 5_000, jitter: 'none' }),
    });
    const breaks = () =>
      events.flatMap((e) => (e.event === 'stateChange' && e.to === 'open' ? [e.breakMs] : []));
    await fail();
    for (const ms of [1_000, 2_000, 4_000, 5_000]) {
      expect(breaker.stats.retryAfterMs).toBe(ms);
      await clock.tick(ms - 1);
      expectRejected(await pass(), 'open', 1);
      await clock.tick(1);
      await fail(); // the probe fails: open again, for longer
    }
    expect(breaks()).toEqual([1_000, 2_000, 4_000, 5_000, 5_000]);
    await clock.tick(5_000);
    await pass(); // closes
    expect(breaker.state).toBe('closed');
    await fail();
    expect(breaks().at(-1)).toBe(1_000);
    expect(breaker.stats.retryAfterMs).toBe(1_000);
  });

  it('uses the `random` option for a jittered backoff', async () => {
    const { breaker, fail } = setup({
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfter: backoff.exponential({ initialMs: 1_000, jitter: 'full' }),
      random: fixedRandom(0.25),
    });
    await fail();
    expect(breaker.stats.retryAfterMs).toBe(250);
  });

  it('accepts 0 ms: the next call is a probe', async () => {
    const { breaker, fail, pass } = setup({
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfter: 0,
    });
    await fail();
    expect(breaker.state).toBe('open');
    expectPassed(await pass());
    expect(breaker.state).toBe('closed');
  });
});

describe('circuitBreaker: calls admitted under an earlier state', () => {
  it('a slow call admitted while closed cannot re-open a half-open breaker when it fails late', async () => {
    const { breaker, clock, fail, start, changes } = setup({
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfter: 100,
      halfOpen: { probes: 1 },
    });
    const late = start(500, new Error('late failure')); // admitted while closed
    await fail(); // opens at t=0
    await clock.tick(100);
    const probe = start(1_000); // t=100: half-open, the probe runs until t=1100
    expect(breaker.state).toBe('half-open');
    await clock.tick(400); // t=500: the old call fails
    expect((await late).ok).toBe(false);
    expect(breaker.state).toBe('half-open');
    await clock.tick(600);
    expectPassed(await probe);
    expect(breaker.state).toBe('closed');
    expect(changes()).toEqual(['closed->open', 'open->half-open', 'half-open->closed']);
  });

  it('a slow success admitted while closed does not count after the breaker re-closed', async () => {
    const { breaker, clock, fail, start } = setup({
      breaker: { kind: 'consecutive', threshold: 2 },
      halfOpenAfter: 100,
    });
    const late = start(1_000); // admitted while closed, succeeds at t=1000
    await fail();
    await fail(); // open
    await clock.tick(100);
    await outcome(breaker.execute(() => 'probe')); // closed again
    await fail(); // streak 1 in the new closed period
    await clock.tick(900);
    expectPassed(await late);
    await fail(); // had the late success counted, the streak would be 1 now
    expect(breaker.state).toBe('open');
  });

  it('a probe that settles after the breaker was reset does not count', async () => {
    const { breaker, clock, fail, start } = setup({
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfter: 100,
    });
    await fail();
    await clock.tick(100);
    const probe = start(50, new Error('failed probe'));
    breaker.reset();
    await clock.tick(50);
    await probe;
    expect(breaker.state).toBe('closed');
    expect(breaker.stats).toMatchObject({ calls: 0, failures: 0 });
  });

  it('still reports the late outcome as an event', async () => {
    const { clock, fail, start, events } = setup({ breaker: { kind: 'consecutive', threshold: 1 } });
    const late = start(10, new Error('late'));
    await fail();
    await clock.tick(10);
    await late;
    expect(events.filter((e) => e.event === 'failure')).toHaveLength(2);
  });
});

describe('circuitBreaker: handle and exclude', () => {
  it('counts only handled errors; other errors count as successes', async () => {
    const { breaker, fail } = setup({
      breaker: { kind: 'consecutive', threshold: 2 },
      handle: handle.errors(TypeError),
    });
    await fail(new TypeError('a'));
    await fail(new RangeError('not a failure')); // the dependency answered
    await fail(new TypeError('b'));
    expect(breaker.state).toBe('closed');
    await fail(new TypeError('c'));
    expect(breaker.state).toBe('open');
  });

  it('counts handled results as failures and still returns them', async () => {
    const { breaker, events } = setup({
      breaker: { kind: 'consecutive', threshold: 2 },
      handle: handle.results((r: { status: number }) => r.status >= 500),
    });
    await expect(breaker.execute(() => ({ status: 503 }))).resolves.toEqual({ status: 503 });
    await breaker.execute(() => ({ status: 200 }));
    await breaker.execute(() => ({ status: 500 }));
    expect(breaker.state).toBe('closed');
    await breaker.execute(() => ({ status: 502 }));
    expect(breaker.state).toBe('open');
    expect(events.filter((e) => e.event === 'failure' || e.event === 'success').map((e) => e.event)).toEqual([
      'failure',
      'success',
      'failure',
      'failure',
    ]);
  });

  it('by default counts every error and no result', async () => {
    const { breaker, fail } = setup({ breaker: { kind: 'consecutive', threshold: 2 } });
    await breaker.execute(() => ({ status: 503 }));
    await fail('a string');
    await fail(null);
    expect(breaker.state).toBe('open');
  });

  it('exclude: matching errors and results count neither way', async () => {
    const { breaker, fail, events } = setup({
      breaker: { kind: 'consecutive', threshold: 2 },
      exclude: handle.errors(NotFound).orResults((r: { status: number }) => r.status === 404),
    });
    await fail();
    await fail(new NotFound('no such order')); // does not reset the streak
    await breaker.execute(() => ({ status: 404 }));
    expect(breaker.stats).toMatchObject({ calls: 1, failures: 1 });
    await fail();
    expect(breaker.state).toBe('open');
    expect(events.filter((e) => e.event === 'excluded')).toHaveLength(2);
  });

  it('exclude wins over handle', async () => {
    const { breaker, fail } = setup({
      breaker: { kind: 'consecutive', threshold: 1 },
      handle: handle.all(),
      exclude: handle.errors(NotFound),
    });
    await fail(new NotFound());
    expect(breaker.state).toBe('closed');
  });

  it("by default a bulkhead's rejection counts neither way (the dependency was never called)", async () => {
    const { breaker, clock, sleep } = setup({ breaker: { kind: 'consecutive', threshold: 2 } });
    const inner = bulkhead({ limit: 1, clock });
    const policy = pipeline(breaker, inner);
    const down = () => {
      throw new Error('down');
    };
    await outcome(policy.execute(down));
    const blocker = inner.execute(() => sleep(10)); // fills the bulkhead from outside the breaker
    const rejected = await outcome(policy.execute(() => 'never runs'));
    expect((rejected as { error: unknown }).error).toBeInstanceOf(BulkheadRejectedError);
    expect(breaker.stats).toMatchObject({ calls: 1, failures: 1 });
    await clock.tick(10);
    await blocker;
    await outcome(policy.execute(down)); // had the rejection counted as a success, the streak would be 1
    expect(breaker.state).toBe('open');
  });

  it('a half-open probe that the bulkhead rejects neither closes nor re-opens the breaker', async () => {
    const { breaker, clock, sleep, changes } = setup({
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfter: 100,
    });
    const inner = bulkhead({ limit: 1, clock });
    const policy = pipeline(breaker, inner);
    await outcome(
      policy.execute(() => {
        throw new Error('down');
      }),
    );
    await clock.tick(100);
    const blocker = inner.execute(() => sleep(10));
    const probe = await outcome(policy.execute(() => 'never runs'));
    expect((probe as { error: unknown }).error).toBeInstanceOf(BulkheadRejectedError);
    expect(breaker.state).toBe('half-open');
    await clock.tick(10);
    await blocker;
    expectPassed(await outcome(policy.execute(() => 'ok'))); // the slot was released
    expect(changes()).toEqual(['closed->open', 'open->half-open', 'half-open->closed']);
  });

  it("a bulkhead's rejection counts when `handle` says so", async () => {
    const clock = createFakeClock();
    const breaker = circuitBreaker({
      clock,
      breaker: { kind: 'consecutive', threshold: 1 },
      handle: handle.errors(BulkheadRejectedError),
    });
    const inner = bulkhead({ limit: 1, clock });
    const blocker = inner.execute(() => new Promise<void>((r) => clock.setTimeout(r, 10)));
    await outcome(pipeline(breaker, inner).execute(() => 'x'));
    expect(breaker.state).toBe('open');
    await clock.tick(10);
    await blocker;
  });

  it("the caller's abort counts neither way", async () => {
    const { breaker, sleep, clock } = setup({ breaker: { kind: 'consecutive', threshold: 1 } });
    const controller = new AbortController();
    const p = outcome(
      breaker.execute(
        async ({ signal }) => {
          await sleep(10);
          signal.throwIfAborted();
        },
        { signal: controller.signal },
      ),
    );
    controller.abort();
    await clock.tick(10);
    expect((await p).ok).toBe(false);
    expect(breaker.state).toBe('closed');
    expect(breaker.stats.calls).toBe(0);
  });

  it('an enclosing timeout counts as a failure', async () => {
    const clock = createFakeClock();
    const breaker = circuitBreaker({ clock, breaker: { kind: 'consecutive', threshold: 1 } });
    const policy = pipeline(timeout({ timeoutMs: 100, clock }), breaker);
    const p = outcome(
      policy.execute(
        ({ signal }) =>
          new Promise((_, reject) => {
            signal.addEventListener('abort', () => reject(signal.reason));
          }),
      ),
    );
    await clock.tick(100);
    expect(((await p) as { error: unknown }).error).toBeInstanceOf(TimeoutError);
    expect(breaker.state).toBe('open');
  });

  it('a TimeoutError from an inner timeout counts as a failure', async () => {
    const clock = createFakeClock();
    const breaker = circuitBreaker({ clock, breaker: { kind: 'consecutive', threshold: 1 } });
    const policy = pipeline(breaker, timeout({ timeoutMs: 100, strategy: 'abandon', clock }));
    const p = outcome(policy.execute(() => new Promise(() => {})));
    await clock.tick(100);
    expect(((await p) as { error: unknown }).error).toBeInstanceOf(TimeoutError);
    expect(breaker.state).toBe('open');
  });
});

describe('circuitBreaker: bypass', () => {
  it('lets a bypass priority through an open breaker, emitted and counted, outcome not counted', async () => {
    const { breaker, fail, pass, events } = setup({
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfter: 1_000,
      bypass: ['critical'],
    });
    await fail();
    expectPassed(await pass('critical'));
    expect((await fail(new Error('x'), 'critical')).ok).toBe(false); // ran, its error surfaced
    expect(breaker.state).toBe('open');
    expect(breaker.stats).toMatchObject({ bypassed: 2, rejected: 0, opened: 1 });
    expectRejected(await pass('normal'), 'open');
    expectRejected(await pass(), 'open');
    expect(events.filter((e) => e.event === 'bypass')).toEqual([
      {
        kind: 'circuitBreaker',
        event: 'bypass',
        name: 'circuitBreaker',
        priority: 'critical',
        attempt: 1,
        state: 'open',
      },
      {
        kind: 'circuitBreaker',
        event: 'bypass',
        name: 'circuitBreaker',
        priority: 'critical',
        attempt: 1,
        state: 'open',
      },
    ]);
    // Its outcome counted neither way: no per-call event for the bypassed calls.
    expect(events.filter((e) => e.event === 'success' || e.event === 'failure')).toHaveLength(1);
  });

  it('passes a half-open breaker whose probe slots are taken, without touching the probes', async () => {
    const { breaker, clock, fail, start, pass, events } = setup({
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfter: 100,
      bypass: ['critical', 'high'],
    });
    await fail();
    await clock.tick(100);
    const probe = start(10);
    expect((await fail(new Error('bypassing failure'), 'high')).ok).toBe(false);
    expectPassed(await pass('critical'));
    expect(breaker.state).toBe('half-open');
    expect(events.filter((e) => e.event === 'bypass').map((e) => [e.priority, e.state])).toEqual([
      ['high', 'half-open'],
      ['critical', 'half-open'],
    ]);
    await clock.tick(10);
    await probe;
    expect(breaker.state).toBe('closed');
    expect(breaker.stats.bypassed).toBe(2);
  });

  it('a bypass priority arriving when a probe slot is free is the probe', async () => {
    const { breaker, clock, fail } = setup({
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfter: 100,
      bypass: ['critical'],
    });
    await fail();
    await clock.tick(100);
    await fail(new Error('probe'), 'critical');
    expect(breaker.state).toBe('open');
    expect(breaker.stats.bypassed).toBe(0);
  });

  it('does not pass an isolated or forced-open breaker', async () => {
    const { breaker, pass } = setup({ bypass: ['critical'] });
    const h = breaker.isolate();
    const e = expectRejected(await pass('critical'), 'isolated', Number.POSITIVE_INFINITY);
    expect(e.message).toContain('isolated by an operator');
    h.release();
    breaker.forceOpen();
    const f = expectRejected(await pass('critical'), 'forced-open', Number.POSITIVE_INFINITY);
    expect(f.message).toContain('forced open by an operator');
    expect(breaker.stats).toMatchObject({ bypassed: 0, rejected: 2 });
  });

  it('has no effect on a closed breaker', async () => {
    const { breaker, fail } = setup({ breaker: { kind: 'consecutive', threshold: 1 }, bypass: ['critical'] });
    await fail(new Error('x'), 'critical');
    expect(breaker.state).toBe('open');
    expect(breaker.stats.bypassed).toBe(0);
  });
});

describe('circuitBreaker: manual control', () => {
  it('isolate() is reference-counted', async () => {
    const { breaker, pass, changes, events } = setup();
    const a = breaker.isolate();
    const b = breaker.isolate();
    expect(breaker.state).toBe('isolated');
    expectRejected(await pass(), 'isolated', Number.POSITIVE_INFINITY);
    a.release();
    expect(breaker.state).toBe('isolated');
    a.release(); // double release: a no-op, b still holds it
    expect(breaker.state).toBe('isolated');
    b.release();
    expect(breaker.state).toBe('closed');
    expectPassed(await pass());
    expect(changes()).toEqual(['closed->isolated', 'isolated->closed']);
    expect(events.find((e) => e.event === 'stateChange')).toMatchObject({ reason: 'isolated' });
  });

  it('an isolation handle releases with release(), dispose() or Symbol.dispose', () => {
    const { breaker } = setup();
    const a = breaker.isolate();
    const b = breaker.isolate();
    const c = breaker.isolate();
    a.dispose();
    b[Symbol.dispose]();
    expect(breaker.state).toBe('isolated');
    c.release();
    c.dispose();
    c[Symbol.dispose]();
    expect(breaker.state).toBe('closed');
  });

  it('a released handle cannot release a later isolation', () => {
    const { breaker } = setup();
    const a = breaker.isolate();
    a.release();
    breaker.isolate();
    a.release();
    expect(breaker.state).toBe('isolated');
  });

  it('isolating an open breaker, then releasing, leaves it open with the break over: the next call is a probe', async () => {
    const { breaker, fail, pass } = setup({ breaker: { kind: 'consecutive', threshold: 1 } });
    await fail();
    const h = breaker.isolate();
    expect(breaker.stats.retryAfterMs).toBe(0);
    h.release();
    expect(breaker.state).toBe('open');
    expect(breaker.stats.opened).toBe(1); // not counted as another open
    expectPassed(await pass());
    expect(breaker.state).toBe('closed');
  });

  it('isolating a disabled breaker, then releasing, leaves it disabled', () => {
    const { breaker } = setup();
    breaker.disable();
    breaker.isolate().release();
    expect(breaker.state).toBe('disabled');
  });

  it('a handle predicate that throws neither breaks the call nor leaks a half-open probe slot', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const clock = createFakeClock();
      const breaker = circuitBreaker({
        breaker: { kind: 'consecutive', threshold: 1 },
        halfOpenAfter: 10,
        handle: handle.errors((e) => (e as { response: { status: number } }).response.status >= 500),
        clock,
      });
      const e500 = Object.assign(new Error('5xx'), { response: { status: 500 } });
      await breaker.execute(() => Promise.reject(e500)).catch(() => {});
      expect(breaker.state).toBe('open');
      await clock.tick(10);
      // the probe fails with an error the predicate cannot read: counted neither way, slot freed
      await expect(breaker.execute(() => Promise.reject(new Error('plain')))).rejects.toThrow('plain');
      expect(breaker.state).toBe('half-open');
      await expect(breaker.execute(() => 'ok')).resolves.toBe('ok');
      expect(breaker.state).toBe('closed');
      expect(warn).toHaveBeenCalledWith(expect.objectContaining({ name: 'BulwarkListenerError' }));
    } finally {
      warn.mockRestore();
    }
  });

  it('a halfOpenAfter backoff that throws keeps the last break duration (and is reported)', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const clock = createFakeClock();
      const breaker = circuitBreaker({
        breaker: { kind: 'consecutive', threshold: 1 },
        halfOpenAfter: backoff.delegate((n) => (n === 1 ? 100 : Number.NaN)),
        clock,
      });
      await breaker.execute(() => Promise.reject(new Error('x'))).catch(() => {});
      expect(breaker.stats.retryAfterMs).toBe(100);
      await clock.tick(100);
      await breaker.execute(() => Promise.reject(new Error('probe fails'))).catch(() => {});
      expect(breaker.state).toBe('open');
      expect(breaker.stats.retryAfterMs).toBe(100);
      expect(warn).toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });

  it('forceOpen() rejects everything until reset(); releasing isolations does not close it', async () => {
    const { breaker, clock, pass, changes } = setup({ halfOpenAfter: 10 });
    const h = breaker.isolate();
    breaker.forceOpen();
    breaker.forceOpen(); // idempotent
    h.release();
    await clock.tick(60_000);
    expect(breaker.state).toBe('forced-open');
    expectRejected(await pass(), 'forced-open', Number.POSITIVE_INFINITY);
    const h2 = breaker.isolate(); // does not downgrade a forced-open breaker
    expect(breaker.state).toBe('forced-open');
    h2.release();
    expect(breaker.state).toBe('forced-open');
    breaker.reset();
    expectPassed(await pass());
    expect(changes()).toEqual(['closed->isolated', 'isolated->forced-open', 'forced-open->closed']);
  });

  it('disable() lets everything through and counts nothing until reset()', async () => {
    const { breaker, fail, pass, events, changes } = setup({
      breaker: { kind: 'consecutive', threshold: 1 },
    });
    breaker.forceOpen();
    breaker.disable();
    breaker.disable(); // idempotent
    expect(breaker.state).toBe('disabled');
    const before = events.length;
    for (let i = 0; i < 5; i++) expect((await fail()).ok).toBe(false);
    expectPassed(await pass());
    expect(events.length).toBe(before); // no per-call events either
    expect(breaker.state).toBe('disabled');
    expect(breaker.stats).toMatchObject({ calls: 0, failures: 0, rejected: 0, opened: 0 });
    breaker.reset();
    await fail();
    expect(breaker.state).toBe('open');
    expect(changes()).toEqual([
      'closed->forced-open',
      'forced-open->disabled',
      'disabled->closed',
      'closed->open',
    ]);
  });

  it('reset() clears isolation, counts and the growing break', async () => {
    const { breaker, clock, fail, pass } = setup({
      breaker: { kind: 'consecutive', threshold: 2 },
      halfOpenAfter: backoff.linear({ initialMs: 100, stepMs: 100 }),
    });
    await fail();
    await fail();
    await clock.tick(100);
    await fail(); // re-opens for 200 ms
    expect(breaker.stats.retryAfterMs).toBe(200);
    expect(breaker.toJSON().openCount).toBe(2);
    breaker.reset();
    expect(breaker.state).toBe('closed');
    expect(breaker.toJSON().openCount).toBe(0);
    expect(breaker.stats).toMatchObject({ calls: 0, failures: 0, retryAfterMs: 0 });
    await fail();
    await fail();
    expect(breaker.stats.retryAfterMs).toBe(100); // the backoff started over
    const h1 = breaker.isolate();
    const h2 = breaker.isolate();
    breaker.reset();
    expect(breaker.state).toBe('closed');
    const h3 = breaker.isolate();
    h1.release(); // stale handles do nothing
    h2.release();
    expect(breaker.state).toBe('isolated');
    h3.release();
    expectPassed(await pass());
  });
});

describe('circuitBreaker: events', () => {
  it('onStateChange, onOpen, onHalfOpen, onClose and onReject', async () => {
    const clock = createFakeClock();
    const breaker = circuitBreaker({
      clock,
      name: 'payments',
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfter: 100,
    });
    const seen: string[] = [];
    breaker.onStateChange((e) => seen.push(`change ${e.from}->${e.to}`));
    breaker.onOpen((e) => seen.push(`open ${e.reason} ${e.breakMs}`));
    breaker.onHalfOpen((e) => seen.push(`half-open ${e.reason ?? '-'} ${e.breakMs ?? '-'}`));
    breaker.onClose((e) => seen.push(`close ${e.from}`));
    breaker.onReject((e) => seen.push(`reject ${e.state} ${e.retryAfterMs} ${e.priority} ${e.name}`));
    await outcome(
      breaker.execute(() => {
        throw new Error('x');
      }),
    );
    await clock.tick(40);
    await outcome(breaker.execute(() => 1, { priority: 'low' }));
    await clock.tick(60);
    await breaker.execute(() => 1);
    expect(seen).toEqual([
      'change closed->open',
      'open 1 consecutive failures 100',
      'reject open 60 low payments',
      'change open->half-open',
      'half-open - -',
      'change half-open->closed',
      'close half-open',
    ]);
  });

  it('stateChange events carry the priority and attempt of the call that caused them', async () => {
    const { fail, events } = setup({ breaker: { kind: 'consecutive', threshold: 1 } });
    await fail(new Error('x'), 'high');
    expect(events.find((e) => e.event === 'stateChange')).toEqual({
      kind: 'circuitBreaker',
      event: 'stateChange',
      name: 'circuitBreaker',
      priority: 'high',
      attempt: 1,
      from: 'closed',
      to: 'open',
      reason: '1 consecutive failures',
      breakMs: 30_000,
    });
  });

  it('manual state changes carry priority normal and attempt 0', () => {
    const { breaker, events } = setup();
    breaker.forceOpen();
    expect(events[0]).toEqual({
      kind: 'circuitBreaker',
      event: 'stateChange',
      name: 'circuitBreaker',
      priority: 'normal',
      attempt: 0,
      from: 'closed',
      to: 'forced-open',
      reason: 'forced open',
    });
  });

  it('onEvent: success, failure and excluded per call, with durationMs, slow and error', async () => {
    const { clock, slow, events } = setup({
      name: 'db',
      breaker: { kind: 'count', size: 10, failureRateThreshold: 1, slowCall: { durationMs: 100 } },
      exclude: handle.errors(NotFound),
    });
    const error = new Error('boom');
    const notFound = new NotFound();
    await slow(30);
    await slow(120, error);
    await slow(5, notFound);
    expect(clock.now()).toBe(155);
    expect(events).toEqual([
      {
        kind: 'circuitBreaker',
        event: 'success',
        name: 'db',
        priority: 'normal',
        attempt: 1,
        durationMs: 30,
        slow: false,
      },
      {
        kind: 'circuitBreaker',
        event: 'failure',
        name: 'db',
        priority: 'normal',
        attempt: 1,
        durationMs: 120,
        slow: true,
        error,
      },
      {
        kind: 'circuitBreaker',
        event: 'excluded',
        name: 'db',
        priority: 'normal',
        attempt: 1,
        durationMs: 5,
        slow: false,
        error: notFound,
      },
    ]);
  });

  it('a listener added while a call is in flight sees a sane duration', async () => {
    const clock = createFakeClock({ now: 5_000 });
    const breaker = circuitBreaker({ clock });
    const p = breaker.execute(() => new Promise((r) => clock.setTimeout(() => r('ok'), 20)));
    const events: CircuitBreakerEvent[] = [];
    breaker.onEvent((e) => events.push(e));
    await clock.tick(20);
    await p;
    const e = events[0] as { durationMs: number };
    expect(e.durationMs).toBeGreaterThanOrEqual(0);
    expect(e.durationMs).toBeLessThanOrEqual(20);
  });

  it('also publishes to the global telemetry bus', async () => {
    const received: PolicyEvent[] = [];
    const stop = telemetry.onEvent((e) => {
      if (e.kind === 'circuitBreaker' && e.name === 'bus-test') received.push(e);
    });
    try {
      const clock = createFakeClock();
      const breaker = circuitBreaker({
        clock,
        name: 'bus-test',
        breaker: { kind: 'consecutive', threshold: 1 },
      });
      await outcome(
        breaker.execute(() => {
          throw new Error('x');
        }),
      );
      await outcome(breaker.execute(() => 1));
      expect(received.map((e) => e.event)).toEqual(['failure', 'stateChange', 'reject']);
    } finally {
      stop();
    }
  });

  it('disposers stop delivery (call, dispose() or Symbol.dispose)', async () => {
    const { breaker, fail, clock } = setup({
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfter: 10,
    });
    const a = vi.fn();
    const b = vi.fn();
    const c = vi.fn();
    const d = vi.fn();
    const offA = breaker.onEvent(a);
    const offB = breaker.onStateChange(b);
    const offC = breaker.onReject(c);
    const offD = breaker.onOpen(d);
    offA();
    offB.dispose();
    offC[Symbol.dispose]();
    offD();
    offD(); // twice is harmless
    await fail();
    await fail();
    await clock.tick(10);
    await fail();
    for (const fn of [a, b, c, d]) expect(fn).not.toHaveBeenCalled();
  });

  it('a throwing listener does not break the breaker', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const { breaker, fail } = setup({ breaker: { kind: 'consecutive', threshold: 1 } });
      breaker.onStateChange(() => {
        throw new Error('listener bug');
      });
      const error = new Error('dependency');
      const o = await fail(error);
      expect((o as { error: unknown }).error).toBe(error);
      expect(breaker.state).toBe('open');
      expect(warn).toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });
});

describe('circuitBreaker: stats', () => {
  it('reports state, window figures and counters', async () => {
    const { breaker, clock, fail, pass } = setup({
      breaker: { kind: 'count', size: 4, minimumCalls: 3, failureRateThreshold: 0.6 },
      halfOpenAfter: 1_000,
      bypass: ['critical'],
    });
    expect(breaker.stats).toEqual({
      state: 'closed',
      calls: 0,
      failures: 0,
      slow: 0,
      rejected: 0,
      bypassed: 0,
      opened: 0,
      retryAfterMs: 0,
    });
    await pass();
    await fail();
    await fail();
    await clock.tick(300);
    await pass();
    await pass('critical');
    await pass('critical');
    expect(breaker.stats).toEqual({
      state: 'open',
      calls: 3,
      failures: 2,
      slow: 0,
      rejected: 1,
      bypassed: 2,
      opened: 1,
      retryAfterMs: 700,
    });
    await clock.tick(700);
    await fail(); // failed probe
    expect(breaker.stats).toMatchObject({ state: 'open', opened: 2, retryAfterMs: 1_000 });
    await clock.tick(1_000);
    await pass();
    expect(breaker.stats).toEqual({
      state: 'closed',
      calls: 0,
      failures: 0,
      slow: 0,
      rejected: 1,
      bypassed: 2,
      opened: 2,
      retryAfterMs: 0,
    });
  });

  it('time-window figures age with the clock', async () => {
    const { breaker, clock, fail } = setup({
      breaker: { kind: 'time', windowMs: 100, buckets: 2, minimumThroughput: 10 },
    });
    await fail();
    expect(breaker.stats.failures).toBe(1);
    await clock.tick(100);
    expect(breaker.stats.failures).toBe(0);
  });
});

describe('circuitBreaker: save and restore', () => {
  function roundTrip(saved: SavedCircuitState): SavedCircuitState {
    return JSON.parse(JSON.stringify(saved)) as SavedCircuitState;
  }

  it('toJSON() describes the state', async () => {
    const clock = createFakeClock({ now: 500, date: Date.UTC(2026, 5, 1) });
    const { breaker, fail } = setup(
      { breaker: { kind: 'consecutive', threshold: 2 }, halfOpenAfter: 1_000 },
      clock,
    );
    await fail();
    await fail();
    await clock.tick(300);
    expect(breaker.toJSON()).toEqual({
      v: 1,
      state: 'open',
      savedAt: Date.UTC(2026, 5, 1) + 300,
      openRemainingMs: 700,
      openCount: 1,
      window: { streak: 2 },
    });
    expect(JSON.parse(JSON.stringify(breaker))).toEqual(breaker.toJSON());
  });

  it('an open breaker restores open with the break time left, less the time spent saved', async () => {
    const a = setup({ breaker: { kind: 'consecutive', threshold: 1 }, halfOpenAfter: 10_000 });
    await a.fail();
    await a.clock.tick(1_000);
    const saved = roundTrip(a.breaker.toJSON());
    expect(saved.openRemainingMs).toBe(9_000);
    // A new process: another monotonic origin, and 3 s of wall-clock time later.
    const clock = createFakeClock({ now: 77, date: a.clock.date() + 3_000 });
    const b = setup(
      { breaker: { kind: 'consecutive', threshold: 1 }, halfOpenAfter: 10_000, initialState: saved },
      clock,
    );
    expect(b.breaker.state).toBe('open');
    expect(b.breaker.stats.retryAfterMs).toBe(6_000);
    expectRejected(await b.pass(), 'open', 6_000);
    await clock.tick(6_000);
    expectPassed(await b.pass());
    expect(b.breaker.state).toBe('closed');
  });

  it('an open breaker whose break passed while saved admits a probe at once', async () => {
    const a = setup({ breaker: { kind: 'consecutive', threshold: 1 }, halfOpenAfter: 1_000 });
    await a.fail();
    const clock = createFakeClock({ date: a.clock.date() + 60_000 });
    const b = setup(
      { breaker: { kind: 'consecutive', threshold: 1 }, initialState: roundTrip(a.breaker.toJSON()) },
      clock,
    );
    expect(b.breaker.state).toBe('open');
    expect(b.breaker.stats.retryAfterMs).toBe(0);
    await b.fail();
    expect(b.changes()).toEqual(['open->half-open', 'half-open->open']);
  });

  it('a half-open breaker restores as open and due', async () => {
    const a = setup({ breaker: { kind: 'consecutive', threshold: 1 }, halfOpenAfter: 100 });
    await a.fail();
    await a.clock.tick(100);
    const probe = a.start(10);
    expect(a.breaker.state).toBe('half-open');
    const saved = roundTrip(a.breaker.toJSON());
    const b = setup({ initialState: saved }, createFakeClock({ date: a.clock.date() }));
    expect(b.breaker.state).toBe('open');
    expect(b.breaker.stats.retryAfterMs).toBe(0);
    expectPassed(await b.pass());
    expect(b.breaker.state).toBe('closed');
    await a.clock.tick(10);
    await probe;
  });

  it('an isolated breaker restores as forced open (handles do not survive); reset() releases it', async () => {
    const a = setup();
    a.breaker.isolate();
    const b = setup({ initialState: roundTrip(a.breaker.toJSON()) });
    expect(b.breaker.state).toBe('forced-open');
    expectRejected(await b.pass(), 'forced-open');
    b.breaker.reset();
    expectPassed(await b.pass());
  });

  it('forced-open, disabled and closed restore as such', () => {
    for (const state of ['forced-open', 'disabled', 'closed'] as const) {
      const a = setup();
      if (state === 'forced-open') a.breaker.forceOpen();
      if (state === 'disabled') a.breaker.disable();
      expect(setup({ initialState: roundTrip(a.breaker.toJSON()) }).breaker.state).toBe(state);
    }
  });

  it('a consecutive streak survives', async () => {
    const opts = { breaker: { kind: 'consecutive', threshold: 3 } } as const;
    const a = setup(opts);
    await a.fail();
    await a.fail();
    const b = setup({ ...opts, initialState: roundTrip(a.breaker.toJSON()) });
    expect(b.breaker.stats).toMatchObject({ calls: 2, failures: 2 });
    await b.fail();
    expect(b.breaker.state).toBe('open');
  });

  it('count-window counts survive', async () => {
    const opts = {
      breaker: {
        kind: 'count',
        size: 5,
        minimumCalls: 5,
        failureRateThreshold: 0.6,
        slowCall: { durationMs: 50 },
      },
    } as const;
    const a = setup(opts);
    await a.fail();
    await a.slow(60);
    await a.pass();
    await a.fail();
    const b = setup({ ...opts, initialState: roundTrip(a.breaker.toJSON()) });
    expect(b.breaker.stats).toMatchObject({ calls: 4, failures: 2, slow: 1 });
    await b.fail();
    expect(b.breaker.state).toBe('open');
  });

  it('time-window counts survive and keep ageing by the time spent saved', async () => {
    const opts = {
      breaker: { kind: 'time', windowMs: 1_000, buckets: 4, minimumThroughput: 3, failureRateThreshold: 0.5 },
    } as const;
    const a = setup(opts);
    await a.fail(); // t=0 (bucket 0)
    await a.clock.tick(500);
    await a.fail(); // t=500 (bucket 2)
    await a.clock.tick(250);
    const saved = roundTrip(a.breaker.toJSON()); // at t=750
    // Restored at once: both failures count.
    const now = setup({ ...opts, initialState: saved }, createFakeClock({ date: a.clock.date() }));
    expect(now.breaker.stats).toMatchObject({ calls: 2, failures: 2 });
    await now.pass();
    expect(now.breaker.state).toBe('open');
    // Restored 250 ms later: the failure from t=0 has left the window.
    const later = setup({ ...opts, initialState: saved }, createFakeClock({ date: a.clock.date() + 250 }));
    expect(later.breaker.stats).toMatchObject({ calls: 1, failures: 1 });
    await later.pass();
    expect(later.breaker.state).toBe('closed');
    // Restored a whole window later: nothing left.
    const stale = setup({ ...opts, initialState: saved }, createFakeClock({ date: a.clock.date() + 1_000 }));
    expect(stale.breaker.stats).toMatchObject({ calls: 0, failures: 0 });
  });

  it('a restored breaker keeps growing its break where it left off', async () => {
    const opts = {
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfter: backoff.linear({ initialMs: 100, stepMs: 100, maxMs: 1_000 }),
    } as const;
    const a = setup(opts);
    await a.fail(); // 100
    await a.clock.tick(100);
    await a.fail(); // 200
    await a.clock.tick(200);
    await a.fail(); // 300
    const saved = roundTrip(a.breaker.toJSON());
    expect(saved.openCount).toBe(3);
    const b = setup({ ...opts, initialState: saved }, createFakeClock({ date: a.clock.date() + 300 }));
    await b.fail(); // half-open probe fails: the 4th open in a row
    expect(b.events.find((e) => e.event === 'stateChange' && e.to === 'open')).toMatchObject({
      breakMs: 400,
    });
  });

  it('a restored state with a wrong window kind is ignored, not fatal', () => {
    const a = setup({ breaker: { kind: 'consecutive', threshold: 3 } });
    const b = setup({
      breaker: { kind: 'time', windowMs: 1_000, buckets: 4 },
      initialState: roundTrip(a.breaker.toJSON()),
    });
    expect(b.breaker.stats.calls).toBe(0);
  });

  it('non-finite saved times cannot hold the breaker open forever', async () => {
    const b = setup({
      initialState: {
        v: 1,
        state: 'open',
        savedAt: Number.NaN,
        openRemainingMs: Number.POSITIVE_INFINITY,
        openCount: 1,
        window: null,
      },
    });
    expect(b.breaker.state).toBe('open');
    expect(Number.isFinite(b.breaker.stats.retryAfterMs)).toBe(true);
    await b.clock.tick(30_000);
    expectPassed(await b.pass());
  });

  it.each([
    [null, 'circuitBreaker.initialState must be an options object (got null)'],
    ['open', 'circuitBreaker.initialState must be an options object (got "open")'],
    [
      { v: 2, state: 'open' },
      'circuitBreaker.initialState must be a value returned by toJSON() (v: 1) (got an object)',
    ],
    [
      { v: 1, state: 'ajar' },
      'circuitBreaker.initialState must be a value returned by toJSON() (v: 1) (got an object)',
    ],
    [{ v: 1 }, 'circuitBreaker.initialState must be a value returned by toJSON() (v: 1) (got an object)'],
  ])('rejects a bad initialState %j with a ConfigError naming it', (initialState, message) => {
    const error = configError(() => circuitBreaker({ initialState: initialState as never }));
    expect(error.option).toBe('circuitBreaker.initialState');
    expect(error.message).toBe(message);
  });
});

describe('circuitBreaker: validation', () => {
  it.each([
    [
      { breaker: { kind: 'consecutive', threshold: 0 } },
      'circuitBreaker.breaker.threshold must be an integer >= 1 (got 0)',
    ],
    [
      { breaker: { kind: 'count', size: 2, minimumCalls: 3 } },
      'circuitBreaker.breaker.minimumCalls must be at most size (2) (got 3)',
    ],
    [
      { breaker: { kind: 'time', windowMs: -5 } },
      'circuitBreaker.breaker.windowMs must be a finite number >= 1 (got -5)',
    ],
    [
      { breaker: { kind: 'ring' } },
      "circuitBreaker.breaker.kind must be one of 'consecutive', 'count', 'time' (got \"ring\")",
    ],
    [{ halfOpenAfter: -1 }, 'circuitBreaker.halfOpenAfter must be a finite number >= 0 (got -1)'],
    [{ halfOpenAfter: '5s' }, 'circuitBreaker.halfOpenAfter must be a finite number >= 0 (got "5s")'],
    [{ halfOpen: 2 }, 'circuitBreaker.halfOpen must be an options object (got 2)'],
    [{ halfOpen: { probes: 0 } }, 'circuitBreaker.halfOpen.probes must be an integer >= 1 (got 0)'],
    [
      { halfOpen: { successThreshold: 0.5 } },
      'circuitBreaker.halfOpen.successThreshold must be an integer >= 1 (got 0.5)',
    ],
    [
      { halfOpen: { calls: 2 } },
      'circuitBreaker.halfOpen.calls is not an option of circuitBreaker.halfOpen; the known options are probes, successThreshold',
    ],
    [
      { handle: () => true },
      'circuitBreaker.handle must be a handler, e.g. handle.transient() (got a function)',
    ],
    [
      { exclude: [NotFound] },
      'circuitBreaker.exclude must be a handler, e.g. handle.errors(NotFoundError) (got an array)',
    ],
    [
      { bypass: 'critical' },
      'circuitBreaker.bypass must be an array of priority names, e.g. [\'critical\'] (got "critical")',
    ],
    [
      { bypass: [1] },
      "circuitBreaker.bypass must be an array of priority names, e.g. ['critical'] (got an array)",
    ],
    [{ random: 0.5 }, 'circuitBreaker.random must be a function (got 0.5)'],
    [{ name: '' }, 'circuitBreaker.name must be a non-empty string (got "")'],
    [
      { halfOpenAfterMs: 10 },
      'circuitBreaker.halfOpenAfterMs is not an option of circuitBreaker; the known options are breaker, halfOpenAfter, halfOpen, handle, exclude, bypass, initialState, random, name, clock',
    ],
  ])('rejects %j', (options, message) => {
    const error = configError(() => circuitBreaker(options as never));
    expect(error.message).toBe(message);
  });

  it('rejects options that are not an object', () => {
    expect(configError(() => circuitBreaker(5 as never)).message).toBe(
      'circuitBreaker must be an options object (got 5)',
    );
  });

  it('accepts an empty options object and no options at all', () => {
    expect(circuitBreaker().state).toBe('closed');
    expect(circuitBreaker({}).name).toBe('circuitBreaker');
    expect(circuitBreaker({}).kind).toBe('circuitBreaker');
  });
});

describe('circuit breaker: integration details', () => {
  it('reset() of a closed breaker forgets the counts but emits no state change', () => {
    const breaker = circuitBreaker({ breaker: { kind: 'consecutive', threshold: 2 } });
    const changes: string[] = [];
    breaker.onStateChange((e) => changes.push(`${e.from}->${e.to}`));
    breaker.reset();
    expect(changes).toEqual([]);
    breaker.forceOpen();
    breaker.reset();
    expect(changes).toEqual(['closed->forced-open', 'forced-open->closed']);
  });

  it('events carry the operation name given to execute', async () => {
    const breaker = circuitBreaker();
    const ops: (string | undefined)[] = [];
    breaker.onEvent((e) => ops.push(e.operation));
    await breaker.execute(() => 1, { name: 'get-user' });
    await breaker.execute(() => 2);
    expect(ops).toEqual(['get-user', undefined]);
  });

  it('a clock that is not a Clock is refused, naming circuitBreaker.clock', () => {
    expect(() => circuitBreaker({ clock: {} as never })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION', option: 'circuitBreaker.clock' }),
    );
  });
});
