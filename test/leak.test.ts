/**
 * Acceptance: 100,000 executions through retry + timeout under ONE long-lived caller signal
 * leave no listener on that signal and no pending timer behind.
 */

import { getEventListeners } from 'node:events';
import {
  backoff,
  type Clock,
  type Context,
  type Policy,
  pipeline,
  retry,
  systemClock,
  TimeoutError,
  timeout,
} from 'bulwark';
import { createFakeClock } from 'bulwark/testing';
import { describe, expect, it } from 'vitest';

const TOTAL = 100_000;
const BATCH = 1_000;
const TIMEOUT_MS = 50;

type Shape = 'retry > timeout' | 'timeout > retry' | 'retry > timeout(abandon)';

function build(shape: Shape, clock: Clock, delayMs: number): Policy {
  const r = retry({ maxAttempts: 3, backoff: backoff.constant(delayMs), clock });
  switch (shape) {
    case 'retry > timeout':
      return pipeline(r, timeout({ timeoutMs: TIMEOUT_MS, clock }));
    case 'timeout > retry':
      return pipeline(timeout({ timeoutMs: TIMEOUT_MS, clock }), r);
    case 'retry > timeout(abandon)':
      return pipeline(r, timeout({ timeoutMs: TIMEOUT_MS, strategy: 'abandon', clock }));
  }
}

/**
 * The function of execution `i`: reads ctx.signal (so controllers and listeners are made);
 * every 10th fails on its first attempt and is retried; with `hang`, every 1000th hangs on its
 * first attempt until its signal aborts (so the deadline path runs too).
 */
function work(i: number, hang: boolean) {
  return (ctx: Context): number | Promise<number> => {
    const signal = ctx.signal;
    if (signal.aborted) throw signal.reason;
    if (ctx.attempt === 1 && hang && i % 1_000 === 0) {
      return new Promise<number>((_, reject) => {
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    }
    if (ctx.attempt === 1 && i % 10 === 0) return Promise.reject(new Error(`flaky ${i}`));
    return i % 2 === 0 ? i : Promise.resolve(i);
  };
}

function timeoutsActive(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

describe('no leak after 100,000 executions under one long-lived caller signal', () => {
  it.each<Shape>(['retry > timeout', 'timeout > retry', 'retry > timeout(abandon)'])(
    '%s, fake clock: no listener on the signal, no refed timer right after, no timer one period later',
    async (shape) => {
      const clock = createFakeClock();
      const policy = build(shape, clock, 10);
      const caller = new AbortController();
      const options = { signal: caller.signal };
      let sum = 0;
      let timedOut = 0;
      let maxListeners = 0;
      for (let start = 0; start < TOTAL; start += BATCH) {
        const batch: Promise<number>[] = [];
        for (let i = start; i < start + BATCH; i++) batch.push(policy.execute(work(i, true), options));
        maxListeners = Math.max(maxListeners, getEventListeners(caller.signal, 'abort').length);
        const outcomes = Promise.allSettled(batch); // observed before any of them can reject
        await clock.tick(TIMEOUT_MS + 20); // fires the deadlines of the hanging calls and the backoff delays
        for (const r of await outcomes) {
          if (r.status === 'fulfilled') sum += r.value;
          else if (r.reason instanceof TimeoutError) timedOut++;
          else throw r.reason;
        }
      }
      // Inside the retry, a timed-out attempt is retried and every execution returns its value;
      // outside it, the hanging executions (one in 1000) end with the TimeoutError.
      const hanging = TOTAL / 1_000;
      const all = (TOTAL * (TOTAL - 1)) / 2;
      if (shape === 'timeout > retry') {
        expect(timedOut).toBe(hanging);
        expect(sum).toBe(all - (1_000 * hanging * (hanging - 1)) / 2);
      } else {
        expect(timedOut).toBe(0);
        expect(sum).toBe(all);
      }
      expect(maxListeners).toBeGreaterThan(0); // listeners were there while calls ran...
      expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0); // ...and none is left
      expect(clock.refed).toBe(0);
      await clock.tick(TIMEOUT_MS);
      expect(clock.pending).toBe(0);

      // Nothing was detached too eagerly: the caller abort still reaches a running execution.
      expect(caller.signal.aborted).toBe(false);
      const running = policy.execute(
        (ctx) =>
          new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
        options,
      );
      caller.abort('shutdown');
      await expect(running).rejects.toBe('shutdown');
      expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
    },
  );

  it('getActiveResourcesInfo() lists a pending timer only while it is ref-ed', () => {
    // What the real-clock test below relies on: an unref-ed timer does not keep the process
    // alive, and process.getActiveResourcesInfo() does not list it.
    const before = timeoutsActive();
    const t = setTimeout(() => {}, 60_000);
    expect(timeoutsActive()).toBe(before + 1);
    t.unref();
    expect(timeoutsActive()).toBe(before);
    clearTimeout(t);
  });

  it.each<Shape>(['retry > timeout', 'timeout > retry', 'retry > timeout(abandon)'])(
    '%s, real clock: no listener on the signal and no active Timeout left behind',
    async (shape) => {
      const before = timeoutsActive();
      // A long timeout (never reached) and no backoff delay: nothing waits for real.
      const r = retry({ maxAttempts: 3, backoff: backoff.constant(0), clock: systemClock });
      const t = timeout({
        timeoutMs: 60_000,
        clock: systemClock,
        strategy: shape.includes('abandon') ? 'abandon' : 'cooperative',
      });
      const policy = shape === 'timeout > retry' ? pipeline(t, r) : pipeline(r, t);
      const caller = new AbortController();
      let sum = 0;
      for (let start = 0; start < TOTAL; start += BATCH) {
        const batch: Promise<number>[] = [];
        for (let i = start; i < start + BATCH; i++)
          batch.push(policy.execute(work(i, false), { signal: caller.signal }));
        expect(timeoutsActive()).toBeLessThanOrEqual(before + 1); // one timer per queue, never one per call
        for (const v of await Promise.all(batch)) sum += v;
      }
      expect(sum).toBe((TOTAL * (TOTAL - 1)) / 2);
      expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
      // The deadline queue's timer may still be pending, but unref-ed: it keeps nothing alive.
      expect(timeoutsActive()).toBeLessThanOrEqual(before);
    },
  );
});
