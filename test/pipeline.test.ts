/**
 * The example pipeline, end to end, on a fake clock:
 *
 *   pipeline(
 *     timeout(10_000),                                  // whole operation
 *     retry({ maxAttempts: 4, backoff: exponential(100..5_000, full jitter), handle: transient }),
 *     circuitBreaker({ consecutive, threshold: 5, halfOpenAfterMs: 15_000 }),
 *     timeout({ timeoutMs: 2_000, strategy: 'abandon' }),      // each attempt
 *     bulkhead({ limit: 10, queue: 100 }),
 *   )
 */

import { getEventListeners } from 'node:events';
import {
  BrokenCircuitError,
  BulkheadRejectedError,
  backoff,
  bulkhead,
  type Clock,
  type Context,
  circuitBreaker,
  fallback,
  handle,
  type PolicyEvent,
  pipeline,
  type RandomSource,
  retry,
  TimeoutError,
  timeout,
} from 'bulwark';
import { createFakeClock, type FakeClock, flushMicrotasks, seededRandom } from 'bulwark/testing';
import { describe, expect, it } from 'vitest';

function build(clock: Clock, random: RandomSource) {
  const breaker = circuitBreaker({
    breaker: { kind: 'consecutive', threshold: 5 },
    halfOpenAfterMs: 15_000,
    clock,
  });
  const pool = bulkhead({ limit: 10, queue: 100, clock });
  const policy = pipeline(
    timeout({ timeoutMs: 10_000, clock, name: 'overall' }),
    retry({
      maxAttempts: 4,
      backoff: backoff.exponential({ initialMs: 100, maxMs: 5_000, jitter: 'full' }),
      handle: handle.transient(),
      clock,
      random,
    }),
    breaker,
    timeout({ timeoutMs: 2_000, strategy: 'abandon', clock, name: 'attempt' }),
    pool,
  );
  const events: PolicyEvent[] = [];
  policy.onEvent((e) => events.push(e));
  return { policy, breaker, pool, events };
}

const reset = () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });

type Settled =
  | { state: 'pending' }
  | { state: 'fulfilled'; value: unknown }
  | { state: 'rejected'; error: unknown };
function track(p: Promise<unknown>): { readonly current: Settled } {
  const box: { current: Settled } = { current: { state: 'pending' } };
  p.then(
    (value) => {
      box.current = { state: 'fulfilled', value };
    },
    (error: unknown) => {
      box.current = { state: 'rejected', error };
    },
  );
  return box;
}

/** Advances the fake clock until `p` settles (bounded). */
async function settle<T>(clock: FakeClock, p: Promise<T>, maxMs = 120_000): Promise<Settled> {
  const box = track(p);
  for (let waited = 0; box.current.state === 'pending' && waited < maxMs; waited += 10) await clock.tick(10);
  return box.current;
}

describe('the example pipeline, end to end', () => {
  it('a flaky function that fails twice with ECONNRESET succeeds on the third attempt, after backoff delays', async () => {
    const clock = createFakeClock();
    const { policy, breaker, pool, events } = build(clock, seededRandom(7));
    const caller = new AbortController();
    let calls = 0;
    const seen: { attempt: number; priority: string; aborted: boolean }[] = [];
    const outcome = await settle(
      clock,
      policy.execute(
        async ({ signal, attempt, priority }) => {
          calls++;
          seen.push({ attempt, priority, aborted: signal.aborted });
          if (calls <= 2) throw reset();
          return { status: 200, attempt };
        },
        { priority: 'critical', signal: caller.signal },
      ),
    );
    expect(outcome).toEqual({ state: 'fulfilled', value: { status: 200, attempt: 3 } });
    expect(seen).toEqual([
      { attempt: 1, priority: 'critical', aborted: false },
      { attempt: 2, priority: 'critical', aborted: false },
      { attempt: 3, priority: 'critical', aborted: false },
    ]);
    const retries = events.filter((e) => e.kind === 'retry' && e.event === 'retry');
    expect(retries).toHaveLength(2);
    for (const r of retries) {
      const delay = (r as { delayMs: number }).delayMs;
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThanOrEqual(5_000);
    }
    expect(breaker.state).toBe('closed');
    expect(pool.inFlight).toBe(0);
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
    expect(clock.refed).toBe(0);
  });

  it('an attempt that hangs (ignoring its signal) is abandoned after 2 s and retried', async () => {
    const clock = createFakeClock();
    const { policy, events } = build(clock, seededRandom(1));
    let calls = 0;
    const hung: AbortSignal[] = [];
    const outcome = await settle(
      clock,
      policy.execute((ctx: Context) => {
        calls++;
        if (calls === 1) {
          hung.push(ctx.signal);
          return new Promise<string>(() => {}); // never settles, ignores its signal
        }
        return 'second attempt';
      }),
    );
    expect(outcome).toEqual({ state: 'fulfilled', value: 'second attempt' });
    expect(calls).toBe(2);
    expect(hung[0]?.aborted).toBe(true);
    expect(hung[0]?.reason).toBeInstanceOf(TimeoutError);
    expect(clock.now()).toBeGreaterThanOrEqual(2_000);
    const t = events.find((e) => e.kind === 'timeout');
    expect(t).toMatchObject({ name: 'attempt', strategy: 'abandon', timeoutMs: 2_000, attempt: 1 });
  });

  it('gives up after 4 attempts that all time out, with the per-attempt TimeoutError', async () => {
    const clock = createFakeClock();
    const { policy, events } = build(clock, seededRandom(3));
    let calls = 0;
    const outcome = await settle(
      clock,
      policy.execute(() => {
        calls++;
        return new Promise(() => {});
      }),
    );
    expect(outcome.state).toBe('rejected');
    const error = (outcome as { error: TimeoutError }).error;
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error.timeoutMs).toBe(2_000);
    expect(calls).toBe(4);
    expect(events.filter((e) => e.kind === 'retry' && e.event === 'giveUp')).toHaveLength(1);
  });

  it('the overall timeout stops everything, even in the middle of a backoff delay', async () => {
    // (With the example's numbers 4 attempts of 2 s plus their delays stay under 10 s, so the
    // same shape is used here with numbers that reach the overall deadline.)
    const clock = createFakeClock();
    const caller = new AbortController();
    const policy = pipeline(
      timeout({ timeoutMs: 3_000, clock, name: 'overall' }),
      retry({ maxAttempts: 10, backoff: backoff.constant(1_500), handle: handle.transient(), clock }),
      timeout({ timeoutMs: 2_000, strategy: 'abandon', clock, name: 'attempt' }),
    );
    const events: PolicyEvent[] = [];
    policy.onEvent((e) => events.push(e));
    let calls = 0;
    const outcome = await settle(
      clock,
      policy.execute(
        () => {
          calls++;
          return Promise.reject(reset());
        },
        { signal: caller.signal },
      ),
    );
    // attempt 1 fails at 0 and waits 1.5 s; attempt 2 fails at 1.5 s and waits: the 3 s deadline falls in that wait
    expect(outcome.state).toBe('rejected');
    const error = (outcome as { error: TimeoutError }).error;
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error.timeoutMs).toBe(3_000);
    expect(calls).toBe(2);
    expect(clock.now()).toBeLessThanOrEqual(3_010);
    expect(events.at(-2)).toMatchObject({ kind: 'retry', event: 'giveUp', reason: 'aborted' });
    expect(events.at(-1)).toMatchObject({ kind: 'pipeline', event: 'execution', outcome: 'timeout' });
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
    expect(clock.refed).toBe(0);
  });

  it('the breaker opens after 5 consecutive failures, fails fast while open, and closes after a good probe', async () => {
    const clock = createFakeClock();
    const { policy, breaker, events } = build(clock, seededRandom(11));
    let calls = 0;
    let healthy = false;
    const fn = async () => {
      calls++;
      if (!healthy) throw Object.assign(new Error('Service Unavailable'), { status: 503 });
      return 'recovered';
    };
    // First execution: 4 attempts, 4 failures.
    const first = await settle(clock, policy.execute(fn));
    expect(first.state).toBe('rejected');
    expect(calls).toBe(4);
    expect(breaker.state).toBe('closed');
    // Second: the 5th failure opens the breaker; the next attempt is rejected at once.
    const second = await settle(clock, policy.execute(fn));
    expect(second.state).toBe('rejected');
    expect(calls).toBe(5);
    expect(breaker.state).toBe('open');
    expect(events.some((e) => e.kind === 'circuitBreaker' && e.event === 'reject')).toBe(true);
    // While open, the function is not called.
    const third = await settle(clock, policy.execute(fn), 1_000);
    expect(third.state).toBe('rejected');
    expect((third as { error: unknown }).error).toBeInstanceOf(BrokenCircuitError);
    expect(calls).toBe(5);
    // After halfOpenAfterMs, a probe goes through and closes it.
    await clock.tick(15_000);
    healthy = true;
    const fourth = await settle(clock, policy.execute(fn));
    expect(fourth).toEqual({ state: 'fulfilled', value: 'recovered' });
    expect(breaker.state).toBe('closed');
  });

  it('the bulkhead runs 10 at once, queues 100, and rejects the rest with BULKHEAD_FULL (not retried)', async () => {
    const clock = createFakeClock();
    const { policy, pool } = build(clock, seededRandom(5));
    const releases: (() => void)[] = [];
    let running = 0;
    let maxRunning = 0;
    let started = 0;
    const fn = () =>
      new Promise<string>((resolve) => {
        started++;
        running++;
        maxRunning = Math.max(maxRunning, running);
        releases.push(() => {
          running--;
          resolve('done');
        });
      });
    const calls = Array.from({ length: 111 }, () => track(policy.execute(fn)));
    await flushMicrotasks();
    expect(pool.inFlight).toBe(10);
    expect(pool.queued).toBe(100);
    const last = calls[110]!.current;
    expect(last.state).toBe('rejected');
    expect((last as { error: BulkheadRejectedError }).error).toBeInstanceOf(BulkheadRejectedError);
    expect((last as { error: BulkheadRejectedError }).error.code).toBe('BULKHEAD_FULL');
    expect(started).toBe(10);
    // Release them one by one, well before any timeout.
    while (releases.length > 0) {
      releases.shift()!();
      await flushMicrotasks();
    }
    expect(maxRunning).toBe(10);
    expect(started).toBe(110);
    expect(calls.slice(0, 110).every((c) => c.current.state === 'fulfilled')).toBe(true);
    expect(pool.inFlight).toBe(0);
    expect(pool.queued).toBe(0);
    expect(clock.refed).toBe(0);
  });

  it('with a fallback outside it, every failure becomes an answer, but the caller abort stays an abort', async () => {
    const clock = createFakeClock();
    const { policy: inner, breaker } = build(clock, seededRandom(2));
    const policy = pipeline(
      fallback((o) => ('error' in o ? `fallback (${(o.error as Error).name})` : 'fallback')),
      inner,
    );
    breaker.forceOpen();
    const a = await settle(
      clock,
      policy.execute(() => 'never'),
    );
    expect(a).toEqual({ state: 'fulfilled', value: 'fallback (BrokenCircuitError)' });
    breaker.reset();
    const caller = new AbortController();
    const p = policy.execute(() => new Promise(() => {}), { signal: caller.signal });
    const box = track(p);
    await clock.tick(100);
    caller.abort('user cancelled');
    await flushMicrotasks();
    expect(box.current).toEqual({ state: 'rejected', error: 'user cancelled' });
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
  });
});
