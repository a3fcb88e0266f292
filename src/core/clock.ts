/**
 * Time and randomness, injected so that tests are exact and fast.
 *
 * Every policy takes an optional `clock` and `random`; production code uses the
 * defaults below, tests use `createFakeClock()` and `seededRandom()` from `bulwark/testing`.
 */

/** A timer handle: Node's `Timeout` satisfies it, and so does the fake clock's. */
export interface TimerHandle {
  /** Keep the process alive while the timer is pending. */
  ref(): unknown;
  /** Let the process exit even though the timer is pending. */
  unref(): unknown;
}

/**
 * The source of time for a policy.
 *
 * @example
 * ```ts
 * import { retry, systemClock } from 'bulwark';
 * const policy = retry({ maxAttempts: 3, clock: systemClock });
 * ```
 */
export interface Clock {
  /** Monotonic milliseconds (arbitrary origin). Used for deadlines, windows and durations. */
  now(): number;
  /** Wall-clock milliseconds since the Unix epoch. Used for HTTP dates and saved breaker state. */
  date(): number;
  /** Run `callback` once after `ms` milliseconds. */
  setTimeout(callback: () => void, ms: number): TimerHandle;
  /** Cancel a timer made by this clock's `setTimeout`. */
  clearTimeout(handle: TimerHandle): void;
}

/** Node's longest timer (~24.8 days): a longer one fires after 1 ms, so longer waits are chained. @internal */
export const MAX_TIMER_MS = 2_147_483_647;

/** A source of uniform random numbers in [0, 1). */
export type RandomSource = () => number;

const perf = globalThis.performance;

/**
 * The real clock: `performance.now()` for monotonic time and Node's timers.
 *
 * @example
 * ```ts
 * import { systemClock } from 'bulwark';
 * const t0 = systemClock.now();
 * ```
 */
export const systemClock: Clock = {
  now: () => perf.now(),
  date: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * The default random source, `Math.random`.
 *
 * @example
 * ```ts
 * import { retry, systemRandom } from 'bulwark';
 * const policy = retry({ random: systemRandom });
 * ```
 */
export const systemRandom: RandomSource = Math.random;
