/**
 * A fake clock for exact, fast tests: timers fire only when the test advances time.
 */

import type { Clock, TimerHandle } from '../core/clock.js';

interface FakeTimer extends TimerHandle {
  readonly id: number;
  due: number;
  readonly callback: () => void;
  refed: boolean;
}

/** Options of `createFakeClock()`. */
export interface FakeClockOptions {
  /** Initial monotonic time in ms. Default 0. */
  now?: number;
  /** Initial wall-clock time (ms since the epoch). Default 2026-01-01T00:00:00Z. */
  date?: number;
}

/**
 * A `Clock` whose time moves only when told to.
 */
export interface FakeClock extends Clock {
  /** Timers not yet fired or cleared. */
  readonly pending: number;
  /** Pending timers that would keep a real process alive (not unref'd). */
  readonly refed: number;
  /**
   * Moves time forward by `ms`, firing due timers in order; between timers it lets pending
   * promise callbacks run, so code awaiting a timer continues before the next one fires.
   */
  tick(ms: number): Promise<void>;
  /** Moves time forward synchronously, firing due timers in order (no promise callbacks run in between). */
  tickSync(ms: number): void;
  /** Fires timers (advancing time to each) until none is left, at most `limit` of them. */
  runAll(limit?: number): Promise<void>;
  /** Time of the next pending timer, or undefined. */
  nextDue(): number | undefined;
}

/** Time only moves forward, by a finite amount. */
function checkStep(ms: number): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
    throw new RangeError(`createFakeClock: tick(ms) needs a finite number of ms >= 0 (got ${String(ms)})`);
  }
  return ms;
}

/** Lets every pending promise callback (microtask) run. */
export function flushMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Lets the program settle between two fake timers: pending promise callbacks, and work they
 * hand to the next macrotask (a retry with no delay yields one) — a few rounds of both.
 */
async function settle(): Promise<void> {
  for (let i = 0; i < 4; i++) await flushMicrotasks();
}

/**
 * Makes a fake clock.
 *
 * @example
 * ```ts
 * import { retry } from 'bulwark';
 * import { createFakeClock } from 'bulwark/testing';
 * const clock = createFakeClock();
 * const policy = retry({ maxAttempts: 3, clock });
 * let calls = 0;
 * const done = policy.execute(() => { if (++calls < 3) throw new Error('flaky'); return 'ok'; });
 * await clock.tick(60_000); // the backoff delays pass at once
 * console.log(await done, calls); // 'ok' 3
 * ```
 */
export function createFakeClock(options: FakeClockOptions = {}): FakeClock {
  let now = options.now ?? 0;
  const dateOrigin = (options.date ?? Date.UTC(2026, 0, 1)) - now;
  let seq = 0;
  const timers: FakeTimer[] = []; // sorted by due, then id

  function insert(t: FakeTimer): void {
    let i = timers.length;
    while (i > 0 && timers[i - 1]!.due > t.due) i--;
    timers.splice(i, 0, t);
  }

  function remove(t: FakeTimer): void {
    const i = timers.indexOf(t);
    if (i >= 0) timers.splice(i, 1);
  }

  function fireNext(until: number): boolean {
    const t = timers[0];
    if (t === undefined || t.due > until) return false;
    timers.shift();
    if (t.due > now) now = t.due;
    t.callback();
    return true;
  }

  const clock: FakeClock = {
    now: () => now,
    date: () => dateOrigin + now,
    setTimeout(callback, ms) {
      const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
      const t: FakeTimer = {
        id: ++seq,
        due: now + delay,
        callback,
        refed: true,
        ref() {
          t.refed = true;
          return t;
        },
        unref() {
          t.refed = false;
          return t;
        },
      };
      insert(t);
      return t;
    },
    clearTimeout(handle) {
      remove(handle as FakeTimer);
    },
    get pending() {
      return timers.length;
    },
    get refed() {
      return timers.filter((t) => t.refed).length;
    },
    async tick(ms) {
      const until = now + checkStep(ms);
      await settle();
      while (fireNext(until)) await settle();
      now = until;
      await settle();
    },
    tickSync(ms) {
      const until = now + checkStep(ms);
      while (fireNext(until)) {
        // keep firing
      }
      now = until;
    },
    async runAll(limit = 10_000) {
      await settle();
      for (let i = 0; i < limit && timers.length > 0; i++) {
        fireNext(Number.POSITIVE_INFINITY);
        await settle();
      }
    },
    nextDue() {
      return timers[0]?.due;
    },
  };
  return clock;
}
