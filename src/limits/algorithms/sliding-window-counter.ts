/**
 * Sliding-window counter: two aligned fixed windows; the previous one weighs by how much of it
 * still overlaps the sliding window: `estimate = ⌊prev·(1 − elapsed/W)⌋ + curr` (upstash's
 * formula). A call of `cost` units is admitted iff `estimate + cost <= limit`.
 */

import type { RateAlgorithm } from './types.js';

/** Per-key state of a sliding-window counter. @internal */
export interface SlidingCounterState {
  start: number;
  curr: number;
  prev: number;
}

/** @internal */
export class SlidingWindowCounter implements RateAlgorithm<SlidingCounterState> {
  readonly kind = 'sliding-window-counter';

  constructor(
    readonly limit: number,
    readonly windowMs: number,
  ) {}

  create(now: number): SlidingCounterState {
    return { start: Math.floor(now / this.windowMs) * this.windowMs, curr: 0, prev: 0 };
  }

  /** Rolls the windows forward to `now`. */
  private roll(s: SlidingCounterState, now: number): void {
    const w = this.windowMs;
    if (now < s.start + w) return;
    const start = Math.floor(now / w) * w;
    s.prev = start === s.start + w ? s.curr : 0;
    s.curr = 0;
    s.start = start;
  }

  /** The estimate at `now` (state already rolled). */
  estimate(s: SlidingCounterState, now: number): number {
    return Math.floor(s.prev * (1 - (now - s.start) / this.windowMs)) + s.curr;
  }

  check(s: SlidingCounterState, now: number, cost: number): boolean {
    this.roll(s, now);
    return this.estimate(s, now) + cost <= this.limit;
  }

  commit(s: SlidingCounterState, _now: number, cost: number): void {
    s.curr += cost;
  }

  remaining(s: SlidingCounterState, now: number): number {
    return Math.max(0, Math.floor(this.limit - this.estimate(s, now)));
  }

  retryAfter(s: SlidingCounterState, now: number, cost: number): number {
    if (cost > this.limit) return Number.POSITIVE_INFINITY;
    if (this.estimate(s, now) + cost <= this.limit) return 0;
    const w = this.windowMs;
    // Smallest elapsed e (strictly past e*) with ⌊weight·(1 − e/W)⌋ <= room.
    const after = (weight: number, room: number): number => {
      if (weight < room + 1) return 0;
      // Start from the closed form, then settle it with the very expression `estimate` uses, so
      // floating-point rounding (500 · (1 − 4/5) = 99.99999999999997) cannot make it a ms early.
      let c = Math.max(0, Math.ceil(w * (1 - (room + 1) / weight)));
      while (c < w && Math.floor(weight * (1 - c / w)) > room) c++;
      while (c > 0 && Math.floor(weight * (1 - (c - 1) / w)) <= room) c--;
      return c;
    };
    if (s.curr + cost <= this.limit) {
      return Math.max(0, s.start + after(s.prev, this.limit - cost - s.curr) - now);
    }
    return s.start + w + after(s.curr, this.limit - cost) - now;
  }

  reset(s: SlidingCounterState, now: number): number {
    if (s.curr > 0) return s.start + 2 * this.windowMs - now;
    if (s.prev > 0) return s.start + this.windowMs - now;
    return 0;
  }

  idle(s: SlidingCounterState, now: number): boolean {
    const w = this.windowMs;
    if (now >= s.start + 2 * w) return true;
    if (now >= s.start + w) return s.curr === 0;
    return s.curr === 0 && s.prev === 0;
  }
}
