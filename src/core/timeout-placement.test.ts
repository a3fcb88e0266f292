import { describe, expect, it } from 'vitest';
import { track, untilAborted, withUnhandledRejections } from '../../test/support/timeout-harness.js';
import {
  backoff,
  pipeline,
  type RetryEvent,
  retry,
  TimeoutError,
  type TimeoutEvent,
  timeout,
} from '../index.js';
import { createFakeClock, type Deferred, deferred } from '../testing/index.js';

// Deliberate repetition: the end of this file's import list and its first describe/it match other test
// files by shape only (names differ); there is no shared logic to extract.
describe('timeout placement with retry', () => {
  it('pipeline(timeout(overall), retry, timeout(perAttempt)): the per-attempt timeout is retried, the overall one stops everything', async () => {
    const clock = createFakeClock();
    const overall = timeout({ timeoutMs: 350, clock, name: 'overall' });
    const perAttempt = timeout({ timeoutMs: 100, clock, name: 'perAttempt' });
    const r = retry({ maxAttempts: 10, backoff: backoff.constant(0), clock });
    const policy = pipeline(overall, r, perAttempt);
    const retries: RetryEvent[] = [];
    const timeouts: TimeoutEvent[] = [];
    r.onEvent((e) => retries.push(e));
    overall.onEvent((e) => timeouts.push(e));
    perAttempt.onEvent((e) => timeouts.push(e));
    const attempts: number[] = [];
    const p = policy.execute((ctx) => {
      attempts.push(ctx.attempt);
      return untilAborted(ctx);
    });
    const settled = track(p);
    await clock.tick(349);
    expect(settled.current.state).toBe('pending');
    expect(attempts).toEqual([1, 2, 3, 4]);
    await clock.tick(1);
    expect(settled.current.state).toBe('rejected');
    const error = (settled.current as { error: unknown }).error as TimeoutError;
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error.timeoutMs).toBe(350);
    expect(attempts).toEqual([1, 2, 3, 4]);
    expect(timeouts.map((e) => [e.name, e.attempt])).toEqual([
      ['perAttempt', 1],
      ['perAttempt', 2],
      ['perAttempt', 3],
      ['overall', 4],
    ]);
    const retried = retries.filter((e) => e.event === 'retry');
    expect(retried).toHaveLength(3);
    for (const e of retried) expect((e as { error?: TimeoutError }).error?.timeoutMs).toBe(100);
    expect(retries.at(-1)).toMatchObject({ event: 'giveUp', reason: 'aborted', attempt: 4 });
    expect(perAttempt.stats.timeouts).toBe(3);
    expect(overall.stats.timeouts).toBe(1);
    await clock.tick(1_000);
    expect(clock.pending).toBe(0);
  });

  it('with abandon timeouts, the same placement works for a function that ignores its signal', async () => {
    const unhandled = await withUnhandledRejections(async () => {
      const clock = createFakeClock();
      const policy = pipeline(
        timeout({ timeoutMs: 250, strategy: 'abandon', clock }),
        retry({ maxAttempts: 10, backoff: backoff.constant(0), clock }),
        timeout({ timeoutMs: 100, strategy: 'abandon', clock }),
      );
      const hanging: Deferred<never>[] = [];
      const p = policy.execute(() => {
        const d = deferred<never>();
        hanging.push(d);
        return d.promise;
      });
      const settled = track(p);
      await clock.tick(250);
      expect(settled.current.state).toBe('rejected');
      expect(((settled.current as { error: unknown }).error as TimeoutError).timeoutMs).toBe(250);
      expect(hanging).toHaveLength(3);
      for (const d of hanging) d.reject(new Error('late'));
    });
    expect(unhandled).toEqual([]);
  });

  it('timeout inside retry sees the attempt number; timeout outside retry bounds all attempts', async () => {
    const clock = createFakeClock();
    const inner = timeout({ timeoutMs: 100, clock });
    const seen: number[] = [];
    inner.onEvent((e) => seen.push(e.attempt));
    let n = 0;
    const p = pipeline(retry({ maxAttempts: 3, backoff: backoff.constant(0), clock }), inner).execute(
      (ctx) => {
        n++;
        return n < 3 ? untilAborted(ctx) : 'third time';
      },
    );
    await clock.tick(200);
    await expect(p).resolves.toBe('third time');
    expect(seen).toEqual([1, 2]);
  });
});

describe('timeout: aborts from outside are not timeouts', () => {
  it('a cooperative timeout whose call the caller cancelled neither counts nor emits a timeout later', async () => {
    const clock = createFakeClock();
    const t = timeout({ timeoutMs: 100, clock });
    const events: TimeoutEvent[] = [];
    t.onEvent((e) => events.push(e));
    const caller = new AbortController();
    const p = t.execute(
      (ctx) =>
        new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
      { signal: caller.signal },
    );
    caller.abort(new Error('caller cancelled'));
    await expect(p).rejects.toThrow('caller cancelled');
    await clock.tick(200);
    expect(t.stats.timeouts).toBe(0);
    expect(events).toEqual([]);
  });

  it('a retry wait inside a timeout creates no AbortController', async () => {
    const clock = createFakeClock();
    let made = 0;
    const Original = globalThis.AbortController;
    class Counting extends Original {
      constructor() {
        super();
        made++;
      }
    }
    globalThis.AbortController = Counting;
    try {
      const policy = pipeline(
        timeout({ timeoutMs: 1_000, clock }),
        retry({ clock, backoff: backoff.constant(10) }),
      );
      const p = policy.execute((ctx) => (ctx.attempt === 1 ? Promise.reject(new Error('once')) : 'ok'));
      await clock.tick(10);
      await expect(p).resolves.toBe('ok');
      expect(made).toBe(0);
    } finally {
      globalThis.AbortController = Original;
    }
  });
});
