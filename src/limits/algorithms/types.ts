/**
 * The contract every rate-limit algorithm implements. State lives in one small object per key;
 * nothing runs on a timer: each call brings the state up to `now` from its timestamps.
 */

/** One rate-limit algorithm, with per-key state of type `S`. @internal */
export interface RateAlgorithm<S> {
  /** The algorithm's name, e.g. `gcra`. */
  readonly kind: string;
  /** The most units it can admit at once (capacity, burst + 1, or the window limit). */
  readonly limit: number;
  /** The length of its window in ms (for token bucket: time to refill from empty). */
  readonly windowMs: number;
  /** Fresh state for a key first seen at `now`. */
  create(now: number): S;
  /**
   * Brings `s` up to `now` (expiring what has expired; never spends) and tells whether `cost`
   * units fit now.
   */
  check(s: S, now: number, cost: number): boolean;
  /** Spends `cost` units; only after `check(s, now, cost)` returned true. */
  commit(s: S, now: number, cost: number): void;
  /** Units left now (after `check`). */
  remaining(s: S, now: number): number;
  /** Ms until `cost` units would fit (0 if they fit now; Infinity if they never will). */
  retryAfter(s: S, now: number, cost: number): number;
  /** Ms until the state is back to full (nothing spent). */
  reset(s: S, now: number): number;
  /** True when the state is back to full at `now`, so the key may be forgotten. */
  idle(s: S, now: number): boolean;
}
