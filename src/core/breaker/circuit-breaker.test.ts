import { describe, expect, it, vi } from 'vitest';
// Deliberate repetition: an import list (it matches other files' lists by shape only).
import {
  configError,
  expectPassed,
  expectRejected,
  NotFound,
  outcome,
  setup,
  tripped,
} from '../../../test/support/breaker-harness.js';
import { type CircuitBreakerOptions, circuitBreaker, handle } from '../../index.js';
import { createFakeClock } from '../../testing/index.js';

/** Three failures leave the breaker closed (below 4 samples); a fourth call, a success, opens it (3/4 failed). */
async function expectDecidesAtFourthCall(breaker: NonNullable<CircuitBreakerOptions['breaker']>) {
  const b = setup({ breaker });
  for (let i = 0; i < 3; i++) await b.fail();
  expect(b.breaker.state).toBe('closed');
  await b.pass();
  expect(b.breaker.state).toBe('open');
}

// Deliberate repetition: the end of this file's import list and its first describe/it match other test
// files by shape only (names differ); there is no shared logic to extract.
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
      circuitBreaker({ breaker: { kind: 'consecutive', slowCallMs: 10 } as never }),
    );
    expect(error.option).toBe('circuitBreaker.breaker.slowCallMs');
  });
});

describe('circuitBreaker: count breaker', () => {
  it('waits for minSamples, then opens when the failure rate reaches failureRatio', async () => {
    const { breaker, fail, pass, events } = setup({
      breaker: { kind: 'count', size: 10, minSamples: 4, failureRatio: 0.5 },
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

  it('minSamples defaults to size', async () => {
    await expectDecidesAtFourthCall({ kind: 'count', size: 4 });
  });

  it('looks at the last `size` calls only (the ring wraps around)', async () => {
    const { breaker, fail, pass } = setup({
      breaker: { kind: 'count', size: 4, minSamples: 4, failureRatio: 0.75 },
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

  it('slow successes open it (slowCallMs, rateThreshold), timed on the clock', async () => {
    const { breaker, slow, events } = setup({
      breaker: {
        kind: 'count',
        size: 4,
        minSamples: 4,
        failureRatio: 1,
        slowCallMs: 100,
        slowCallRatio: 0.5,
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

  it('slowCallRatio defaults to 1 (every call in the window slow)', async () => {
    const { breaker, slow } = setup({
      breaker: { kind: 'count', size: 2, failureRatio: 1, slowCallMs: 50 },
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
    minSamples: 4,
    failureRatio: 0.5,
  } as const;

  it('makes no decision below minSamples', async () => {
    await expectDecidesAtFourthCall(breakerOpts);
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
    expect(breaker.state).toBe('closed'); // 3 calls: below minSamples
    await fail(); // 3 of 4 failed
    expect(breaker.state).toBe('open');
  });

  it('slow successes open it too', async () => {
    const { breaker, slow, events } = setup({
      breaker: { ...breakerOpts, failureRatio: 1, slowCallMs: 20, slowCallRatio: 0.75 },
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
      breaker: { ...breakerOpts, failureRatio: 1, slowCallMs: 20, slowCallRatio: 0.5 },
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
      halfOpenAfterMs: 10_000,
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
    const breaker = circuitBreaker({ clock, breaker: b, halfOpenAfterMs: 1_000 });
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
      halfOpenAfterMs: 1_000,
    });
    const down = () => {
      throw new Error('down');
    };
    await outcome(breaker.execute(down));
    await clock.tick(1_000);
    await outcome(breaker.execute(down)); // the probe fails
    expectRejected(await outcome(breaker.execute(() => 'x')), 'open', 1_000);
  });

  it('defaults halfOpenAfterMs to 30 s', async () => {
    const { breaker, clock, fail, pass } = setup({ breaker: { kind: 'consecutive', threshold: 1 } });
    await fail();
    await clock.tick(29_999);
    expectRejected(await pass(), 'open', 1);
    await clock.tick(1);
    expectPassed(await pass());
    expect(breaker.state).toBe('closed');
  });

  it('turns half-open on the first call after halfOpenAfterMs (not before)', async () => {
    const { breaker, clock, pass, changes } = await tripped(1_000);
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
      halfOpenAfterMs: 100,
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
      halfOpenAfterMs: 100,
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

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('a probe slot frees when its probe succeeds without closing the breaker', async () => {
    const { breaker, clock, fail, start, pass } = setup({
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfterMs: 100,
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

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('re-opens on one failed probe; the other probes in flight no longer count', async () => {
    const { breaker, clock, fail, start, events } = setup({
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfterMs: 100,
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
      breaker: { kind: 'count', size: 1, failureRatio: 1, slowCallMs: 50 },
      halfOpenAfterMs: 100,
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
      halfOpenAfterMs: 100,
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
    const { breaker, clock, sleep, pass } = await tripped(100);
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
      breaker: { kind: 'count', size: 4, minSamples: 2, failureRatio: 0.5 },
      halfOpenAfterMs: 100,
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
