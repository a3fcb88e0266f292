import { describe, expect, it } from 'vitest';
// Deliberate repetition: an import list (it matches other files' lists by shape only).
import {
  expectPassed,
  expectRejected,
  NotFound,
  outcome,
  setup,
  tripped,
} from '../../../test/support/breaker-harness.js';
import {
  BulkheadRejectedError,
  backoff,
  bulkhead,
  circuitBreaker,
  handle,
  pipeline,
  TimeoutError,
  timeout,
} from '../../index.js';
import { createFakeClock, fixedRandom } from '../../testing/index.js';

// Deliberate repetition: the end of this file's import list and its first describe/it match other test
// files by shape only (names differ); there is no shared logic to extract.
describe('circuitBreaker: halfOpenAfterMs as a backoff', () => {
  it('grows with consecutive opens and resets after a close', async () => {
    const { breaker, clock, fail, pass, events } = setup({
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfterMs: backoff.exponential({ initialMs: 1_000, factor: 2, maxMs: 5_000, jitter: 'none' }),
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
      halfOpenAfterMs: backoff.exponential({ initialMs: 1_000, jitter: 'full' }),
      random: fixedRandom(0.25),
    });
    await fail();
    expect(breaker.stats.retryAfterMs).toBe(250);
  });

  it('accepts 0 ms: the next call is a probe', async () => {
    const { breaker, pass } = await tripped(0);
    expect(breaker.state).toBe('open');
    expectPassed(await pass());
    expect(breaker.state).toBe('closed');
  });
});

describe('circuitBreaker: calls admitted under an earlier state', () => {
  it('a slow call admitted while closed cannot re-open a half-open breaker when it fails late', async () => {
    const { breaker, clock, fail, start, changes } = setup({
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfterMs: 100,
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
      halfOpenAfterMs: 100,
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
    const { breaker, clock, start } = await tripped(100);
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

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
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
      halfOpenAfterMs: 100,
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
      halfOpenAfterMs: 1_000,
      bypass: ['critical'],
    });
    await fail();
    expectPassed(await pass('critical'));
    expect((await fail(new Error('x'), 'critical')).ok).toBe(false); // ran, its error surfaced
    expect(breaker.state).toBe('open');
    expect(breaker.stats).toMatchObject({ bypassed: 2, rejected: 0, opened: 1 });
    expectRejected(await pass('normal'), 'open');
    expectRejected(await pass(), 'open');
    const bypass = {
      kind: 'circuitBreaker',
      event: 'bypass',
      name: 'circuitBreaker',
      priority: 'critical',
      attempt: 1,
      state: 'open',
    };
    expect(events.filter((e) => e.event === 'bypass')).toEqual([bypass, bypass]);
    // Its outcome counted neither way: no per-call event for the bypassed calls.
    expect(events.filter((e) => e.event === 'success' || e.event === 'failure')).toHaveLength(1);
  });

  it('passes a half-open breaker whose probe slots are taken, without touching the probes', async () => {
    const { breaker, clock, fail, start, pass, events } = setup({
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfterMs: 100,
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
      halfOpenAfterMs: 100,
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
